"""Packaging: the import package is ``affectlab`` (sources in core/), the wheel carries the app
and the shipped weights and runs on its own, installs follow requirements.lock, and the code
reads its data the same under both pandas majors the declared range allows."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from affectlab.appserver import SERVER_OPTIONS, app_entry, streamlit_command

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
TORCH_SPEC = os.environ.get("AFFECTLAB_TORCH", "torch==2.13.0")

# Tests whose code reads or writes parquet tables and CSVs through pandas: run again under
# pandas 2 by test_pandas_2_reads_what_pandas_3_does (the lock installs pandas 3).
PANDAS_EDGE_TESTS = ["tests/test_dataset.py", "tests/test_importers.py", "tests/test_labels.py",
                     "tests/test_annotate_export.py", "tests/test_schema.py",
                     "tests/test_importers_train.py", "tests/test_agreement.py",
                     "tests/test_aggregators.py", "tests/test_synth_aggregation.py"]
PANDAS_2 = "pandas==2.3.3"


def test_every_package_under_core_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    on_disk = {"affectlab" + "".join(f".{p}" for p in init.parent.relative_to(REPO / "core").parts)
               for init in (REPO / "core").rglob("__init__.py")}
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert {"affectlab.app", "affectlab.app.views", "affectlab.assets"} <= listed


def test_server_options_match_the_checkout_streamlit_config():
    """``affectlab app`` passes .streamlit/config.toml's settings as flags (Streamlit reads the
    file only from the working directory); the two must say the same."""
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    flat = {f"{section}.{key}": value for section, table in config.items()
            for key, value in table.items()}
    assert flat == SERVER_OPTIONS


def test_streamlit_command_runs_the_packaged_entry():
    cmd = streamlit_command(8600, "127.0.0.1")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert Path(cmd[4]) == app_entry() and app_entry().is_file()
    assert "--server.port=8600" in cmd and "--server.address=127.0.0.1" in cmd
    assert "--server.headless=true" in cmd
    with pytest.raises(ValueError, match="port"):
        streamlit_command(0)


@pytest.mark.parametrize("address", ["127.0.0.1", "0.0.0.0", None])
def test_tracebacks_reach_no_browser_unless_asked(address):
    """An uncaught exception shows a generic message in every browser, a rater's included, on
    any address (127.0.0.1 behind a reverse proxy serves raters too); the log keeps the details.
    ``--show-errors`` is the developer's opt-in."""
    def details(cmd):
        return [c for c in cmd if c.startswith("--client.showErrorDetails=")]

    assert details(streamlit_command(8600, address)) == ["--client.showErrorDetails=none"]
    assert details(streamlit_command(8600, address, show_errors=True)) == [
        "--client.showErrorDetails=full"]


def _locked() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def test_this_environment_is_the_locked_one():
    """``make test`` tests what requirements.lock pins (scripts/venv.sh installs from it)."""
    pins = _locked()
    assert "pandas" in pins and "torch" not in pins  # torch: installed first, from AFFECTLAB_TORCH
    wrong = {}
    for name, version in pins.items():
        try:
            have = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            wrong[name] = (version, None)
            continue
        if have != version:
            wrong[name] = (version, have)
    assert not wrong, f"installed versions differ from requirements.lock (locked, installed): {wrong}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert proc.returncode == 0, f"{cmd[:3]}… failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_runs(tmp_path):
    """Build the wheel, install it (with its locked dependencies) into an empty venv, and from a
    directory outside the checkout run ``affectlab predict`` with the shipped model and
    ``affectlab app``. Nothing of the checkout is on that venv's path."""
    np = pytest.importorskip("numpy")
    skimage_data = pytest.importorskip("skimage.data")
    from PIL import Image

    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "-w", str(dist), str(REPO)], timeout=300)
    wheel = next(dist.glob("affectlab-*.whl"))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run(pip + TORCH_SPEC.split(), timeout=900)
    _run(pip + ["-c", str(REPO / "requirements.lock"), str(wheel)], timeout=900)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(AFFECTLAB_DATA=str(outside / "data"), OMP_NUM_THREADS="1")
    py = str(venv / "bin" / "python")
    probe = _run([py, "-c", "import importlib.util as u, affectlab; "
                  "print(affectlab.__file__); print(u.find_spec('core'))"],
                 cwd=outside, env=env, timeout=120).stdout.split("\n")
    assert str(venv) in probe[0] and probe[1] == "None"  # no top-level 'core' installed

    photo = outside / "photo.jpg"
    Image.fromarray(np.asarray(skimage_data.astronaut())).save(photo)
    out = _run([str(venv / "bin" / "affectlab"), "predict", "--model", "mini_xception",
                str(photo)], cwd=outside, env=env, timeout=300).stdout
    record = json.loads(out.strip().splitlines()[-1])
    assert "error" not in record, record
    assert abs(sum(record["distribution"].values()) - 1.0) < 1e-4
    assert record["predicted"] == "happy"  # the astronaut smiles
    assert record["note"].startswith("face detected by YuNet")  # its weights ship in the wheel

    port = _free_port()
    server = subprocess.Popen([str(venv / "bin" / "affectlab"), "app", "--port", str(port),
                               "--address", "127.0.0.1", "--no-defaults"], cwd=outside, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        body = None
        while time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health",
                                            timeout=2) as r:
                    body = r.read().decode()
                    break
            except OSError:
                time.sleep(0.5)
        assert body == "ok", (server.poll(), server.stdout.read() if server.poll() else "")
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=30)


