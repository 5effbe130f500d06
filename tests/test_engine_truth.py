"""The truth-known measures (SPEC §9, affectlab.engine.truth) and the protocol fields of a run
(target, train_domains / test_domains, the training split's outputs, LDLVA's aux bounds)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from engine_helpers import isolated_data_env, tiny_config
from sklearn.metrics import normalized_mutual_info_score, roc_auc_score

from affectlab import metrics as M
from affectlab.engine import truth as T
from affectlab.engine.config import ConfigError
from affectlab.engine.evaluate import SplitPredictions, classification_metrics, predict_split
from affectlab.engine.rundir import RunDir
from affectlab.engine.trainer import build_method, build_train_info, train


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    from affectlab.data.synth.corpus import generate_corpus

    tmp = tmp_path_factory.mktemp("engine-truth")
    mp = isolated_data_env(tmp)
    face = tmp / "faces-flip"
    generate_corpus(modality="face", n=120, seed=3, flip_rate=0.3, out=face)
    yield {"tmp": tmp, "face": face}
    mp.__exit__(None, None, None)


def _pred(**kw) -> SplitPredictions:
    n, k = kw["probs"].shape
    base = dict(split="test", embedding=np.zeros((n, 2)), uncertainty=np.zeros(n), latent=None,
                soft=kw["probs"], label=np.zeros(n, dtype=int), item_id=np.arange(n).astype(str),
                domain=np.array(["a"] * n), truth={})
    return SplitPredictions(**(base | kw))


# --------------------------------------------------------------------------- definitions


def test_without_label_zeroes_and_renormalises_by_hand():
    out, keep = T.without_label(np.array([[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]]), np.array([0, 0]))
    np.testing.assert_allclose(out[0], [0.0, 0.6, 0.4])
    assert keep.tolist() == [True, False]  # all its mass on the label: nothing left to compare


def test_kl_nonlabel_truth_by_hand():
    truth = np.array([[0.6, 0.3, 0.1]])
    q = np.array([[0.0, 0.5, 0.5]])  # a latent that puts 0 on label 0
    # truth without class 0: [0.75, 0.25]; KL([.75,.25] ‖ [.5,.5]) = .75 ln 1.5 + .25 ln .5
    expected = 0.75 * np.log(1.5) + 0.25 * np.log(0.5)
    assert T.kl_nonlabel_truth(truth, q, np.array([0])) == pytest.approx(expected, abs=1e-5)
    # the same latent compared with the full truth would be dominated by the zeroed label
    assert T.kl_latent_truth(truth, q, np.array([0]), excludes_label=False) > 5
    assert T.kl_latent_truth(truth, q, np.array([0]), excludes_label=True) == pytest.approx(
        expected, abs=1e-5)


def test_floor_is_the_ratings_kl_and_zero_for_perfect_ratings():
    truth = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    assert T.kl_ratings_truth(truth, truth) == pytest.approx(0.0, abs=1e-5)
    votes = np.array([[0.6, 0.4, 0.0], [0.0, 0.2, 0.8]])
    assert T.kl_ratings_truth(truth, votes) == pytest.approx(
        M.kl_divergence(truth, votes, eps=T.KL_EPS, reduction="mean"))


def test_auroc_flipped_agrees_with_sklearn_and_needs_both_kinds():
    rng = np.random.default_rng(0)
    flags = rng.random(50) < 0.3
    scores = rng.random(50) + flags
    assert T.auroc_flipped(scores, flags) == pytest.approx(roc_auc_score(flags, scores))
    assert T.auroc_flipped(scores, np.zeros(50, bool)) is None


def test_subclass_recovery_is_the_size_weighted_within_class_nmi():
    classes = np.array([0] * 6 + [1] * 4 + [2])
    hidden = np.array(list("aabbcc") + list("xyxy") + ["z"])
    ids = np.array([0, 0, 1, 1, 1, 1, 5, 6, 5, 6, 9])
    expected = (6 * normalized_mutual_info_score(hidden[:6], ids[:6])
                + 4 * normalized_mutual_info_score(hidden[6:10], ids[6:10])) / 10
    assert T.subclass_recovery(ids, hidden, classes) == pytest.approx(expected)
    assert T.subclass_recovery(ids[6:10], hidden[6:10], classes[6:10]) == pytest.approx(1.0)


def test_auroc_flipped_from_the_training_loss_finds_flips():
    """A model that predicts the truth: its loss −log p(label) is high exactly on flipped
    labels, so the training split's auroc_flipped is ≈ 1; no auroc on other splits."""
    rng = np.random.default_rng(1)
    n, k = 200, 5
    truth = rng.dirichlet(np.ones(k) * 0.3, n)
    true_label = truth.argmax(1)
    flipped = rng.random(n) < 0.3
    label = np.where(flipped, (true_label + 1 + rng.integers(0, k - 1, n)) % k, true_label)
    p = torch.as_tensor(truth, dtype=torch.float32)
    loss = -torch.log(p[torch.arange(n), torch.as_tensor(label)]).numpy()
    pred = _pred(split="train", probs=truth, label=label, label_uncertainty=loss,
                 truth={"flipped": flipped, "true_dist": truth})
    measures = T.truth_measures(pred)
    assert measures["auroc_flipped"] > 0.9
    assert "auroc_flipped" not in T.truth_measures(_pred(probs=truth, label=label,
                                                         truth={"flipped": flipped}))


