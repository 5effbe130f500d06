"""f-SPL (SPEC §2): the table, the generic (f, f′, f*) construction, ε handling, similarities
and the FSPLLoss module."""

import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

from affectlab.losses import FSPLLoss, embedding_similarity, fspl, torch_label_similarity
from affectlab.losses.fspl import DIVERGENCES, EPS, F_DIVERGENCES, fspl_generic

D64 = torch.float64
unit2 = st.floats(0.0, 2.0, allow_nan=False)


def t64(x):
    return torch.tensor(x, dtype=D64)


# -- hand-worked values at (S, C) = (1, 0.5) -----------------------------------------------
# KL:        1 − 0.5·log 1 − 0.5 + 0.5·log 0.5            = 0.5 + 0.5·ln 0.5 ≈ 0.153426
# RKL:       log 1 + 0.5/1 − log 0.5 − 1                  = ln 2 − 0.5      ≈ 0.193147
# Pearson:   (0.5 − 1)²                                    = 0.25
# Hellinger: √1 + 0.5/√1 − 2√0.5                           = 1.5 − √2       ≈ 0.085786
# JS:        1.5·log 2 − 0.5·log 2 − 1.5·log 1.5 + 0.5·log 1 = ln 2 − 1.5·ln 1.5 ≈ 0.084950
HAND = {
    "kl": (0.5 + 0.5 * math.log(0.5), 0.153426),
    "rkl": (math.log(2) - 0.5, 0.193147),
    "pearson": (0.25, 0.25),
    "hellinger": (1.5 - math.sqrt(2), 0.085786),
    "js": (math.log(2) - 1.5 * math.log(1.5), 0.084950),
}


@pytest.mark.parametrize("div", DIVERGENCES)
def test_table_hand_value(div):
    exact, rounded = HAND[div]
    got = float(fspl(t64(1.0), t64(0.5), div))
    assert got == pytest.approx(exact, rel=1e-9)
    assert got == pytest.approx(rounded, abs=1e-6)


