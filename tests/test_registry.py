"""The one registry class (affectlab.registry): declared, bounded parameters, one error type,
public register/unregister, and the scalar check every function shares."""

import inspect
import math

import numpy as np
import pytest

import affectlab.losses as losses
import affectlab.methods as methods
import affectlab.models as models
from affectlab.registry import Param, ParamError, Registry, check_values
from affectlab.validation import Interval, check_scalar

# -- check_scalar and Interval ------------------------------------------------------------


@pytest.mark.parametrize(("value", "kind", "kw", "expected"), [
    (3, int, {}, 3),
    (np.int64(3), int, {}, 3),
    (2, float, {}, 2.0),
    (0.5, float, {"interval": Interval(0, 1, high_open=True)}, 0.5),
    (0, float, {"interval": Interval(0)}, 0.0),
    (True, bool, {}, True),
    ("bic", int, {"interval": Interval(1), "also": ("bic",)}, "bic"),
    ("exact", str, {"choices": ("bank", "exact")}, "exact"),
    ([1, 2], object, {}, [1, 2]),
])
def test_check_scalar_accepts(value, kind, kw, expected):
    out = check_scalar(value, "x", kind, **kw)
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize(("value", "kind", "kw", "message"), [
    (True, int, {}, "x must be an integer, got True"),
    (2.0, int, {}, "x must be an integer, got 2.0"),
    (1, bool, {}, "x must be true or false, got 1"),
    (math.nan, float, {}, "x must be a finite number, got nan"),
    (math.inf, float, {"interval": Interval(0)}, "x must be a finite number ≥ 0, got inf"),
    (10**400, float, {}, "x must be a finite number, got 1"),  # beyond float range
    ("1", float, {}, "x must be a finite number, got '1'"),
    (0, float, {"interval": Interval(0, low_open=True)}, "x must be a finite number > 0, got 0"),
    (1.0, float, {"interval": Interval(0, 1, high_open=True)},
     "x must be a finite number in [0, 1), got 1.0"),
    (5, int, {"interval": Interval(0, 4)}, "x must be an integer in [0, 4], got 5"),
    (-1, int, {"interval": Interval(high=-2)}, "x must be an integer ≤ -2, got -1"),
    (0, int, {"interval": Interval(1), "also": ("bic",)}, "x must be an integer ≥ 1 or 'bic', got 0"),
    ("fast", str, {"choices": ("bank", "exact")}, "x must be one of bank, exact, got 'fast'"),
    (1, int, {"choices": (True, 2)}, "x must be one of True, 2, got 1"),  # True is not 1
])
def test_check_scalar_refuses_with_one_error_type(value, kind, kw, message):
    with pytest.raises(ParamError) as err:
        check_scalar(value, "x", kind, where="", **kw)
    assert str(err.value).startswith(message)
    assert isinstance(err.value, ValueError)  # existing `except ValueError` keep working


def test_interval_contains_and_reads():
    half_open = Interval(0, 1, high_open=True)
    assert 0 in half_open and 0.999 in half_open and 1 not in half_open and -1e-9 not in half_open
    assert 0 not in Interval(0, low_open=True) and 1e-300 in Interval(0, low_open=True)
    assert (str(half_open), str(Interval(0, low_open=True)), str(Interval())) == \
        ("in [0, 1)", "> 0", "")
    with pytest.raises(ValueError, match="low"):
        Interval(2, 1)


# -- Param and check_values ---------------------------------------------------------------

def test_param_declarations_are_checked_when_made():
    assert Param("w", float, 1).default == 1.0 and type(Param("w", float, 1).default) is float
    with pytest.raises(ParamError, match="declared default of 'w': w must be a finite number ≥ 0"):
        Param("w", float, -1.0, low=0)
    with pytest.raises(TypeError, match="kind must be one of"):
        Param("w", list, [])
    p = Param("alpha", float, 10.0, low=0, help="weight")
    assert p.expected == "a finite number ≥ 0" and str(p) == "alpha=10.0 (a finite number ≥ 0)"
    assert str(Param("flag", bool, True)) == "flag=True"


