"""``affectlab study``: the claims registry, the paired statistic, the derived datasets, the
report, the background job, and (slow) one claim end to end at the tiny size."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.study import claims as C
from affectlab.study import stats as S
from affectlab.study.report import format_table, write_report
from affectlab.study.results import claim_result, read_results, write_results

# --------------------------------------------------------------------------- statistic


def test_paired_test_is_scipys_paired_t_with_a_t_interval():
    method, base = [0.61, 0.66, 0.64, 0.70], [0.55, 0.62, 0.61, 0.63]
    r = S.paired_test(method, base)
    d = np.subtract(method, base)
    assert r.mean_diff == pytest.approx(d.mean())
    assert r.p_value == pytest.approx(stats.ttest_rel(method, base).pvalue)
    half = stats.t.ppf(0.975, 3) * d.std(ddof=1) / 2.0  # √4 = 2
    assert r.ci95 == pytest.approx((d.mean() - half, d.mean() + half))
    # the CI excludes 0 exactly when p < 0.05 (both from the same t distribution)
    assert (r.ci95[0] > 0) == (r.p_value < 0.05)


@pytest.mark.parametrize(("method", "base", "direction", "expected"), [
    ([0.7, 0.72, 0.71], [0.6, 0.61, 0.60], "higher", S.HOLDS),
    ([0.7, 0.72, 0.71], [0.6, 0.61, 0.60], "lower", S.REVERSED),
    ([0.5, 0.8, 0.4], [0.6, 0.5, 0.55], "higher", S.NOT_SHOWN),
    ([0.3, 0.31, 0.29], [0.5, 0.52, 0.5], "lower", S.HOLDS),
    ([0.5], [0.4], "higher", S.NOT_SHOWN),            # one seed: nothing to test
    ([0.5, 0.5], [0.5, 0.5], "higher", S.NOT_SHOWN),  # no difference at all
])
def test_verdict_rule(method, base, direction, expected):
    assert S.verdict(S.paired_test(method, base), direction) == expected


def test_a_constant_nonzero_difference_holds_and_nan_seeds_are_dropped():
    r = S.paired_test([0.75, 1.75, 2.75], [0.25, 1.25, 2.25])  # exactly 0.5 each
    assert r.p_value == 0.0 and S.verdict(r, "higher") == S.HOLDS
    r = S.paired_test([0.6, float("nan"), 0.9], [0.5, 0.6, 0.65])
    assert r.n == 2 and r.mean_diff == pytest.approx(0.175)


# --------------------------------------------------------------------------- registry


def test_every_claim_names_arms_of_its_experiment():
    assert len(C.CLAIMS) >= 12
    for c in C.CLAIMS.values():
        exp = C.experiment(c)
        assert exp.arm(c.method) and exp.arm(c.baseline) and c.method != c.baseline
        assert c.direction in ("higher", "lower") and c.split in ("train", "test", "all")
    # the minimum: five f-SPL divergences, EMD² (exact, off-by-one), SGM (NMI,
    # Recall@K, sub-classes), LDLVA under noise, DMUE (latent, flips), the cleanlab peer
    for must in ("fspl-kl-cross-domain", "fspl-js-cross-domain", "emd2-exact",
                 "emd2-off-by-one", "sgm-nmi", "sgm-recall", "sgm-subclasses",
                 "ldlva-label-noise", "dmue-latent", "dmue-flips", "cleanlab-flips"):
        assert must in C.CLAIMS
    assert C.experiment("fspl-rkl-cross-domain").cross_domain
    flips = C.experiment("dmue-flips")
    assert flips.target == "label" and flips.flip_rate == 0.3  # from the single label


def test_resolve_claims():
    assert [c.id for c in C.resolve_claims(["all"])] == list(C.CLAIMS)
    assert [c.id for c in C.resolve_claims(["sgm-nmi", "emd2-exact", "sgm-nmi"])] == \
        ["emd2-exact", "sgm-nmi"]
    with pytest.raises(KeyError, match="unknown claim 'nope'"):
        C.resolve_claims(["nope"])
    with pytest.raises(ValueError, match="at least one"):
        C.resolve_claims([])


def test_cli_list_names_each_claim_on_one_line():
    res = CliRunner().invoke(app, ["study", "--list"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(C.CLAIMS)
    assert "f-SPL" in lines[0] and "[test uar ↑]" in lines[0]
    res = CliRunner().invoke(app, ["study", "nope", "--size", "tiny"])
    assert res.exit_code == 2 and "unknown claim" in res.output


# --------------------------------------------------------------------------- derived data


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    from affectlab.study.corpora import corpus as make

    root = tmp_path_factory.mktemp("study-data")
    return make(root, "face", 60, 0.3, seed=5)


def test_held_out_domain_puts_all_of_synth_b_in_test(corpus):
    from affectlab.data.contract import load_dataset
    from affectlab.study.corpora import held_out_domain

    src = load_dataset(corpus).items
    out = load_dataset(held_out_domain(corpus)).items
    assert len(out) == len(src)
    assert (out.loc[out.domain == "synth-B", "split"] == "test").all()
    a_src, a_out = src[src.domain == "synth-A"], out[out.domain == "synth-A"]
    assert (a_src["split"].to_numpy() == a_out["split"].to_numpy()).all()


def test_training_folds_split_the_training_items_in_two(corpus):
    from affectlab.data.contract import load_dataset
    from affectlab.study.corpora import training_fold

    src = load_dataset(corpus).items
    train_ids = set(src.loc[src.split == "train", "item_id"])
    folds = [load_dataset(training_fold(corpus, f, seed=0)).items for f in (0, 1)]
    tested = [set(f.loc[f.split == "test", "item_id"]) for f in folds]
    assert tested[0] | tested[1] == train_ids and not tested[0] & tested[1]
    for f, other in ((folds[0], tested[1]), (folds[1], tested[0])):
        assert set(f.loc[f.split == "train", "item_id"]) == other  # out-of-sample
        assert set(f.loc[f.split == "val", "item_id"]) == set(src.loc[src.split == "val",
                                                                       "item_id"])
    assert abs(len(tested[0]) - len(tested[1])) <= 1


def test_crowd_claims_score_aggregators_against_the_truth_without_training(tmp_path):
    """The crowd-aggregation claims (the aggregators' measurement on main) need no engine run:
    each arm is the aggregator's soft labels of the seed's corpus, scored against its truth."""
    from affectlab.data.contract import load_dataset
    from affectlab.data.synth.aggregation import measure_aggregators

    out = tmp_path / "crowd"
    res = CliRunner().invoke(app, ["study", "crowd-ds-accuracy", "crowd-ds-kl", "--size",
                                   "tiny", "--seeds", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    records = {r["claim"]: r for r in read_results(out)}
    assert set(records) == {"crowd-ds-accuracy", "crowd-ds-kl"}
    data = load_dataset(next((out / "data").glob("face-n*-s1")))
    want = measure_aggregators(data.items, data.ratings, data.class_names,
                               aggregators=("votes", "ds"))
    acc = records["crowd-ds-accuracy"]
    assert acc["values"]["baseline"][1] == pytest.approx(want["votes"].accuracy)
    assert acc["values"]["method"][1] == pytest.approx(want["ds"].accuracy)
    assert records["crowd-ds-kl"]["values"]["method"][1] == pytest.approx(want["ds"].mean_kl)
    assert not list(out.glob("crowd-aggregation/s*/*/config.yaml"))  # no engine run


def test_cleanlab_self_confidence_is_the_probability_of_the_given_label():
    cleanlab = pytest.importorskip("cleanlab.rank")
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), 30)
    labels = rng.integers(0, 4, 30)
    quality = cleanlab.get_label_quality_scores(labels, probs, method="self_confidence")
    np.testing.assert_allclose(quality, probs[np.arange(30), labels])


# --------------------------------------------------------------------------- report


def _fake_results(out):
    c1, c2 = C.claim("emd2-exact"), C.claim("dmue-latent")
    r1 = claim_result(c1, [0, 1, 2], [0.5, 0.55, 0.52], [0.4, 0.42, 0.41], "tiny")
    r2 = claim_result(c2, [0, 1, 2], [1.0, 1.1, 1.2], [0.9, 0.8, 1.3], "tiny")
    r3 = claim_result(C.claim("cleanlab-flips"), [0, 1, 2], [], [], "tiny",
                      error="arm 'cleanlab' needs cleanlab")
    write_results([r1, r2, r3], out)
    return r1, r2, r3


def test_results_json_has_one_record_per_claim_with_every_field(tmp_path):
    r1, r2, r3 = _fake_results(tmp_path)
    records = json.loads((tmp_path / "results.json").read_text())
    assert [r["claim"] for r in records] == ["emd2-exact", "dmue-latent", "cleanlab-flips"]
    for key in ("claim", "paper", "baseline", "method", "metric", "seeds", "values",
                "mean_diff", "ci95", "p_value", "test", "verdict"):
        assert key in records[0]
    assert records[0]["verdict"] == "holds" and records[0]["values"]["method"][1] == 0.55
    assert records[1]["baseline_metric"] == "kl_nonlabel_truth"
    assert records[2]["verdict"] == "not run" and "cleanlab" in records[2]["error"]
    # a later call for one claim keeps the others' records
    write_results([claim_result(C.claim("emd2-exact"), [0, 1], [0.1, 0.2], [0.2, 0.3],
                                "tiny")], tmp_path)
    again = read_results(tmp_path)
    assert [r["claim"] for r in again] == ["emd2-exact", "dmue-latent", "cleanlab-flips"]
    assert again[0]["seeds"] == [0, 1]


def test_report_has_the_table_and_one_png_per_claim(tmp_path):
    _fake_results(tmp_path)
    path = write_report(tmp_path)
    text = path.read_text()
    assert "| emd2-exact | EMD² | ce → emd2 |" in text and "**holds**" in text
    assert "paired t-test" in text and "Not run: arm 'cleanlab' needs cleanlab" in text
    for claim_id in ("emd2-exact", "dmue-latent"):
        png = tmp_path / "plots" / f"{claim_id}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"![{claim_id}](plots/{claim_id}.png)" in text
    assert not (tmp_path / "plots" / "cleanlab-flips.png").exists()
    from PIL import Image

    with Image.open(tmp_path / "plots" / "emd2-exact.png") as img:
        assert img.size[0] > 300 and len(np.unique(np.asarray(img.convert("L")))) > 10  # drawn


def test_format_table_marks_missing_values():
    table = format_table([{"claim": "x", "baseline": "a", "method": "b", "metric": "uar",
                           "values": {"method": [float("nan")], "baseline": [0.5]},
                           "seeds": [0], "mean_diff": None, "ci95": [None, None],
                           "p_value": None, "verdict": "not shown"}])
    assert "| x |" in table.splitlines()[-1] and "–" in table


# --------------------------------------------------------------------------- the job


def test_study_names_are_plain_directory_names(tmp_path):
    from affectlab.study.jobs import study_dir

    assert study_dir("small-1", tmp_path) == tmp_path / "small-1"
    # the names paths.child_path refuses everywhere else: the audit found "a..", "CON" and
    # "x." accepted here, and a planted link followed out of the studies directory
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "escape").symlink_to(outside)
    for bad in ("../x", "a/b", "", ".hidden", "x" * 300, "a..", "CON", "x.", "a\nb", "escape"):
        with pytest.raises(ValueError, match="study name"):
            study_dir(bad, tmp_path / "studies")


def test_a_dead_worker_shows_failed_and_a_stopped_one_stopped(tmp_path):
    from affectlab.study.jobs import PID_FILE, study_status, write_progress

    write_progress(tmp_path, state="running", done=2, total=5, current="x")
    (tmp_path / PID_FILE).write_text("999999999")  # no such process
    status = study_status(tmp_path)
    assert status.state == "failed" and status.fraction == pytest.approx(0.4)
    write_progress(tmp_path, stopped=True)
    assert study_status(tmp_path).state == "stopped"


# --------------------------------------------------------------------------- end to end


@pytest.mark.slow
def test_one_claim_at_tiny_size_writes_results_and_reuses_its_runs(tmp_path, monkeypatch):
    """``affectlab study emd2-exact --size tiny``: two paired seeds, results.json and
    report.md; a killed run resumes from its checkpoint and finished runs are reused."""
    from affectlab.engine import trainer
    from affectlab.engine.rundir import RunDir

    out = tmp_path / "study"
    original = trainer.Trainer.train_epoch
    def killed_in_second_epoch(self, epoch):
        if self.config.seed == 1 and self.config.method == "emd2" and epoch == 1:
            raise KeyboardInterrupt  # the study is killed mid-run
        return original(self, epoch)

    monkeypatch.setattr(trainer.Trainer, "train_epoch", killed_in_second_epoch)
    args = ["study", "emd2-exact", "--size", "tiny", "--out", str(out), "--threads", "1"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 130  # typer reports the KeyboardInterrupt as 130
    killed = RunDir(out / "face-intensity" / "s1" / "emd2")
    assert killed.has_checkpoint() and not killed.metrics_path.is_file()

    monkeypatch.setattr(trainer.Trainer, "train_epoch", original)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    starts = [e for e in killed.read_events() if e["type"] == "start"]
    assert [e["start_epoch"] for e in starts] == [0, 1]  # resumed, not restarted
    record, = json.loads((out / "results.json").read_text())
    assert record["claim"] == "emd2-exact" and record["seeds"] == [0, 1]
    assert len(record["values"]["method"]) == 2 and record["verdict"] in (
        "holds", "not shown", "reversed")
    assert all(0 <= v <= 1 for v in record["values"]["baseline"])
    assert math.isfinite(record["mean_diff"])
    assert (out / "report.md").is_file() and (out / "plots" / "emd2-exact.png").is_file()
    metrics = pd.read_parquet(RunDir(out / "face-intensity" / "s0" / "ce").outputs_path("test"))
    assert len(metrics) > 0

    # a third call trains nothing: every run is read back
    stamps = {p: p.stat().st_mtime for p in out.glob("face-intensity/s*/*/metrics.json")}
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert {p: p.stat().st_mtime for p in stamps} == stamps
    # another size in the same directory is refused
    res = CliRunner().invoke(app, ["study", "emd2-exact", "--size", "small", "--out", str(out)])
    assert res.exit_code == 2 and "size 'tiny'" in res.output


@pytest.mark.slow
def test_a_background_study_runs_to_finished(tmp_path):
    import time

    from affectlab.study.jobs import launch_study, study_status

    out = tmp_path / "bg"
    launch_study(out, ["emd2-exact"], seeds=1, size="tiny", threads=1)
    deadline = time.time() + 400
    while study_status(out).state == "running" and time.time() < deadline:
        time.sleep(2)
    status = study_status(out)
    assert status.state == "finished", (out / "study.log").read_text()[-2000:]
    assert status.done == status.total == 2
    assert read_results(out)[0]["claim"] == "emd2-exact"


@pytest.mark.parametrize("size", list(C.SIZES))
def test_every_arm_has_a_valid_run_config_at_every_size(size, tmp_path):
    from affectlab.study.runner import arm_runs, run_config

    jobs = arm_runs(C.resolve_claims(["all"]), [0], tmp_path)
    assert len({(j.experiment.id, j.arm.name) for j in jobs}) == len(jobs)
    for job in (j for j in jobs if j.arm.kind != "aggregator"):  # those train nothing
        cfg = run_config(job, C.SIZES[size], tmp_path / "data")
        assert cfg.epochs == C.SIZES[size].epochs and cfg.seed == 0
        assert cfg.target == job.experiment.target
        if job.experiment.cross_domain:
            assert cfg.train_domains == ["synth-A"] and cfg.test_domains == ["synth-B"]
    paper = run_config(next(j for j in jobs if j.arm.method == "ce+fspl-kl"), C.SIZES["paper"],
                       tmp_path)
    assert (paper.lr, paper.batch_size) == (1e-4, 100)  # the f-SPL paper's
