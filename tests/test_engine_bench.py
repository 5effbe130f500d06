"""core.engine.bench: one row per method, ratios against ce on the same batch, skips noted."""

from __future__ import annotations

import pandas as pd
import pytest

from core.engine.bench import format_table, run_bench

TINY = {"width": 4, "embedding_dim": 8}


@pytest.mark.slow  # a dozen full training steps of four methods
def test_bench_rows_ratios_and_exact_variant():
    frame = run_bench("face", steps=1, batch_size=8, warmup=0, device="cpu",
                      methods_filter=["ldlva", "dmue"], model_params=TINY)
    assert list(frame["method"]) == ["ce", "ldlva", "ldlva (exact)", "dmue"]
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
    assert "device=cpu" in text and "ldlva (exact)" in text


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