def test_retrieval_scores_use_the_majority_and_the_truth_not_the_flipped_label():
    rng = np.random.default_rng(2)
    n, k = 120, 3
    true_label = np.repeat(np.arange(k), n // k)
    emb = np.eye(k)[true_label] * 5 + rng.normal(0, 0.1, (n, k))  # clusters = true classes
    soft = np.eye(k)[true_label] * 0.8 + 0.2 / k
    flipped = rng.random(n) < 0.4
    label = np.where(flipped, (true_label + 1) % k, true_label)
    pred = _pred(probs=soft, soft=soft, label=label, embedding=emb,
                 truth={"true_label": true_label})
    scores = classification_metrics(pred) | T.truth_measures(pred)
    assert scores["nmi"] == pytest.approx(1.0) and scores["recall@1"] == pytest.approx(1.0)
    assert scores["nmi_truth"] == pytest.approx(1.0) and scores["recall@1_truth"] == 1.0
    # what the old definition scored: against the flipped label, about halved
    assert M.kmeans_nmi(emb, label) < 0.6


# --------------------------------------------------------------------------- on the engine


def _untrained(method_name: str, env, split: str = "val"):
    from affectlab.data.dataset import EmotionDataset

    torch.manual_seed(0)
    train_ds = EmotionDataset(env["face"], "train")
    info = build_train_info(train_ds, ordinal=False)
    method, _ = build_method("resnet18", {"width": 4, "embedding_dim": 16}, method_name, {},
                             info)
    ds = EmotionDataset(env["face"], split)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, collate_fn=ds.collate_fn)
    return predict_split(method, loader, torch.device("cpu"), split)


def test_dmue_latent_kl_on_an_untrained_network_is_of_the_order_of_ce_kl_truth(env):
    """The old kl_truth compared DMUE's latent (0 on the label) with the full truth: 7.4 vs
    CE's 1.3 after 2 epochs. Compared without the label, as the supplement does, an untrained
    DMUE's latent is as far from the truth as an untrained CE's prediction."""
    dmue, ce = _untrained("dmue", env), _untrained("ce", env)
    dm, cm = T.truth_measures(dmue), T.truth_measures(ce)
    assert 0.2 < dm["kl_latent_truth"] / cm["kl_truth"] < 5
    # the full truth against the label-less latent: what the old measure did
    old = M.kl_divergence(dmue.truth["true_dist"], dmue.latent, eps=1e-6, reduction="mean")
    assert old > 3 * cm["kl_truth"]
    assert "kl_truth" in dm and dm["kl_truth"] != dm["kl_latent_truth"]  # probs, every method
    assert dm["kl_ratings_truth"] == pytest.approx(cm["kl_ratings_truth"])  # the floor


def test_train_split_pass_has_each_methods_label_uncertainty(env):
    from affectlab.data.dataset import EmotionDataset

    ds = EmotionDataset(env["face"], "train")
    labels = torch.as_tensor(ds.labels)
    ce = _untrained("ce", env, "train")
    np.testing.assert_allclose(ce.label_uncertainty,
                               -np.log(ce.probs[np.arange(len(ce)), ce.label]), rtol=1e-4)
    assert (ce.index == np.arange(len(ds))).all() and (ce.label == labels.numpy()).all()
    ldlva = _untrained("ldlva", env, "train")
    np.testing.assert_allclose(ldlva.label_uncertainty, 1 / (1 + np.exp(0.5)), rtol=1e-5)
    dmue = _untrained("dmue", env, "train")
    assert dmue.label_uncertainty.shape == (len(ds),)
    assert ((0 <= dmue.label_uncertainty) & (dmue.label_uncertainty <= 1)).all()
    assert _untrained("ce", env, "val").label_uncertainty is None


def test_a_run_on_the_single_label_finds_flips_by_its_training_loss(env):
    """target="label": CE on the flipped dataset labels; its per-item training loss, saved in
    outputs/train.parquet, scores the flips above chance (auroc_flipped > 0.5)."""
    out = env["tmp"] / "ce-label"
    result = train(tiny_config(env["face"], out, method="ce", target="label", epochs=4,
                               lr=3e-3), progress=False)
    run = RunDir(result.run_dir)
    table = pd.read_parquet(run.outputs_path("train"))
    assert table["flipped"].mean() == pytest.approx(0.3, abs=0.1)
    auroc = result.metrics["train"]["auroc_flipped"]
    assert auroc == pytest.approx(roc_auc_score(table["flipped"], table["label_uncertainty"]))
    assert auroc > 0.5
    assert "auroc_flipped" not in result.metrics["test"]
    # trained on one-hot labels, evaluated (and saved) against the ratings' soft labels
    state = run.load_checkpoint()
    soft = state["info"]["soft_labels"]
    assert set(torch.unique(soft).tolist()) == {0.0, 1.0}
    assert (soft.argmax(1).numpy() == table["label"].to_numpy()).all()
    assert not np.isin(np.stack(table["soft_label"]), (0.0, 1.0)).all()


