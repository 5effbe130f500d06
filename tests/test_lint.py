"""The code base stays clean under the project's ruff configuration (pyproject.toml) and keeps
its layers (the import-linter contracts in .importlinter)."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    path = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed")
    return path


def test_ruff_finds_nothing():
    proc = subprocess.run([_tool("ruff"), "check", "core", "app", "tests"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-4000:]


MAX_FUNCTION_LINES = 80


def test_no_function_in_core_is_longer_than_80_lines():
    """Small, named pieces: a function in core/ fits on a screen (McCabe ≤ 15 is ruff's C901,
    configured in pyproject.toml)."""
    import ast

    long = []
    for path in sorted((REPO / "core").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions:\n" + "\n".join(long)


def test_import_contracts_hold():
    """core never imports streamlit, and the layers point one way (.importlinter)."""
    proc = subprocess.run([_tool("lint-imports"), "--no-cache"], cwd=REPO, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:]