@pytest.mark.parametrize("div", DIVERGENCES)
def test_generic_equals_table_on_grid(div):
    g = torch.cat([t64([1e-3, 5e-3]), torch.linspace(0.01, 2.0, 60, dtype=D64)])
    S, C = torch.meshgrid(g, g, indexing="ij")
    table = fspl(S, C, div)
    generic = fspl_generic(S, C, div)
    assert torch.allclose(generic, table, rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("div", DIVERGENCES)
def test_conjugate_satisfies_fenchel_young_equality(div):
    """f*(f′(t)) = t·f′(t) − f(t): f* really is f's convex conjugate at u = f′(t); f(1) = 0."""
    fd = F_DIVERGENCES[div]
    t = torch.linspace(0.01, 2.0, 200, dtype=D64)
    assert torch.allclose(fd.f_conj(fd.f_prime(t)), t * fd.f_prime(t) - fd.f(t), atol=1e-12)
    assert float(fd.f(t64(1.0))) == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("div", DIVERGENCES)
def test_conjugate_is_the_supremum(div):
    """f*(u) ≥ t·u − f(t) for every t, with the max over a dense grid reaching f*(u)."""
    fd = F_DIVERGENCES[div]
    t = torch.linspace(1e-3, 6.0, 20001, dtype=D64)
    for t0 in (0.3, 1.0, 1.7):
        u = fd.f_prime(t64(t0))
        sup = float((t * u - fd.f(t)).max())
        assert sup <= float(fd.f_conj(u)) + 1e-12
        assert sup == pytest.approx(float(fd.f_conj(u)), abs=1e-6)


@pytest.mark.parametrize("div", DIVERGENCES)
@given(s=unit2, c=unit2)
def test_non_negative_and_zero_only_at_optimum(div, s, c):
    v = float(fspl(t64(s), t64(c), div))
    assert math.isfinite(v)
    assert v >= -1e-12
    if abs(s - c) > 1e-3:
        assert v > 0


@pytest.mark.parametrize("div", DIVERGENCES)
@given(s=unit2)
def test_exactly_zero_and_flat_at_s_equals_c(div, s):
    S = t64(s).requires_grad_()
    v = fspl(S, t64(s), div)
    assert float(v.detach()) == 0.0
    v.backward()
    assert float(S.grad) == 0.0


@pytest.mark.parametrize("div", DIVERGENCES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients_at_boundaries(div, dtype):
    corners = [0.0, 2.0, 1.0]
    S = torch.tensor([[s] * 3 for s in corners], dtype=dtype).flatten().requires_grad_()
    C = torch.tensor([corners] * 3, dtype=dtype).flatten().requires_grad_()
    v = fspl(S, C, div)
    assert torch.isfinite(v).all()
    assert (v >= 0).all()
    v.sum().backward()
    assert torch.isfinite(S.grad).all() and torch.isfinite(C.grad).all()


@pytest.mark.parametrize("div", DIVERGENCES)
def test_corners_at_optimum_are_zero(div):
    """The literal ε rule would give RKL(0, 0) = −1 and Hellinger(0, 0) = −√ε; ours gives 0."""
    assert float(fspl(t64([0.0, 2.0]), t64([0.0, 2.0]), div).abs().max()) == 0.0


def test_matches_literal_table_away_from_corners():
    """Where the SPEC's term-wise ε is harmless, the shifted evaluation agrees with it."""
    S, C = t64([0.3, 1.2, 1.9]), t64([1.5, 0.4, 1.0])
    lit = {
        "kl": S - C * torch.log(S + EPS) - C + C * torch.log(C + EPS),
        "rkl": torch.log(S + EPS) + C / (S + EPS) - torch.log(C + EPS) - 1,
        "pearson": (C - S) ** 2,
        "hellinger": torch.sqrt(S + EPS) + C / torch.sqrt(S + EPS) - 2 * torch.sqrt(C + EPS),
        "js": (C + 1) * torch.log(1 + S) - C * torch.log(2 * S + EPS)
        - (C + 1) * torch.log(1 + C) + C * torch.log(2 * C + EPS),
    }
    for div, ref in lit.items():
        assert torch.allclose(fspl(S, C, div), ref, rtol=1e-9, atol=1e-10), div


def test_broadcasted_shape_is_preserved():
    S = torch.rand(4, 3, dtype=D64) * 2
    assert fspl(S, S.flip(0), "kl").shape == (4, 3)


@pytest.mark.parametrize(("S", "C", "match"), [
    (t64([1.0, 1.0]), t64([1.0]), "S and C must have the same shape"),
    (t64([2.5]), t64([1.0]), r"S must lie in \[0, 2\]"),
    (t64([-0.1]), t64([1.0]), r"S must lie in \[0, 2\]"),
    (t64([1.0]), t64([-0.5]), r"C must lie in \[0, 2\]"),
    (t64([1.0]), t64([2.1]), r"C must lie in \[0, 2\]"),
    (t64([float("nan")]), t64([1.0]), "S contains NaN"),
    (t64([1.0]), t64([float("nan")]), "C contains NaN"),
])
def test_fspl_bad_input(S, C, match):
    with pytest.raises(ValueError, match=match):
        fspl(S, C, "kl")


def test_fspl_bad_divergence_and_type():
    with pytest.raises(ValueError, match="divergence must be one of kl, rkl, pearson"):
        fspl(t64(1.0), t64(1.0), "tv")
    with pytest.raises(TypeError, match="S must be a numeric"):
        fspl("abc", t64(1.0), "kl")


# -- embedding similarity ---------------------------------------------------------------------

def test_embedding_similarity_hand_value():
    # ĝ_a = [1, 0], ĝ_b = [1, 1]/√2: D² = (1 − 1/√2)² + 1/2 = 2 − √2, S = 2 − √(4 − 2√2)
    s = embedding_similarity(t64([[1.0, 0.0]]), t64([[3.0, 3.0]]))
    assert float(s[0]) == pytest.approx(2 - math.sqrt(4 - 2 * math.sqrt(2)), abs=1e-9)


def test_embedding_similarity_extremes_and_gradient_at_equal_vectors():
    a = t64([[0.2, 0.5, 0.0], [1.0, 0.0, 0.0]]).requires_grad_()
    b = t64([[0.4, 1.0, 0.0], [0.0, 0.0, 4.0]])  # parallel to row 0; orthogonal to row 1
    s = embedding_similarity(a, b)
    vals = s.detach()
    assert float(vals[0]) == pytest.approx(2.0, abs=2e-6)  # √2·√ε from the ε inside the sqrt
    assert float(vals[1]) == pytest.approx(0.0, abs=1e-9)
    s.sum().backward()
    assert torch.isfinite(a.grad).all()
    assert float(a.grad[0].abs().max()) < 1e-6  # flat at the maximum


@given(st.lists(st.floats(0.0, 50.0), min_size=6, max_size=6),
       st.floats(1e-3, 1e3))
def test_embedding_similarity_range_and_scale_invariance(vals, scale):
    a, b = t64(vals[:3]), t64(vals[3:])
    assume(float(a.norm()) > 1e-3 and float(b.norm()) > 1e-3)  # zero vectors stay at 0
    s = embedding_similarity(a, b)
    assert 0.0 <= float(s) <= 2.0
    assert float(embedding_similarity(a * scale, b)) == pytest.approx(float(s), abs=1e-9)


def test_embedding_similarity_bad_input():
    with pytest.raises(ValueError, match="g_a and g_b must have the same shape"):
        embedding_similarity(torch.rand(2, 3), torch.rand(2, 4))
    with pytest.raises(ValueError, match="g_b must be non-negative"):
        embedding_similarity(torch.rand(2, 3), -torch.rand(2, 3))
    with pytest.raises(ValueError, match="g_a contains NaN"):
        embedding_similarity(torch.tensor([float("nan"), 1.0]), torch.rand(2))


def test_torch_label_similarity():
    a = t64([[0.75, 0.25], [1.0, 0.0]])
    b = t64([[0.25, 0.75], [1.0, 0.0]])
    # TV = 0.5 → C = 1; identical → C = 2
    assert torch.allclose(torch_label_similarity(a, b), t64([1.0, 2.0]))
    with pytest.raises(ValueError, match="y_a and y_b must have the same shape"):
        torch_label_similarity(a, b[:, :1])


# -- the module -------------------------------------------------------------------------------

def _triplet_batch(b=6, d=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = [torch.rand(b, d, generator=g, dtype=D64) for _ in range(3)]
    c_s = 1 + torch.rand(b, generator=g, dtype=D64)
    return emb, c_s, 2 - c_s


@pytest.mark.parametrize("div", DIVERGENCES)
def test_fspl_loss_is_alpha_times_pair_terms(div):
    (a, s, d), c_s, c_d = _triplet_batch()
    loss = FSPLLoss(div, alpha=10)
    want = 10 * (fspl(embedding_similarity(a, s), c_s, div)
                 + fspl(embedding_similarity(a, d), c_d, div))
    assert float(loss(a, s, d, c_s, c_d)) == pytest.approx(float(want.mean()), rel=1e-12)
    per = FSPLLoss(div, alpha=3, reduction="none")(a, s, d, c_s, c_d)
    assert torch.allclose(per, 0.3 * want)


def test_fspl_loss_zero_when_similarities_match_and_gradients_flow():
    (a, s, d), _, _ = _triplet_batch()
    c_s, c_d = embedding_similarity(a, s), embedding_similarity(a, d)
    assert float(FSPLLoss("js")(a, s, d, c_s, c_d)) == 0.0
    a = a.clone().requires_grad_()
    FSPLLoss("kl")(a, s, d, torch.full((6,), 2.0, dtype=D64), torch.zeros(6, dtype=D64)).backward()
    assert torch.isfinite(a.grad).all() and float(a.grad.abs().sum()) > 0


def test_fspl_loss_bad_input():
    (a, s, d), c_s, c_d = _triplet_batch()
    with pytest.raises(ValueError, match="c_similar must have 6 entries"):
        FSPLLoss("kl")(a, s, d, c_s[:3], c_d)
    with pytest.raises(ValueError, match=r"c_dissimilar must lie in \[0, 2\]"):
        FSPLLoss("kl")(a, s, d, c_s, c_d + 3)
    with pytest.raises(ValueError, match="g_anchor and g_similar must have the same shape"):
        FSPLLoss("kl")(a, s[:, :2], d, c_s, c_d)
    with pytest.raises(ValueError, match="alpha must be"):
        FSPLLoss("kl", alpha=-1)
    with pytest.raises(ValueError, match="divergence must be one of"):
        FSPLLoss("chi")
    with pytest.raises(ValueError, match="reduction must be"):
        FSPLLoss("kl", reduction="avg")


def test_float32_embeddings_keep_dtype():
    a, s, d = (torch.rand(4, 3) for _ in range(3))
    out = FSPLLoss("rkl")(a, s, d, torch.ones(4), torch.ones(4))
    assert out.dtype == torch.float32 and np.isfinite(float(out))
