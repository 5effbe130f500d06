"""The aggregation measurement (affectlab.data.synth.aggregation): hand-worked scores, the
paired tests, and that it tells a good aggregator from a bad one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.data.synth.aggregation import (
    KL_EPS,
    mcnemar_p,
    measure_aggregators,
    run_aggregation_study,
    true_distributions,
    wilcoxon_p,
)
from affectlab.data.synth.corpus import corpus_tables, generate_corpus
from affectlab.data.synth.raters import RaterConfig

NAMES = ["a", "b", "c"]


def _tiny():
    """Two items rated by five raters: votes [3, 2, 0] and [0, 1, 4]."""
    items = pd.DataFrame({"item_id": ["x", "y"], "true_dist_a": [0.6, 0.5],
                          "true_dist_b": [0.4, 0.1], "true_dist_c": [0.0, 0.4]})
    votes = {"x": [0, 0, 0, 1, 1], "y": [2, 2, 2, 2, 1]}
    ratings = pd.DataFrame([(i, f"r{j}", "category", float(v)) for i, vs in votes.items()
                            for j, v in enumerate(vs)],
                           columns=["item_id", "rater_id", "scale", "value"])
    return items, ratings


def test_votes_scores_by_hand():
    items, ratings = _tiny()
    score = measure_aggregators(items, ratings, NAMES, aggregators=["votes"])["votes"]
    # x: votes equal the truth; y: votes [0, .2, .8] against truth [.5, .1, .4]
    np.testing.assert_array_equal(score.correct, [True, False])
    np.testing.assert_allclose(score.tv, [0.0, 0.5])
    q = (np.array([0.0, 0.2, 0.8]) + KL_EPS) / (1 + 3 * KL_EPS)
    kl_y = 0.5 * np.log(0.5 / q[0]) + 0.1 * np.log(0.1 / q[1]) + 0.4 * np.log(0.4 / q[2])
    q_x = (np.array([0.6, 0.4, 0.0]) + KL_EPS) / (1 + 3 * KL_EPS)
    kl_x = 0.6 * np.log(0.6 / q_x[0]) + 0.4 * np.log(0.4 / q_x[1])
    np.testing.assert_allclose(score.kl, [kl_x, kl_y])
    assert score.accuracy == 0.5 and list(score.item_ids) == ["x", "y"]


def test_unrated_items_are_left_out_of_every_aggregator():
    items, ratings = _tiny()
    items = pd.concat([items, pd.DataFrame({"item_id": ["z"], "true_dist_a": [1.0],
                                            "true_dist_b": [0.0], "true_dist_c": [0.0]})])
    scores = measure_aggregators(items, ratings, NAMES)
    assert {len(s.correct) for s in scores.values()} == {2}


def test_true_distributions_needs_the_truth_columns():
    items, _ = _tiny()
    np.testing.assert_allclose(true_distributions(items, ["c", "a"])[1], [0.4, 0.5])
    with pytest.raises(ValueError, match=r"truth column\(s\) \['true_dist_b'\].*generated"):
        true_distributions(items.drop(columns="true_dist_b"), NAMES)


def test_mcnemar_exact_hand_values():
    a = np.array([True] * 5 + [False] * 3 + [True] * 10)
    b = np.array([False] * 5 + [False] * 3 + [True] * 10)
    assert mcnemar_p(a, b) == pytest.approx(2 * 0.5**5)      # 5 discordant, all one way
    assert mcnemar_p(a, a) == 1.0
    c = np.array([True, False, True, False])
    d = np.array([False, True, False, True])
    assert mcnemar_p(c, d) == pytest.approx(1.0)              # 2 against 2
    with pytest.raises(ValueError, match="paired"):
        mcnemar_p(a, b[:3])


def test_wilcoxon_against_scipy(rng):
    x = rng.random(40)
    y = x + rng.normal(0.1, 0.05, 40)
    assert wilcoxon_p(x, y) == pytest.approx(stats.wilcoxon(x, y).pvalue)
    assert wilcoxon_p(x, x) == 1.0


def test_a_broken_aggregation_scores_worse():
    """Ratings whose labels are shuffled across items carry no information: every aggregator
    then scores near chance, far below the same aggregator on the real ratings."""
    tables = corpus_tables("face", 400, 0)
    real = measure_aggregators(tables.items, tables.ratings, aggregators=["votes", "mace"])
    shuffled = tables.ratings.copy()
    cat = shuffled["scale"] == "category"
    shuffled.loc[cat, "value"] = np.random.default_rng(0).permutation(
        shuffled.loc[cat, "value"].to_numpy())
    broken = measure_aggregators(tables.items, shuffled, aggregators=["votes", "mace"])
    for name in ("votes", "mace"):
        assert real[name].accuracy > 0.9 and broken[name].accuracy < 0.3
        assert broken[name].mean_kl > real[name].mean_kl
        assert broken[name].mean_tv > real[name].mean_tv
        assert mcnemar_p(real[name].correct, broken[name].correct) < 1e-10


def test_many_spammers_separate_the_models_from_votes():
    """With a third of the raters spamming, MACE and one-coin DS recover the dominant class
    better than the plain votes (paired test on the same items), as the README reports."""
    study = run_aggregation_study((0, 1), 600, rater_config=RaterConfig(n_spammers=20),
                                  aggregators=["votes", "one-coin", "mace"])
    table = study.table().set_index("aggregator")
    for name in ("one-coin", "mace"):
        assert table.loc[name, "accuracy"] > table.loc["votes", "accuracy"] + 0.02
        assert table.loc[name, "p_mcnemar_vs_votes"] < 0.01
        assert table.loc[name, "tv"] < table.loc["votes", "tv"]
    assert np.isnan(table.loc["votes", "p_mcnemar_vs_votes"])
    pooled = study.pooled("mace")
    assert len(pooled.correct) == 1200 and pooled.item_ids[600] == "1/000000"


def test_study_arguments():
    with pytest.raises(ValueError, match="distinct"):
        run_aggregation_study((1, 1), 50)
    with pytest.raises(ValueError, match="at least one"):
        run_aggregation_study((), 50)
    study = run_aggregation_study((3,), 50, aggregators=["votes", "ds"])
    with pytest.raises(ValueError, match="baseline 'mace'"):
        study.table("mace")
    assert study.table()["accuracy_sd"].tolist() == [0.0, 0.0]


def test_cli_prints_the_table_and_scores_a_dataset(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["data", "aggregators", "--n", "60", "--seed", "4"])
    assert res.exit_code == 0, res.output
    assert "seeds 4" in res.output and "p_mcnemar_vs_votes" in res.output
    assert all(name in res.output for name in ("votes", "one-coin", "glad", "mace"))
    ds = generate_corpus("face", 30, 0, out=tmp_path / "g", renderer=_flat_face)
    res = runner.invoke(app, ["data", "aggregators", "--dataset", str(ds.root)])
    assert res.exit_code == 0, res.output
    assert "g: 30 rated items" in res.output
    res = runner.invoke(app, ["data", "aggregators", "--spammers", "60"])
    assert res.exit_code == 2 and "n_spammers" in res.output


def _flat_face(truth, rng):
    return np.full((64, 64), 100, dtype=np.uint8)
