"""affectlab.bench.training: one row per method, ratios against ce on the same batch, skips noted."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from affectlab.bench.training import format_table, run_bench

TINY = {"width": 4, "embedding_dim": 8}


@pytest.mark.slow  # a dozen full training steps of four methods
def test_bench_rows_ratios_and_exact_variant():
    frame = run_bench("face", steps=1, batch_size=8, warmup=0, device="cpu",
                      methods_filter=["ldlva", "dmue"], model_params=TINY)
    from affectlab.bench.training import _dmue_branches_in_bfloat16

    expected = ["ce", "ldlva", "ldlva (exact)", "dmue"]
    if _dmue_branches_in_bfloat16(torch.device("cpu")):
        expected.append("dmue (float32 branches)")
    assert list(frame["method"]) == [*expected, "dmue (stacked branches)"]
    timed = frame.set_index("method")
    assert (timed["items"] == 8).all()
    assert (timed["step_ms"] > 0).all() and (timed["ratio"] > 0).all()
    # samples/s is the batch over the step time
    ms = timed.loc["dmue", "step_ms"]
    assert timed.loc["dmue", "samples_per_s"] == pytest.approx(8 / (ms / 1000))
    assert timed.loc["ldlva", "target"] == "≤ 1.6×" and timed.loc["dmue", "target"] == "≤ 2.0×"
    assert "ldlva (bank)" in timed.loc["ldlva (exact)", "note"]
    assert isinstance(timed.loc["ldlva", "meets"], bool)
    text = format_table(frame)
    assert "device=cpu" in text and "amp=False" in text and "ldlva (exact)" in text


def test_bench_notes_methods_it_cannot_build():
    frame = run_bench("speech", steps=1, batch_size=4, warmup=0, device="cpu",
                      methods_filter=["dmue"], model_params={"channels": 8, "hidden": 8})
    dmue = frame.set_index("method").loc["dmue"]
    assert dmue["note"].startswith("skipped") and pd.isna(dmue["ratio"])


def test_bench_validates_arguments():
    with pytest.raises(ValueError, match="modality"):
        run_bench("video")
    with pytest.raises(ValueError, match="steps"):
        run_bench("face", steps=0)
    with pytest.raises(ValueError, match="threads"):
        run_bench("face", threads=0)


def test_paired_ratio_is_the_median_of_per_round_ratios():
    from affectlab.bench.training import _paired_ratio

    # rounds 2 and 3 slowed by load on both sides leave their ratios at 2; per-round ratios
    # 2, 2, 2, 4 → median 2
    assert _paired_ratio([2.0, 8.0, 10.0, 4.0], [1.0, 4.0, 5.0, 1.0]) == pytest.approx(2.0)
    # a burst on the method's side of one round only is outvoted
    assert _paired_ratio([2.0, 2.0, 50.0], [1.0, 1.0, 1.0]) == pytest.approx(2.0)


def test_interleaving_reverses_order_every_other_round():
    from affectlab.bench.training import _time_interleaved

    calls: list[str] = []

    class Step:
        def __init__(self, name):
            self.name = name

        def __call__(self):
            calls.append(self.name)

    times = _time_interleaved([Step("ce"), Step("m")], steps=3, warmup=1,
                              device=torch.device("cpu"))
    assert calls == ["ce", "m", "m", "ce", "ce", "m", "m", "ce"]
    assert [len(t) for t in times] == [3, 3] and all(v >= 0 for t in times for v in t)


def test_bench_times_float32_dmue_branches_where_the_default_is_bfloat16(monkeypatch):
    from affectlab.methods import dmue

    monkeypatch.setattr(dmue, "cpu_computes_bfloat16", lambda: True)
    frame = run_bench("face", steps=1, batch_size=8, warmup=0, device="cpu",
                      methods_filter=["dmue"], model_params=TINY)
    timed = frame.set_index("method")
    assert list(timed.index) == ["ce", "dmue", "dmue (float32 branches)", "dmue (stacked branches)"]
    assert "× dmue" in timed.loc["dmue (float32 branches)", "note"]
    monkeypatch.setattr(dmue, "cpu_computes_bfloat16", lambda: False)
    frame = run_bench("face", steps=1, batch_size=8, warmup=0, device="cpu",
                      methods_filter=["dmue"], model_params=TINY)
    assert list(frame["method"]) == ["ce", "dmue", "dmue (stacked branches)"]


def test_bench_counts_each_steps_operators_and_the_stacked_dmue_dispatches_fewer():
    """The ``ops`` column is a count, so it can be asserted: the stacked layout runs DMUE's
    branches in fewer operators (what sets a launch-bound GPU's pace) than the per-branch one,
    and every method dispatches more than ce, whose step it contains."""
    frame = run_bench("face", steps=1, batch_size=14, warmup=0, device="cpu",
                      methods_filter=["dmue", "emd2"], model_params=TINY)
    ops = frame.set_index("method")["ops"]
    assert (ops > 0).all()
    assert ops["ce"] < ops["emd2"] and ops["ce"] < ops["dmue (stacked branches)"]
    assert ops["dmue (stacked branches)"] < 0.8 * ops["dmue"]
    note = frame.set_index("method").loc["dmue (stacked branches)", "note"]
    assert "its ops" in note and "branch_layout=stacked" in note


def test_op_counter_leaves_out_views_and_counts_computations():
    from affectlab.bench.training import _OpCounter

    x = torch.ones(4, 4)
    with _OpCounter() as counter:
        y = x.view(16)
        z = (y * 2).sum()
        _ = x.t(), x[0], z.detach()
    assert counter.count == 2  # the multiplication and the sum


def test_bench_refuses_an_unknown_method_before_timing_anything():
    with pytest.raises(ValueError, match=r"unknown method\(s\) dmu; known: .*dmue"):
        run_bench("face", steps=1, batch_size=4, warmup=0, device="cpu", methods_filter=["dmu"])