def test_aux_bounds_come_from_the_likert_scales_and_travel_in_the_checkpoint(env):
    from affectlab.data.dataset import EmotionDataset
    from affectlab.engine.checkpoint import info_from_dict, info_to_dict

    info = build_train_info(EmotionDataset(env["face"], "train"), ordinal=False)
    assert info.aux_bounds.tolist() == [[1.0, 1.0], [5.0, 5.0]]
    back = info_from_dict(info_to_dict(info))
    assert torch.equal(back.aux_bounds, info.aux_bounds)
    legacy = info_to_dict(info)
    legacy.pop("aux_bounds")  # a checkpoint written before the bounds were saved
    assert info_from_dict(legacy).aux_bounds is None
    # LDLVA maps the Likert ends, not the data's own range, to −1 and 1
    method, _ = build_method("resnet18", {"width": 4}, "ldlva", {}, info)
    expected = (info.aux - 3.0) / 2.0
    torch.testing.assert_close(method.aux_space, expected)


# --------------------------------------------------------------------------- domains


def test_train_and_test_domains_are_honoured(env):
    out = env["tmp"] / "cross"
    result = train(tiny_config(env["face"], out, method="ce", epochs=1,
                               train_domains=["synth-A"], test_domains=["synth-B"]),
                   progress=False)
    run = RunDir(result.run_dir)
    items = pd.read_parquet(env["face"] / "items.parquet")
    for split, domain in (("train", "synth-A"), ("val", "synth-A"), ("test", "synth-B")):
        table = pd.read_parquet(run.outputs_path(split))
        assert set(table["domain"]) == {domain}
        assert len(table) == ((items.split == split) & (items.domain == domain)).sum()
    assert result.metrics["test"]["n"] == len(pd.read_parquet(run.outputs_path("test")))
    from affectlab.engine.runs import evaluate_run

    # eval: the run's own test domains by default, any domain when asked
    own = evaluate_run(out, env["face"])
    assert own["n"] == result.metrics["test"]["n"]
    other = evaluate_run(out, env["face"], domains=["synth-A"])
    assert other["n"] == ((items.split == "test") & (items.domain == "synth-A")).sum()
    with pytest.raises(ValueError, match="synth-Z"):
        evaluate_run(out, env["face"], domains=["synth-Z"])


def test_unknown_domain_is_a_config_error_naming_the_known_ones(env):
    cfg = tiny_config(env["face"], env["tmp"] / "bad-domain", method="ce",
                      train_domains=["studio"])
    with pytest.raises(ConfigError, match=r"train_domains: .*'studio'.*synth-A, synth-B"):
        train(cfg, progress=False)
    with pytest.raises(ValueError, match="twice"):
        tiny_config(env["face"], env["tmp"] / "x", test_domains=["synth-A", "synth-A"])


def test_cli_eval_takes_domains(env, tmp_path):
    from typer.testing import CliRunner

    from affectlab.cli import app

    out = env["tmp"] / "cross"
    if not RunDir(out).metrics_path.is_file():
        pytest.skip("needs test_train_and_test_domains_are_honoured's run")
    res = CliRunner().invoke(app, ["eval", str(out), "--dataset", str(env["face"]),
                                   "--domain", "synth-A"])
    assert res.exit_code == 0, res.output
    items = pd.read_parquet(env["face"] / "items.parquet")
    assert json.loads(res.output)["n"] == ((items.split == "test")
                                           & (items.domain == "synth-A")).sum()


def test_training_split_scores_sub_classes_against_each_hidden_factor():
    rng = np.random.default_rng(4)
    n = 80
    classes = np.repeat([0, 1], n // 2)
    style = rng.integers(0, 2, n)
    emb = np.c_[classes * 10.0, style * 5.0] + rng.normal(0, 0.1, (n, 2))  # style is visible
    soft = np.eye(2)[classes]
    subclass = np.array([f"id{i % 7}+{s}" for i, s in enumerate(style)])
    own = classes * 2 + style  # a method whose sub-classes are exactly the style
    pred = _pred(split="train", probs=soft, soft=soft, embedding=emb, subclass=own,
                 truth={"style": style, "subclass": subclass})
    m = T.truth_measures(pred)
    assert m["style_nmi"] == pytest.approx(1.0)
    assert m["style_nmi_gmm"] == pytest.approx(1.0)  # two components find the style
    assert m["subclass_nmi"] == pytest.approx(T.subclass_recovery(own, subclass, classes))
    assert "style_nmi" not in T.truth_measures(_pred(probs=soft, soft=soft, embedding=emb,
                                                     truth={"style": style}))
