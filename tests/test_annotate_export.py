"""Campaigns from the generated corpus and from uploaded files; export to the dataset contract,
CSV and JSON lines."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from annotate_support import owner_for

from affectlab.annotate import join_campaign
from affectlab.annotate.export import train_command
from affectlab.cli import app
from affectlab.data.catalog import list_datasets
from affectlab.data.contract import load_dataset
from affectlab.data.synth.corpus import generate_corpus
from affectlab.labels import soft_labels_from_ratings


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus") / "faces"
    return generate_corpus(modality="face", n=60, seed=0, n_domains=2, flip_rate=0.1, out=out,
                           overwrite=False, progress=False)


@pytest.fixture(scope="module")
def rated(corpus, tmp_path_factory):
    """A campaign over the corpus's category and valence scales, rated by 4 simulated raters
    who answer the corpus's true label (one of them at random)."""
    store, owner = owner_for(f"sqlite:///{tmp_path_factory.mktemp('db') / 'a.db'}")
    invite = owner.create_campaign("faces", corpus.root, scales=["category", "valence"],
                                   ratings_per_item=3, instructions="Rate the face.")
    truth = corpus.items.set_index("item_id")
    rng = np.random.default_rng(0)
    raters = [join_campaign(store, invite.token, f"rater{k}") for k in range(4)]
    active = set(range(4))
    while active:  # round robin, so every rater gets a share of the items
        for k in sorted(active):
            item = raters[k].next_item()
            if item is None:
                active.discard(k)
                continue
            row = truth.loc[item.item_id]
            cat = int(row.true_label) if k < 3 else int(rng.integers(0, 7))
            val = int(np.clip(np.rint(3 + 2 * row.true_valence), 1, 5))
            raters[k].submit_all(item.item_id, {"category": cat, "valence": val},
                                 time_spent=1.5)
            assert item.media_path.is_file() and item.instructions == "Rate the face."
    yield store, owner
    store.dispose()


def test_campaign_from_corpus_and_dataset_export(rated, corpus, tmp_path):
    _, owner = rated
    out = owner.export("faces", tmp_path / "exported")
    ds = load_dataset(out)                                   # validates the contract
    assert len(ds.items) == 60 and ds.modality == "face"
    assert set(ds.meta["scales"]) == {"category", "valence"}
    prov = ds.meta["provenance"]
    assert prov["campaign"] == "faces" and prov["source"] == "annotation campaign faces"
    assert (prov["n_items"], prov["n_raters"], prov["n_ratings"]) == (60, 4, 60 * 3 * 2)
    assert prov["exported_at"].endswith("Z") and prov["left_out"] == {
        "n_broken_items": 0, "n_revoked_raters": 0}
    # the catalog reads the item count from the provenance (it said "None items")
    summary = next(d for d in list_datasets(tmp_path) if d.path == out)
    assert summary.n_items == 60
    assert len(ds.ratings) == 60 * 3 * 2
    assert {"timestamp", "time_spent"} <= set(ds.ratings.columns)
    # source columns (split, domain, truth) survive; truth columns are declared
    merged = ds.items.merge(corpus.items, on="item_id", suffixes=("", "_src"))
    assert (merged["split"] == merged["split_src"]).all()
    assert (merged["true_label"] == merged["true_label_src"]).all()
    assert "true_valence" in ds.meta["truth_columns"]
    # media: same bytes as the source files
    for row in ds.items.head(5).itertuples():
        assert (out / row.media).read_bytes() == (corpus.root / row.media).read_bytes()
    # soft labels from the exported table equal the owner's live ones
    ids = ds.items["item_id"].tolist()
    live = owner.soft_labels("faces", "category").loc[ids].to_numpy()
    np.testing.assert_allclose(
        soft_labels_from_ratings(ds.ratings, ids, "category", ds.meta["scales"]["category"]), live)
    # Dawid–Skene label: three honest raters out of four → the true label
    assert (ds.items["ds_label"] == ds.items["true_label"]).mean() > 0.9
    assert (ds.items["n_ratings"] == 3).all()
    with pytest.raises(FileExistsError):
        owner.export("faces", out)


def test_weighted_labels_downweight_the_random_rater(rated, corpus):
    _, owner = rated
    truth = corpus.items.set_index("item_id")["true_label"]
    plain = owner.soft_labels("faces", "category", method="mean")
    weighted = owner.soft_labels("faces", "category", method="weighted")
    p_true = lambda df: df.to_numpy()[np.arange(len(df)), truth.loc[df.index].to_numpy()]  # noqa: E731
    assert p_true(weighted).mean() > p_true(plain).mean()
    assert list(plain.columns) == corpus.meta["scales"]["category"]["names"]
    with pytest.raises(ValueError, match="method"):
        owner.soft_labels("faces", "category", method="median")
    report = owner.agreement("faces")
    assert report.alpha["category"] > 0.3 and np.isfinite(report.alpha["valence"])
    r = report.raters[report.raters["scale"] == "category"].set_index("rater_id")
    assert r.loc["rater3", "agreement"] < r.loc[["rater0", "rater1", "rater2"],
                                                "agreement"].min()


