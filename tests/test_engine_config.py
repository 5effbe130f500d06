import json

import pytest
import yaml

from affectlab.engine.config import (
    ConfigError,
    RunConfig,
    apply_overrides,
    load_config,
    parse_overrides,
    save_config,
    validate_config,
)

BASE = {"dataset": "data/datasets/faces-default", "model": "resnet18", "method": "ce"}


def test_typo_field_is_named():
    with pytest.raises(ConfigError) as err:
        validate_config({**BASE, "epoch": 3})
    assert "epoch" in str(err.value) and "unknown field" in str(err.value)


def test_unknown_method_lists_known_ones():
    with pytest.raises(ConfigError) as err:
        validate_config({**BASE, "method": "ce+fspl-xx"})
    msg = str(err.value)
    assert "method" in msg and "'ce+fspl-xx'" in msg
    for known in ("ce", "ce+fspl-kl", "sgm", "ldlva", "dmue"):
        assert known in msg


def test_unknown_model_lists_known_ones():
    with pytest.raises(ConfigError, match="known models: .*resnet18"):
        validate_config({**BASE, "model": "vgg"})


@pytest.mark.parametrize("field,value", [("epochs", 0), ("lr", -1.0), ("batch_size", 0),
                                         ("device", "tpu"), ("weight_decay", -0.1),
                                         ("checkpoint_every", 0), ("name", "a/b")])
def test_out_of_range_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"\b{field}\b"):
        validate_config({**BASE, field: value})


@pytest.mark.parametrize("method,params,expected", [
    ("ce+fspl-kl", {"alpah": 3.0}, r"method_params: .*no parameter\(s\) \['alpah'\]; valid: .*'alpha'"),
    ("ce+fspl-kl", {"alpha": "abc"},
     r"method_params: method 'ce\+fspl-kl': alpha must be a finite number ≥ 0, got 'abc'"),
    ("ce+fspl-kl", {"alpha": float("nan")}, "alpha must be a finite number"),
    ("ce+fspl-kl", {"class_weights": 1}, "class_weights must be true or false"),
    ("sgm", {"k": 2.5}, "k must be an integer"),
    ("sgm", {"k": True}, "k must be an integer"),
    ("dmue", {"branch_precision": "fp8"}, "branch_precision must be one of auto, float32, bfloat16"),
    ("dmue", {"branch_layout": "grouped"}, "branch_layout must be one of loop, stacked"),
    ("ldlva", {"neighbour_mode": 3}, "neighbour_mode must be one of bank, exact, got 3"),
    # bounds, not only names and types (these passed the config before)
    ("ce+fspl-kl", {"alpha": -1}, "alpha must be a finite number ≥ 0, got -1"),
    ("ce+fspl-kl", {"decimals": 9}, r"decimals must be an integer in \[0, 4\], got 9"),
    ("sgm", {"sigma": 0.0}, "sigma must be a finite number > 0, got 0.0"),
    ("sgm", {"subclass_components": 0}, "subclass_components must be an integer in .* or 'bic'"),
    ("ldlva", {"bandwidth": 0}, "bandwidth must be a finite number > 0, got 0"),
    ("dmue", {"aux_dropout": 1.0}, r"aux_dropout must be a finite number in \[0, 1\), got 1.0"),
    ("dmue", {"ramp_epoch": 0}, "ramp_epoch must be an integer"),
])
def test_bad_method_params_are_refused_at_config_time(method, params, expected):
    with pytest.raises(ConfigError, match=expected) as err:
        validate_config({**BASE, "method": method, "method_params": params})
    assert "Value error" not in str(err.value)


def test_good_method_params_pass_and_ints_count_as_floats():
    cfg = validate_config({**BASE, "method": "dmue",
                           "method_params": {"sp_weight": 10, "branch_precision": "float32"}})
    assert cfg.method_params == {"sp_weight": 10, "branch_precision": "float32"}


