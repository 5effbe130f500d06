"""`affectlab bench` wiring and its corpus / annotate lines (tiny sizes: correctness, not speed)."""

from unittest import mock

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from affectlab.bench.corpus import bench_corpus
from affectlab.bench.rating import bench_annotate
from affectlab.cli import app

runner = CliRunner()


def test_bench_passes_its_options_to_run_bench():
    table = pd.DataFrame({"method": ["ce"], "ratio": [1.0]})
    with mock.patch("affectlab.bench.training.run_bench", return_value=table) as run, \
            mock.patch("affectlab.bench.training.format_table", return_value="THE TABLE"):
        res = runner.invoke(app, ["bench", "--steps", "3", "--batch-size", "8", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "THE TABLE" in res.output
    assert run.call_args.args == ("face", 3, 8) and run.call_args.kwargs["threads"] == 1
    assert run.call_args.kwargs["methods_filter"] is None
    with mock.patch("affectlab.bench.training.run_bench", return_value=table) as run, \
            mock.patch("affectlab.bench.training.format_table", return_value="THE TABLE"):
        res = runner.invoke(app, ["bench", "--method", "dmue", "--method", "ldlva"])
        assert res.exit_code == 0, res.output
        assert run.call_args.kwargs["methods_filter"] == ["dmue", "ldlva"]
    res = runner.invoke(app, ["bench", "--method", "dmu"])  # refused by run_bench, timing nothing
    assert res.exit_code == 2 and "unknown method(s) dmu" in res.output


def test_bench_rejects_an_unknown_part():
    res = runner.invoke(app, ["bench", "--what", "everything"])
    assert res.exit_code == 2


def test_corpus_line_generates_both_modalities():
    table = bench_corpus(faces=12, utterances=10)
    assert table["corpus"].tolist() == ["face", "speech"]
    assert table["items"].tolist() == [12, 10]
    assert (table["items_per_s"] > 0).all() and table["meets"].dtype == bool


def test_annotate_line_reports_no_lost_or_duplicated_ratings():
    table = bench_annotate(raters=3, ratings_each=4)
    row = table.iloc[0]
    assert row["backend"] == "sqlite" and row["ratings"] == 12
    assert row["lost"] == 0 and row["duplicated"] == 0 and bool(row["meets"])


# -- live ----------------------------------------------------------------------------------

def test_moving_faces_truth_is_where_the_faces_are():
    from affectlab.bench.live import moving_faces
    from affectlab.features.face import YuNetDetector, iou

    clip = moving_faces(8)
    assert clip.frames.shape == (8, 480, 640, 3) and len(clip.truth) == 8
    assert not np.array_equal(clip.frames[0], clip.frames[1])  # the faces move
    np.testing.assert_array_equal(moving_faces(8).frames, clip.frames)  # deterministic
    det = YuNetDetector(max_side=None)
    for frame, truth in zip(clip.frames, clip.truth, strict=True):
        boxes = det.detect(frame, color="bgr")
        assert len(boxes) == 2
        assert all(max(iou(b, t) for b in boxes) >= 0.6 for t in truth), (boxes, truth)
    assert clip.truth[0][0][0] < clip.truth[-1][0][0]  # the big face goes right
    assert clip.truth[0][1][0] > clip.truth[-1][1][0]  # the small one left


def test_live_face_line_scores_every_pipeline_in_one_run():
    from affectlab.bench.live import bench_live_face, live_summary

    table = bench_live_face(n_frames=30, redetect_every=5)
    assert table["pipeline"].tolist() == ["naive", "yunet", "haar+track", "yunet+track"]
    naive = table.iloc[0]
    assert naive["speedup"] == 1.0 and naive["agreement"] == 1.0 and naive["recall"] == 1.0
    ours = table.set_index("pipeline").loc["yunet+track"]
    assert ours["agreement"] == 1.0 and ours["recall"] == 1.0 and ours["false_pos"] == 0
    assert ours["full_detections"] == 6  # frames 1, 6, 11, 16, 21, 26
    np.testing.assert_allclose(table["speedup"], naive["ms_per_frame"] / table["ms_per_frame"])
    np.testing.assert_allclose(table["frames_per_s"], 1000 / table["ms_per_frame"])
    line = live_summary(table)
    assert line.startswith(f"live face: {ours['speedup']:.1f}× the naive pipeline")
    assert "agreement 100% of 30 frames" in line


def test_scoring_by_hand():
    from affectlab.bench.live import _score

    truth = [[(0, 0, 10, 10)], [(0, 0, 10, 10)], [(0, 0, 10, 10)]]
    found = {"naive": [[(0, 0, 10, 10)], [], [(1, 0, 10, 10)]],
             "x": [[(0, 0, 10, 9)], [(0, 0, 10, 10)], [(50, 50, 5, 5)]]}
    scores = _score(found, truth)
    # x agrees on frame 0 only, of the two frames where naive found a face
    assert scores["x"]["agreement"] == 0.5 and scores["naive"]["agreement"] == 1.0
    assert scores["x"]["recall"] == pytest.approx(2 / 3) and scores["x"]["false_pos"] == 1
    assert scores["naive"]["recall"] == pytest.approx(2 / 3)
    assert scores["naive"]["naive_frames"] == 2


def test_live_audio_line():
    from affectlab.bench.live import bench_live_audio

    row = bench_live_audio(seconds=3.0, chunk_ms=20, window_s=2.0).iloc[0]
    assert row["chunks"] == 51  # the chunks from 2.00 s to 3.00 s, each after a full window
    assert 0 < row["push_ms"] < row["latency_ms"] and row["window_ms"] > 0
    assert row["meets"] == (row["real_time_factor"] < 1) and row["real_time_factor"] > 0
    with pytest.raises(ValueError, match="seconds"):
        bench_live_audio(seconds=1.0)


def test_bench_live_wiring():
    face = pd.DataFrame({"pipeline": ["naive", "yunet+track"], "ms_per_frame": [100.0, 5.0],
                         "frames_per_s": [10.0, 200.0], "speedup": [1.0, 20.0],
                         "agreement": [1.0, 0.97]})
    face.attrs["naive_frames"] = 40
    with mock.patch("affectlab.bench.live.bench_live_face", return_value=face) as bf, \
            mock.patch("affectlab.bench.live.bench_live_audio",
                       return_value=pd.DataFrame({"real_time_factor": [0.2]})) as ba:
        res = runner.invoke(app, ["bench", "--what", "live", "--frames", "40"])
    assert res.exit_code == 0, res.output
    assert bf.call_args.args == (40,) and bf.call_args.kwargs["threads"] == 1
    assert ba.call_args.kwargs["threads"] == 1
    assert ("live face: 20.0× the naive pipeline (5.0 vs 100.0 ms/frame, 200 vs 10.0 frames/s), "
            "agreement 97% of 40 frames") in res.output and "met)" in res.output


# -- explore -------------------------------------------------------------------------------

def test_explore_line_times_the_pages_steps_on_a_synthetic_run():
    from affectlab.bench.explore import bench_explore, explore_summary

    table = bench_explore(sizes=(300, 2_500), dim=8, umap=False, repeats=1)
    assert table["items"].tolist() == [300, 2_500]
    steps = ["load_s", "pca_s", "colour_s", "figure_s", "json_s"]
    assert (table[steps] > 0).all().all()
    np.testing.assert_allclose(table["first_map_s"], table[steps].sum(axis=1))
    assert table["json_mb"].iloc[1] > table["json_mb"].iloc[0]  # the map grows with the items
    assert table["meets"].tolist() == (table["first_map_s"] <= 2.0).tolist()
    assert "umap_s" not in table.columns
    line = explore_summary(table)
    assert line.splitlines()[1].startswith("explore 2,500 items: first map ")


def test_synthetic_run_is_a_run_the_explore_page_reads(tmp_path):
    from affectlab.bench.explore import CLASSES, synthetic_run
    from affectlab.explore.run_outputs import load_run_outputs

    out = load_run_outputs(synthetic_run(tmp_path, 64, dim=5))
    assert out.n == 64 and out.embeddings.shape == (64, 5) and out.class_names == list(CLASSES)
    np.testing.assert_allclose(out.pred.sum(1), 1.0, atol=1e-5)
    assert (out.uncertainty <= np.log(len(CLASSES)) + 1e-9).all()  # raw entropy, as saved


def test_bench_explore_is_wired_to_the_cli():
    table = pd.DataFrame({"items": [10], "first_map_s": [0.1]})
    with mock.patch("affectlab.bench.explore.bench_explore", return_value=table) as run, \
            mock.patch("affectlab.bench.explore.explore_summary", return_value="SUMMARY"):
        res = runner.invoke(app, ["bench", "--what", "explore", "--explore-items", "500",
                                  "--explore-dim", "16", "--no-umap"])
    assert res.exit_code == 0, res.output
    assert "SUMMARY" in res.output
    assert run.call_args.args == ([500], 16) and run.call_args.kwargs == {"umap": False}


@pytest.mark.slow  # a second pytest and a bench in subprocesses (~20 s)
def test_the_gpu_check_script_runs_dry_on_the_cpu(tmp_path):
    """scripts/gpu-check.sh is what a session with a lent GPU runs; here, without its wheels
    and on the CPU, it still runs its steps and writes its three outputs."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "OUT": str(tmp_path), "SKIP_WHEELS": "1", "PYTHON": sys.executable,
           "BENCH_ARGS": "--batch-size 4 --steps 1 --method emd2 --device cpu"}
    done = subprocess.run(["bash", str(repo / "scripts" / "gpu-check.sh")], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "cuda False" in (tmp_path / "gpu.txt").read_text()
    assert "skipped" in (tmp_path / "cuda-tests.txt").read_text()
    bench = (tmp_path / "bench.txt").read_text()
    assert "emd2" in bench and "ops" in bench
