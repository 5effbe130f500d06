"""affectlab.paths: user-given names become paths only inside their root; overwrite removes only
directories affectlab made (the marker); the CLI's --out rule. Plus the places that use them:
the generator, the importer and the export refuse a traversal name or a foreign folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from affectlab.paths import (
    MARKER,
    NotProductDirError,
    UnsafeNameError,
    child_path,
    cli_out_path,
    is_product_dir,
    make_product_dir,
    mark_created,
    require_product_dir,
    safe_name,
)

TRAVERSAL = ["../../somewhere", "..", ".", "a/../b", "/etc", "/", "a/b", "a\\b", "..\\x",
             "C:\\temp", "x<y", "x>y", "a|b", "a:b", 'a"b', "a*b", "a?b", "tab\there",
             "nul\x00byte", "new\nline", "del\x7f", "", "   ", ".hidden", "end.", "CON", "nul",
             "com1.txt", "LPT9", "Aux.tar.gz", "x" * 101, "sp ace", "é", "-flag", "_under",
             "a..b"]
GOOD = ["faces", "faces-default", "run_1", "ce+fspl-kl", "v1.2", "A", "0", "x" * 100,
        "console", "nuller", "com10", "ferplus.v2"]


@pytest.mark.parametrize("name", TRAVERSAL)
def test_safe_name_refuses(name):
    with pytest.raises(UnsafeNameError, match="dataset name"):
        safe_name(name, "dataset name")


@pytest.mark.parametrize("name", GOOD)
def test_safe_name_accepts(name):
    assert safe_name(name) == name
    assert safe_name(f"  {name} ") == name  # typed with stray spaces


def test_safe_name_refuses_non_strings():
    for value in (None, 3, b"faces", Path("faces")):
        with pytest.raises(UnsafeNameError, match="must be a string"):
            safe_name(value)


@pytest.mark.parametrize("name", TRAVERSAL)
def test_child_path_never_leaves_the_root(tmp_path, name):
    with pytest.raises(UnsafeNameError):
        child_path(tmp_path / "datasets", name)


def test_child_path_is_under_the_root_and_refuses_a_planted_link(tmp_path):
    root = tmp_path / "datasets"
    root.mkdir()
    assert child_path(root, "faces") == root.resolve() / "faces"
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "planted").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeNameError, match="outside"):
        child_path(root, "planted")
    (root / "inner").mkdir()
    (root / "alias").symlink_to(root / "inner", target_is_directory=True)
    assert child_path(root, "alias") == root.resolve() / "alias"  # a link within is fine


def test_cli_out_path(tmp_path):
    root = tmp_path / "runs"
    root.mkdir()
    assert cli_out_path("faces", root) == root.resolve() / "faces"   # a bare name
    assert cli_out_path(Path("data/runs/x"), root) == Path("data/runs/x")  # the user's path
    assert cli_out_path("./x", root) == Path("x")
    assert cli_out_path("/big/disk/x", root) == Path("/big/disk/x")
    assert cli_out_path("~/x", root) == Path(os.path.expanduser("~/x"))
    with pytest.raises(UnsafeNameError, match="--out"):
        cli_out_path("..", root)
    with pytest.raises(UnsafeNameError, match="--out"):
        cli_out_path("CON", root)


def test_marker_and_require_product_dir(tmp_path):
    require_product_dir(tmp_path / "missing")  # nothing there: fine
    empty = tmp_path / "empty"
    empty.mkdir()
    require_product_dir(empty)                 # empty: fine
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(NotProductDirError, match="not created by affectlab"):
        require_product_dir(mine)
    assert not is_product_dir(mine)
    made = make_product_dir(tmp_path / "made" / "deep")
    assert is_product_dir(made) and (made / MARKER).is_file()
    require_product_dir(made)
    # a folder that already held the user's files is not marked by make_product_dir
    make_product_dir(mine)
    assert not is_product_dir(mine)
    link = tmp_path / "link"
    link.symlink_to(made, target_is_directory=True)
    assert not is_product_dir(link)
    with pytest.raises(NotProductDirError, match="symbolic link"):
        require_product_dir(link)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(NotProductDirError, match="not a directory"):
        require_product_dir(afile)
    mark_created(mine)  # only ever called by the product on its own directories
    assert is_product_dir(mine)


# ------------------------------------------------------------------- the callers of the rule
def test_overwrite_never_removes_a_foreign_folder(tmp_path):
    """Today's bug: Name '../../somewhere' with Overwrite deleted a folder outside the data
    directory. Now the name is refused, and even a path to a foreign folder is not replaced."""
    from affectlab.data.synth.corpus import generate_corpus

    victim = tmp_path / "somewhere"
    victim.mkdir()
    (victim / "precious.txt").write_text("keep me")
    datasets = tmp_path / "data" / "datasets"
    with pytest.raises(UnsafeNameError):
        child_path(datasets, "../../somewhere")
    with pytest.raises(NotProductDirError):
        generate_corpus("face", n=10, out=victim, overwrite=True)
    assert (victim / "precious.txt").read_text() == "keep me"
    ds = generate_corpus("face", n=10, out=child_path(datasets, "faces"))
    assert is_product_dir(ds.root)
    again = generate_corpus("face", n=12, out=ds.root, overwrite=True)  # its own: replaced
    assert len(again.items) == 12


def test_import_overwrite_refuses_a_foreign_folder(tmp_path):
    import fixtures_importers as fx

    from affectlab.data.importers import ImportError_, import_corpus

    src = fx.write_ravdess(tmp_path / "src")
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "notes.txt").write_text("mine")
    with pytest.raises(ImportError_, match="not created by affectlab"):
        import_corpus("ravdess", src, victim, overwrite=True)
    assert (victim / "notes.txt").read_text() == "mine"
    report = import_corpus("ravdess", src, tmp_path / "out")
    assert is_product_dir(report.out)
    import_corpus("ravdess", src, tmp_path / "out", overwrite=True)


def test_run_dirs_are_marked_and_run_names_follow_the_rule(tmp_path):
    from affectlab.engine.config import ConfigError, validate_config

    base = {"dataset": str(tmp_path), "model": "resnet18", "method": "ce"}
    for bad in ("../../x", "a/b", "CON", ".hidden", "x" * 101):
        with pytest.raises(ConfigError, match="name"):
            validate_config({**base, "name": bad}, source="test")
    cfg = validate_config({**base, "name": "ok-run"}, source="test")
    assert cfg.run_dir().parent.name == "runs" and cfg.run_dir().name == "ok-run"