def test_check_values_fills_defaults_and_names_unknown_ones():
    params = (Param("a", int, 1, low=0), Param("b", str, "x", choices=("x", "y")))
    assert check_values("thing 't'", params, {"b": "y"}) == {"a": 1, "b": "y"}
    with pytest.raises(ParamError, match=r"thing 't' has no parameter\(s\) \['c'\]; "
                                         r"valid: \['a', 'b'\]"):
        check_values("thing 't'", params, {"c": 1})
    with pytest.raises(ParamError, match="thing 't': a must be an integer ≥ 0, got -1"):
        check_values("thing 't'", params, {"a": -1})
    with pytest.raises(ParamError, match="mapping"):
        check_values("thing 't'", params, [("a", 1)])
    with pytest.raises(ParamError, match=r"\[1, 'z'\]"):  # keys of any type are listed
        check_values("thing 't'", params, {1: 0, "z": 0})


# -- Registry -----------------------------------------------------------------------------

class _Widget:
    """A widget for the tests.

    More text here."""

    colour = "blue"
    param_specs = (Param("size", int, 3, low=1, high=10, help="how big"),)

    def __init__(self, size=3):
        self.size = size


def test_registry_registers_checks_and_creates():
    reg = Registry("widget", metadata={"colour": "red", "round": False})
    assert reg.register("w", _Widget) is _Widget
    entry = reg.get("w")
    # params, description and metadata come from the factory unless given
    assert entry.params == _Widget.param_specs and entry.description == "A widget for the tests."
    assert dict(entry.metadata) == {"colour": "blue", "round": False}
    assert reg.create("w").size == 3 and reg.create("w", size=10).size == 10
    assert reg.check("w", {}) == {"size": 3}
    with pytest.raises(ParamError, match="widget 'w': size must be an integer in \\[1, 10\\], got 11"):
        reg.create("w", size=11)

    @reg.register("v", params=(), description="no parameters", round=True)
    def make_v():
        return "v"

    assert reg.create("v") == "v" and reg.get("v").metadata["round"] is True
    assert reg.names() == ["w", "v"] and [e.name for e in reg.available()] == ["w", "v"]
    with pytest.raises(ParamError, match="unknown widget 'u'; known widgets: w, v"):
        reg.get("u")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("w", _Widget)
    reg.register("w", make_v, params=(), replace=True)
    assert reg.create("w") == "v"
    with pytest.raises(TypeError, match=r"unknown metadata \['shape'\]"):
        reg.register("x", _Widget, shape="square")
    with pytest.raises(TypeError, match="callable"):
        reg.register("x", 3)
    with pytest.raises(ValueError, match="declared twice"):
        reg.register("x", _Widget, params=_Widget.param_specs * 2)
    reg.unregister("v")
    assert "v" not in reg
    with pytest.raises(ParamError, match="unknown widget 'v'"):
        reg.unregister("v")


def test_registered_is_undone_even_after_an_error():
    reg = Registry("widget")
    with pytest.raises(RuntimeError), reg.registered("tmp", _Widget) as entry:
        assert entry.name == "tmp" and reg.create("tmp").size == 3
        raise RuntimeError
    assert "tmp" not in reg


# -- the three registries -----------------------------------------------------------------

def test_one_error_type_and_format_in_all_three_registries(tiny_info, tiny_model):
    cases = [
        (lambda: models.create("resnet18", width=-5),
         "model 'resnet18': width must be an integer in [1, 128], got -5"),
        (lambda: losses.create("sgm", sigma=-1), "loss 'sgm': sigma must be a finite number > 0, got -1"),
        (lambda: methods.create("ce+fspl-kl", tiny_model, tiny_info, alpha=-1),
         "method 'ce+fspl-kl': alpha must be a finite number ≥ 0, got -1"),
        (lambda: models.create("vgg"), "unknown model 'vgg'; known models: convpool, mini_xception, "
                                       "resnet18"),
        (lambda: losses.create("ce", beta=1),
         "loss 'ce' has no parameter(s) ['beta']; valid: ['reduction', 'weight']"),
        (lambda: methods.create("nope", tiny_model, tiny_info), "unknown method 'nope'; known methods: ce, "),
    ]
    for make, message in cases:
        with pytest.raises(ParamError) as err:
            make()
        assert str(err.value).startswith(message), str(err.value)


