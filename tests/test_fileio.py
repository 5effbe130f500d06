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