def test_export_writes_the_chosen_aggregator(rated, tmp_path):
    """The dataset export records its aggregator; training data read from it then follow it."""
    from affectlab.data.dataset import EmotionDataset

    _, owner = rated
    default = load_dataset(owner.export("faces", tmp_path / "plain"))
    assert default.schema.aggregator == "votes" and default.meta["aggregator"] == "votes"
    out = owner.export("faces", tmp_path / "mace", aggregator="mace")
    ds = load_dataset(out)
    assert ds.schema.aggregator == "mace"
    train = EmotionDataset(ds, split="train", feature_cache=False)
    live = owner.soft_labels("faces", "category", method="mace").loc[train.item_ids]
    np.testing.assert_allclose(train.soft_labels, live.to_numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown aggregator 'best'"):
        owner.export("faces", tmp_path / "never", aggregator="best")
    assert not (tmp_path / "never").exists()


def test_soft_labels_by_every_aggregator(rated, corpus):
    _, owner = rated
    truth = corpus.items.set_index("item_id")["true_label"]
    for method in ("votes", "ds", "one-coin", "glad", "mace"):
        y = owner.soft_labels("faces", "category", method=method)
        assert (y.to_numpy().argmax(axis=1) == truth.loc[y.index]).mean() > 0.9, method
    pd.testing.assert_frame_equal(owner.soft_labels("faces", "valence", method="mean"),
                                  owner.soft_labels("faces", "valence", method="votes"))
    pd.testing.assert_frame_equal(owner.soft_labels("faces", "category", method="weighted"),
                                  owner.soft_labels("faces", "category", method="ds"))


def test_csv_and_jsonl_export(rated, tmp_path):
    _, owner = rated
    csv = owner.export("faces", tmp_path / "r.csv", format="csv")
    table = pd.read_csv(csv, dtype={"item_id": str})
    assert len(table) == 360
    assert set(table.columns) >= {"item_id", "rater_id", "scale", "value", "time_spent"}
    jl = owner.export("faces", tmp_path / "r.jsonl", format="jsonl")
    lines = [json.loads(x) for x in jl.read_text().splitlines()]
    assert len(lines) == 60
    first = lines[0]
    assert len(first["ratings"]) == 6
    assert len(first["soft"]["category"]) == 7 and len(first["weighted"]["valence"]) == 2
    assert sum(first["soft"]["category"]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="format"):
        owner.export("faces", tmp_path / "x", format="xml")


def test_campaign_from_uploaded_files(tmp_path, monkeypatch):
    import io

    from PIL import Image
    store, owner = owner_for(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch)
    files = []
    for k in range(3):
        buf = io.BytesIO()
        Image.new("L", (8, 8), color=40 * k).save(buf, format="PNG")
        files.append((f"face {k}.png", buf.getvalue()))
    scales = {"valence": {"type": "likert", "low": 1, "high": 7}}
    invite = owner.create_campaign_from_files("uploads", files, modality="face", scales=scales)
    rater = join_campaign(store, invite.token, "u")
    item = rater.next_item()
    assert item.media_path.read_bytes() in [f[1] for f in files]
    assert item.media_path.is_relative_to(tmp_path)          # under the data directory
    rater.submit(item.item_id, "valence", 7)
    out = owner.export("uploads", tmp_path / "up")
    ds = load_dataset(out)
    assert sorted(ds.items["item_id"]) == ["face-0", "face-1", "face-2"]
    with pytest.raises(ValueError, match="not a face file"):
        owner.create_campaign_from_files("bad", [("a.wav", b"x")], modality="face",
                                         scales=scales)
    with pytest.raises(ValueError, match=r"scales\[.v.\]: low must be < high"):
        owner.create_campaign_from_files("bad2", files, modality="face",
                                         scales={"v": {"type": "likert", "low": 5, "high": 1}})
    store.dispose()


def test_train_command_names_the_real_cli(rated, tmp_path):
    """The export message's command is one `affectlab train` accepts (checked with --prepare,
    which validates dataset, model and method and writes only the run's config)."""
    import shlex

    from typer.testing import CliRunner

    _, owner = rated
    out = owner.export("faces", tmp_path / "for train")
    command = train_command(out, "face")
    assert command.startswith("affectlab train --dataset ") and "--model resnet18" in command
    args = shlex.split(command)[1:] + ["--prepare", "--out", str(tmp_path / "run")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert "--model convpool" in train_command("x", "speech")
    with pytest.raises(ValueError, match="modality"):
        train_command("x", "video")


def test_revoked_raters_are_left_out_of_labels_and_export(corpus, tmp_path):
    store, owner = owner_for(f"sqlite:///{tmp_path / 'r.db'}")
    invite = owner.create_campaign("rev", corpus.root, scales=["category"], ratings_per_item=2,
                                   item_ids=corpus.items["item_id"][:4].tolist())
    raters = [join_campaign(store, invite.token, n) for n in ("honest", "mallory")]
    for k, rater in enumerate(raters):
        while (item := rater.next_item()) is not None:
            rater.submit(item.item_id, "category", 6 if k else 0)
    owner.revoke_rater("rev", "mallory")
    csv = pd.read_csv(owner.export("rev", tmp_path / "all.csv", format="csv"))
    assert len(csv) == 8 and csv.groupby("rater_id")["rater_revoked"].all().to_dict() == {
        "honest": False, "mallory": True}
    ds = load_dataset(owner.export("rev", tmp_path / "ds"))
    assert set(ds.ratings["rater_id"]) == {"honest"} and len(ds.ratings) == 4
    assert ds.meta["provenance"]["left_out"]["n_revoked_raters"] == 1
    assert ds.meta["provenance"]["n_raters"] == 1
    lines = [json.loads(x) for x in owner.export("rev", tmp_path / "r.jsonl",
                                                 format="jsonl").read_text().splitlines()]
    assert {r["rater_id"] for line in lines for r in line["ratings"]} == {"honest"}
    assert all(line["soft"]["category"][0] == 1.0 for line in lines)
    store.dispose()