@pytest.mark.parametrize("params,expected", [
    ({"width": -5}, r"model_params: model 'resnet18': width must be an integer in \[1, 128\], got -5"),
    ({"width": 10**6}, "width must be an integer in"),
    ({"embedding_dim": 0}, "embedding_dim must be an integer"),
    ({"dropout": 1.5}, "dropout must be a finite number in"),
    ({"width": 8.0}, "width must be an integer"),
])
def test_model_params_are_bounded_at_config_time(params, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_config({**BASE, "model_params": params})


@pytest.mark.parametrize("field,value,expected", [
    ("lr", float("inf"), "lr: Input should be a finite number"),
    ("lr", float("nan"), "lr: Input should be a finite number"),
    ("lr", True, "lr: must be a finite number, got True"),
    ("weight_decay", float("inf"), "weight_decay: Input should be a finite number"),
    ("epochs", 1e20, r"epochs: Input should be a valid integer, got 1e\+20"),
    ("epochs", 2.5, "epochs: Input should be a valid integer"),
    ("epochs", 3.0, "epochs: Input should be a valid integer"),  # refused, not truncated
    ("epochs", True, "epochs: Input should be a valid integer"),
    ("epochs", 10_001, "epochs: Input should be less than or equal to 10000, got 10001"),
    ("batch_size", 10**9, "batch_size: Input should be less than or equal to 100000"),
    ("num_workers", 1000, "num_workers: Input should be less than or equal to 64"),
    ("checkpoint_every", 0, "checkpoint_every: Input should be greater than or equal to 1"),
    ("seed", 2**40, "seed: Input should be less than or equal to"),
])
def test_run_numbers_are_bounded(field, value, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_config({**BASE, field: value})


def test_numbers_at_their_limits_pass():
    cfg = validate_config({**BASE, "epochs": 10_000, "batch_size": 100_000, "lr": 1e-8,
                           "weight_decay": 0, "num_workers": 64, "seed": 2**32 - 1,
                           "model_params": {"width": 128, "dropout": 0.0}})
    assert cfg.epochs == 10_000 and cfg.seed == 2**32 - 1
    # YAML 1.1 reads 1e-3 as text: it still means a learning rate
    assert validate_config({**BASE, "lr": "1e-3"}).lr == pytest.approx(1e-3)


def test_unknown_model_param_is_named():
    with pytest.raises(ConfigError, match=r"model_params: .*\['widht'\]; valid: .*'width'"):
        validate_config({**BASE, "model_params": {"widht": 8}})


def test_missing_required_field_is_named():
    with pytest.raises(ConfigError, match="dataset: Field required"):
        validate_config({"model": "resnet18"})


def test_method_defaults_fspl_paper_and_generic():
    fspl = validate_config({**BASE, "method": "ce+fspl-rkl"})
    assert (fspl.lr, fspl.batch_size) == (1e-4, 100)  # f-SPL paper: Adam lr 1e-4, batch 100
    ce = validate_config(BASE)
    assert (ce.lr, ce.batch_size) == (1e-3, 32)
    explicit = validate_config({**BASE, "method": "ce+fspl-kl", "lr": 0.5, "batch_size": 7})
    assert (explicit.lr, explicit.batch_size) == (0.5, 7)


def test_default_name_and_run_dir(tmp_path):
    a, b = validate_config(BASE), validate_config(BASE)
    assert a.name.startswith("ce-resnet18-") and a.name != b.name
    assert a.run_dir().parent.name == "runs"
    c = validate_config({**BASE, "out": str(tmp_path / "r")})
    assert c.run_dir() == (tmp_path / "r").resolve()


def test_yaml_and_json_give_the_same_config(tmp_path):
    data = {**BASE, "epochs": 3, "model_params": {"width": 8}, "name": "x1"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "c.json").write_text(json.dumps(data))
    a, b = load_config(tmp_path / "c.yaml"), load_config(tmp_path / "c.json")
    assert a == b and a.epochs == 3 and a.model_params == {"width": 8}


def test_file_errors_name_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, "batchsize": 10}))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "batchsize" in str(err.value)
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="broken.json: cannot parse"):
        load_config(broken)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    other = tmp_path / "c.toml"
    other.write_text("x = 1")
    with pytest.raises(ConfigError, match=r"\.yaml, \.yml or \.json"):
        load_config(other)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_duplicated_yaml_key_is_refused_naming_key_and_lines(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("dataset: d\nmodel: resnet18\nlr: 0.1\nepochs: 3\nlr: 0.2\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == (f"{path}: cannot parse YAML at line 5, column 1: duplicated key "
                              "'lr' (first at line 3)")
    nested = tmp_path / "nested.yaml"
    nested.write_text("dataset: d\nmodel: resnet18\nmodel_params:\n  width: 4\n  width: 8\n")
    with pytest.raises(ConfigError, match="line 5.*duplicated key 'width' .first at line 4"):
        load_config(nested)
    as_json = tmp_path / "dup.json"
    as_json.write_text('{"dataset": "d", "model": "resnet18", "epochs": 1, "epochs": 2}')
    with pytest.raises(ConfigError, match="dup.json: duplicated key 'epochs'"):
        load_config(as_json)


def test_yaml_aliases_are_refused(tmp_path):
    path = tmp_path / "alias.yaml"
    path.write_text("dataset: d\nmodel: resnet18\nmodel_params: &p {width: 4}\nx: *p\n")
    with pytest.raises(ConfigError, match="line 4.*alias \\*p is not allowed"):
        load_config(path)


def test_non_utf8_and_oversized_files_get_one_line(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("dataset: d\nmodel: résnet18\n".encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: not UTF-8 text (byte 0xe9 at offset 19)"
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbf" + yaml.safe_dump(BASE).encode())
    assert load_config(bom).model == "resnet18"
    big = tmp_path / "big.yaml"
    big.write_text("# " + "x" * (1 << 20) + "\n" + yaml.safe_dump(BASE))
    with pytest.raises(ConfigError, match="a run config may have at most 1048576"):
        load_config(big)
    broken = tmp_path / "broken.yaml"
    broken.write_text("dataset: [\n")
    with pytest.raises(ConfigError) as err:
        load_config(broken)
    assert "\n" not in str(err.value) and "line 2" in str(err.value)


@pytest.mark.parametrize("content", [
    b"dataset: d\nmodel: resnet18\nlr: .inf\n",
    b"dataset: d\nmodel: resnet18\nmodel_params:\n  width: -5\n",
    b"dataset: d\nmodel: resnet18\nepochs: 1.0e+20\n",
    b"dataset: d\nmodel: resnet18\nlr: 0.1\nlr: 0.2\n",
    b"dataset: d\nmodel: [\n",
    b"dataset: d\nmodel: resnet18\nmethod_params: {alpha: -1}\nmethod: ce+fspl-kl\n",
    b"dataset: \xff\n",
])
def test_cli_prints_one_line_and_exits_2(tmp_path, content):
    from typer.testing import CliRunner

    from affectlab.cli import app

    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    res = CliRunner().invoke(app, ["train", str(path)])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), res.output


def test_overrides_parse_values_and_reach_nested_fields(tmp_path):
    over = parse_overrides(["epochs=4", "model_params.width=8", "amp=false", "name=run-1",
                            "lr=1e-3"])
    assert over == {"epochs": 4, "model_params.width": 8, "amp": False, "name": "run-1",
                    "lr": 1e-3}
    data = apply_overrides({**BASE, "model_params": {"dropout": 0.1}}, over)
    assert data["model_params"] == {"dropout": 0.1, "width": 8}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(BASE))
    cfg = load_config(path, over)
    assert cfg.epochs == 4 and cfg.model_params == {"width": 8} and cfg.amp is False
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ConfigError, match="not a mapping"):
        apply_overrides({"epochs": 3}, {"epochs.x": 1})


def test_save_config_round_trips(tmp_path):
    cfg = validate_config({**BASE, "method": "ce+fspl-js", "seed": 5, "out": str(tmp_path)})
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again == cfg
    assert isinstance(cfg, RunConfig)
