"""The loss registry (create / available / LossSpec) and the `affectlab losses` command."""

import pytest
import torch
from torch import nn
from typer.testing import CliRunner

import affectlab.losses as L
from affectlab.cli import app

NAMES = ["ce", "fspl-kl", "fspl-rkl", "fspl-pearson", "fspl-hellinger", "fspl-js", "emd2", "sgm"]


def test_available_lists_every_loss_with_defaults():
    specs = L.available()
    assert [s.name for s in specs] == NAMES
    by = {s.name: s for s in specs}
    assert by["ce"].params == {"weight": None, "reduction": "mean"}
    assert by["fspl-kl"].params == {"alpha": 10.0, "reduction": "mean"}
    assert by["sgm"].params == {"sigma": 0.5, "norm_weight": 0.0, "reduction": "mean"}
    assert [s.name for s in specs if s.ordinal_only] == ["emd2"]
    for s in specs:
        assert s.description and "\n" not in s.description
    specs[0].params["reduction"] = "sum"  # callers get copies
    assert L.available()[0].params["reduction"] == "mean"


@pytest.mark.parametrize("name", NAMES)
def test_create_each_with_defaults(name):
    loss = L.create(name)
    assert isinstance(loss, nn.Module)
    spec = {s.name: s for s in L.available()}[name]
    for param, default in spec.params.items():
        if default is not None:
            assert getattr(loss, param) == default


def test_create_builds_the_right_loss():
    assert L.create("fspl-hellinger", alpha=3).divergence == "hellinger"
    assert L.create("fspl-hellinger", alpha=3).alpha == 3.0
    w = torch.tensor([1.0, 2.0])
    z, y = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    assert torch.equal(L.create("ce", weight=w)(z, y), L.soft_cross_entropy(z, y, w))
    assert float(L.create("emd2")(z, y)) == pytest.approx(
        float(L.emd2(torch.softmax(z, 1), nn.functional.one_hot(y).float()).mean()))


def test_unknown_name_lists_known():
    with pytest.raises(L.ParamError, match="unknown loss 'focal'; known losses: ce, fspl-kl, .*sgm"):
        L.create("focal")


def test_unknown_parameter_is_named_with_valid_ones():
    # the same error type as models and methods (it was a TypeError here)
    with pytest.raises(L.ParamError, match=r"loss 'fspl-js' has no parameter\(s\) \['beta'\]; "
                                           r"valid: \['alpha', 'reduction'\]"):
        L.create("fspl-js", beta=1)


@pytest.mark.parametrize(("name", "params", "message"), [
    ("sgm", {"sigma": -1}, "loss 'sgm': sigma must be a finite number > 0, got -1"),
    ("sgm", {"sigma": 0}, "sigma must be a finite number > 0, got 0"),
    ("sgm", {"norm_weight": float("inf")}, "norm_weight must be a finite number ≥ 0, got inf"),
    ("fspl-kl", {"alpha": -0.5}, "loss 'fspl-kl': alpha must be a finite number ≥ 0, got -0.5"),
    ("emd2", {"reduction": "avg"}, "reduction must be one of mean, sum, none, got 'avg'"),
])
def test_bad_parameter_value_is_reported(name, params, message):
    with pytest.raises(L.ParamError) as err:
        L.create(name, **params)
    assert str(err.value) == message if message.startswith("loss") else message in str(err.value)
    with pytest.raises(L.ParamError):  # checked before anything is built, by the same rule
        L.check_params(name, params)


def test_declared_defaults_are_the_constructors_defaults():
    """The registry's declarations and the classes' signatures cannot drift apart."""
    import inspect

    for spec in L.available():
        cls = spec.factory.func if hasattr(spec.factory, "func") else spec.factory
        sig = {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()
               if k not in ("self", "divergence")}
        assert sig == spec.params, spec.name


def test_directly_built_losses_check_their_declared_parameters():
    with pytest.raises(L.ParamError, match="sigma must be a finite number > 0"):
        L.SGMLoss(sigma=0.0)
    with pytest.raises(L.ParamError, match="alpha must be"):
        L.FSPLLoss(alpha=float("nan"))
    with pytest.raises(L.ParamError, match="reduction must be one of"):
        L.sgm_loss(torch.zeros(2, 2), torch.tensor([0, 1]), reduction="max")


def test_functional_reexports():
    from affectlab.losses.emd import emd2
    from affectlab.losses.fspl import embedding_similarity, fspl
    from affectlab.losses.soft_ce import soft_cross_entropy
    assert (L.fspl, L.embedding_similarity, L.emd2, L.soft_cross_entropy) == \
        (fspl, embedding_similarity, emd2, soft_cross_entropy)


def test_cli_lists_losses():
    res = CliRunner().invoke(app, ["losses"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert [ln.split()[0] for ln in lines] == NAMES
    assert "alpha=10.0 (a finite number ≥ 0)" in lines[1]
    assert "sigma=0.5 (a finite number > 0)" in lines[-1]
    assert "reduction='mean' (one of mean, sum, none)" in lines[0]
