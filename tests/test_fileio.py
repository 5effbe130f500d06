from affectlab.fileio import read_json_dict, read_yaml_dict


def test_readers_return_mappings_and_tolerate_missing_or_broken_files(tmp_path):
    (tmp_path / "ok.json").write_text('{"a": 1}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "bad.json").write_text("{oops")
    (tmp_path / "ok.yaml").write_text("a: 1\nb: [x, y]\n")
    (tmp_path / "bad.yaml").write_text("a: [unclosed\n")
    assert read_json_dict(tmp_path / "ok.json") == {"a": 1}
    assert read_json_dict(tmp_path / "list.json") == {}
    assert read_json_dict(tmp_path / "bad.json") == {}
    assert read_json_dict(tmp_path / "missing.json") == {}
    assert read_yaml_dict(tmp_path / "ok.yaml") == {"a": 1, "b": ["x", "y"]}
    assert read_yaml_dict(tmp_path / "bad.yaml") == {}
    assert read_yaml_dict(tmp_path) == {}  # a directory is not a file


def test_atomic_write_replaces_whole_or_not_at_all(tmp_path):
    import pytest

    from affectlab.fileio import atomic_write

    path = tmp_path / "sub" / "f.txt"
    atomic_write(path, lambda f: f.write(b"one"))
    assert path.read_bytes() == b"one"

    def half(f):
        f.write(b"tw")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, half)
    assert path.read_bytes() == b"one" and sorted(p.name for p in path.parent.iterdir()) == ["f.txt"]
    atomic_write(path, lambda f: f.write(b"two"), backup=tmp_path / "sub" / "f.old")
    assert path.read_bytes() == b"two" and (tmp_path / "sub" / "f.old").read_bytes() == b"one"


def test_json_safe_makes_plain_json_values(tmp_path):
    import json

    import numpy as np
    import torch

    from affectlab.fileio import json_safe

    value = {"a": np.float64(0.5), "b": [float("nan"), float("inf"), 1], 3: (np.int64(2),),
             "p": tmp_path, "t": torch.tensor(1.5), "ok": True, "none": None}
    assert json_safe(value) == {"a": 0.5, "b": [None, None, 1], "3": [2], "p": str(tmp_path),
                                "t": 1.5, "ok": True, "none": None}
    json.dumps(json_safe(value), allow_nan=False)