@pytest.mark.slow
def test_pandas_2_reads_what_pandas_3_does(tmp_path):
    """The declared range allows pandas 2 and 3 (pandas 3 reads text columns as ``str``, not
    ``object``). The tests of the code that reads tables run again with pandas 2 first on the
    path."""
    overlay = tmp_path / "pandas2"
    _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(overlay),
          PANDAS_2, "pytz"], timeout=600)  # pandas 2 also needs pytz
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (str(overlay), os.environ.get("PYTHONPATH")) if p))
    version = _run([sys.executable, "-c", "import pandas; print(pandas.__version__)"],
                   env=env, cwd=REPO, timeout=120).stdout.strip()
    assert version.startswith("2."), version
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-m", "not browser", *PANDAS_EDGE_TESTS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-4000:]


# -- the lower ends of the declared ranges --------------------------------------------------

# What runs again with every dependency at the lowest minor its declared range allows: the code
# that reads tables and media (pandas, pyarrow, numpy, scipy, scikit-learn, Pillow, soundfile,
# OpenCV, h5py …) and the pages and commands (Streamlit, plotly, typer, pydantic).
LOWEST_DATA_TESTS = ["tests/test_dataset.py", "tests/test_importers.py", "tests/test_labels.py",
                     "tests/test_schema.py", "tests/test_importers_train.py",
                     "tests/test_agreement.py", "tests/test_annotate_export.py",
                     "tests/test_metrics.py", "tests/test_features_audio.py",
                     "tests/test_face_crops.py", "tests/test_bounded_inputs.py"]
LOWEST_APP_TESTS = ["tests/test_app_pages.py", "tests/test_app_signin.py",
                    "tests/test_app_annotate.py", "tests/test_app_train_runs.py",
                    "tests/test_app_study.py", "tests/test_app_uploads.py",
                    "tests/test_corpora_cli.py", "tests/test_engine_config.py",
                    "tests/test_explore.py"]


def lowest_constraints() -> dict[str, str]:
    """name → ``X.*`` for the lower bound X of every declared dependency but torch (installed
    first, as scripts/venv.sh does): the lowest minor a user's resolver may pick."""
    out = {}
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0]
        low = re.search(r">=\s*([0-9][\w.]*)", requirement)
        assert low, f"{requirement!r} declares no lower bound"
        if name != "torch":
            out[name] = f"{low.group(1)}.*"
    return out


def test_every_dependency_has_a_lower_bound_the_lowest_check_reads():
    cons = lowest_constraints()
    assert cons["pandas"] == "2.1.*" and cons["streamlit"].startswith("1.")
    assert len(cons) == len(PYPROJECT["project"]["dependencies"]) - 1


@pytest.fixture(scope="module")
def lowest_venv(tmp_path_factory) -> Path:
    """A venv with the checkout (editable) and every dependency at its declared lower end."""
    root = tmp_path_factory.mktemp("lowest")
    cons = root / "lowest.txt"
    cons.write_text("".join(f"{n}=={v}\n" for n, v in lowest_constraints().items()))
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
    _run(pip + TORCH_SPEC.split(), timeout=900)
    _run(pip + ["-c", str(cons), "-e", str(REPO), "pytest>=8", "pytest-timeout",
                "pytest-rerunfailures", "hypothesis", "scikit-image"], timeout=1200)
    return venv / "bin" / "python"


def _installed(python: Path, names: list[str]) -> dict[str, str]:
    code = ("import importlib.metadata as m, json, sys; "
            "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))")
    return json.loads(_run([str(python), "-c", code, *names], timeout=120).stdout)


def _pytest_in(python: Path, tests: list[str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                           "not slow and not browser", *tests], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1500)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_lowest_declared_versions_read_data_as_the_locked_ones(lowest_venv):
    """Every lower bound is one the code works with: the data tests pass with numpy 1.26,
    pandas 2.1, pyarrow 15, scipy 1.11, scikit-learn 1.4, Pillow 10, OpenCV 4.8 …"""
    cons = lowest_constraints()
    have = _installed(lowest_venv, ["numpy", "pandas", "pyarrow", "scipy", "scikit-learn",
                                    "pillow", "opencv-python-headless"])
    for name, version in have.items():
        assert version.startswith(cons[name].removesuffix("*")), (name, version, cons[name])
    proc = _pytest_in(lowest_venv, LOWEST_DATA_TESTS)
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_lowest_declared_versions_run_the_pages_and_commands(lowest_venv):
    """The pages (AppTest) and commands at the lowest Streamlit, plotly, typer and pydantic the
    ranges allow (below them, st.html lacks unsafe_allow_javascript, plotly writes no typed
    arrays, typer 0.12 breaks under click 8.5)."""
    cons = lowest_constraints()
    have = _installed(lowest_venv, ["streamlit", "plotly", "typer", "pydantic"])
    for name, version in have.items():
        assert version.startswith(cons[name].removesuffix("*")), (name, version, cons[name])
    proc = _pytest_in(lowest_venv, LOWEST_APP_TESTS)
    assert proc.returncode == 0, proc.stdout[-4000:]