def test_model_declarations_match_the_constructors():
    for spec in models.available():
        sig = {k: p.default for k, p in inspect.signature(spec.factory.__init__).parameters.items()
               if k != "self"}
        assert sig == spec.params, spec.name
        assert all(p.help for p in spec.param_specs), spec.name


def test_every_declared_parameter_has_help():
    for spec in [*methods.available(), *losses.available()]:
        assert all(p.help for p in spec.param_specs), spec.name


def test_method_registered_through_the_public_api(tiny_info, tiny_model):
    from affectlab.engine.config import ConfigError, validate_config
    from affectlab.methods.base import Method, StepResult

    class Scaled(Method):
        description = "test-only"
        param_specs = (Param("scale", float, 1.0, low=0, low_open=True, help="loss scale"),)
        modalities = ("speech",)

        def training_step(self, batch, epoch, step):
            return StepResult(self.params["scale"] * self.model(batch["x"]).logits.sum())

    base = {"dataset": ".", "model": "convpool", "method": "scaled"}
    with methods.registered("scaled", Scaled):
        spec = next(s for s in methods.available() if s.name == "scaled")
        assert spec.params == {"scale": 1.0} and spec.modalities == ("speech",)
        assert methods.create("scaled", tiny_model, tiny_info, scale=2).params == {"scale": 2.0}
        assert validate_config({**base, "method_params": {"scale": 3}}).method_params == {"scale": 3}
        with pytest.raises(ConfigError, match="method 'scaled': scale must be a finite number > 0"):
            validate_config({**base, "method_params": {"scale": 0}})
        assert methods.incompatibility("scaled", "face", False) == \
            "method 'scaled' supports speech data, not face"
    assert "scaled" not in methods.names()
    with pytest.raises(ConfigError, match="unknown method 'scaled'"):
        validate_config(base)


def test_compatibility_is_one_rule():
    assert methods.incompatibility("ce", "face", False) is None
    assert methods.incompatibility("emd2", "speech", True) is None
    assert "supports face data, not speech" in methods.incompatibility("dmue", "speech", True)
    assert methods.incompatibility("emd2", "face", False, "category") == (
        "method 'emd2' needs ordered classes; scale 'category' is not ordinal (pick an ordinal "
        "scale such as intensity)")
    with pytest.raises(ParamError, match="needs ordered classes; the scale is not ordinal"):
        methods.check_compatible("ce+emd2", "face", False)


def test_form_and_trainer_apply_the_registry_rule(monkeypatch, tmp_path):
    """Both callers go through methods.incompatibility: a changed rule changes both."""
    from affectlab.engine import trainer
    from affectlab.engine.config import ConfigError, validate_config
    from affectlab.pages import train_form as form

    monkeypatch.setattr(methods, "incompatibility",
                        lambda name, modality, ordinal, scale=None: f"no {name} on {modality}")
    with pytest.raises(ConfigError, match="method: no ce on face"):
        form._check_method("ce", "face", "category", False)
    assert form.method_choices("face", False) == []
    cfg = validate_config({"dataset": str(tmp_path), "model": "resnet18", "method": "ce"})

    class _Fake:
        model = None

    with pytest.raises(ConfigError, match="no ce on face"):
        trainer._check_compatible(_Fake(), "face", False, cfg)


@pytest.fixture
def tiny_info():
    import torch

    from affectlab.methods.base import TrainSetInfo

    y = torch.eye(3)[[0, 1, 2, 0, 1, 2]]
    return TrainSetInfo(n_items=6, num_classes=3, soft_labels=y, labels=y.argmax(1))


@pytest.fixture
def tiny_model():
    return models.create("convpool", num_classes=3, channels=4, hidden=4, n_mels=4,
                         kernel_width=2)
