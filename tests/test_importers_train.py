"""Every importer's output trains: each fixture (tests/fixtures_importers.py, the published
layouts) is imported and trained for one epoch (face and speech), evaluated and asked for one
media file's prediction, and its agreement table reads.

Before the label column was read through ``label_codes``, ``affectlab train`` on any importer
that writes class names crashed under pandas 3 (a text column reads back as ``str``, not
``object``): ``ValueError: invalid literal for int() with base 10: 'neutral'``.
"""

from __future__ import annotations

import fixtures_importers as fx
import krippendorff
import numpy as np
import pytest
from engine_helpers import tiny_config

from affectlab.agreement import AnonymousRatingsError, rater_agreement, reliability_matrix
from affectlab.annotate.aggregate import weighted_soft_labels
from affectlab.data.contract import label_codes, load_dataset
from affectlab.data.dataset import EmotionDataset
from affectlab.data.importers import import_corpus
from affectlab.engine.inference import Predictor
from affectlab.engine.runs import evaluate_run
from affectlab.engine.trainer import train
from affectlab.pages.data_browse import agreement_table

# name → (format, fixture writer, modality)
FIXTURES = {
    "ferplus": ("ferplus", fx.write_ferplus, "face"),
    "ferplus-folders": ("ferplus", fx.write_ferplus_folders, "face"),
    "rafdb": ("rafdb", lambda r: fx.write_rafdb(r, distribution=True), "face"),
    "affectnet": ("affectnet", fx.write_affectnet, "face"),
    "affectnet-sets": ("affectnet", fx.write_affectnet_sets, "face"),
    "folder-tree": ("folder", fx.write_folder_tree, "face"),
    "cremad": ("cremad", fx.write_cremad, "speech"),
    "cremad-tabulated": ("cremad", fx.write_cremad_tabulated, "speech"),
    "ravdess": ("ravdess", fx.write_ravdess, "speech"),
    "emodb": ("emodb", fx.write_emodb, "speech"),
    "iemocap": ("iemocap", fx.write_iemocap, "speech"),
    "msp-podcast": ("msp", fx.write_msp_podcast, "speech"),
    "msp-improv": ("msp", fx.write_msp_improv, "speech"),
    "folder-csv": ("folder", fx.write_folder_csv, "speech"),
}


def _import(tmp_path, name):
    fmt, writer, _ = FIXTURES[name]
    import_corpus(fmt, writer(tmp_path / "src"), tmp_path / "out")
    return load_dataset(tmp_path / "out")


def test_every_format_has_a_fixture_here():
    from affectlab.data.importers import FORMATS

    assert {fmt for fmt, _, _ in FIXTURES.values()} == set(FORMATS)


@pytest.mark.filterwarnings("ignore:classes .* have no mass")  # tiny fixtures miss classes
@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_importer_output_trains_one_epoch(tmp_path, name):
    ds = _import(tmp_path, name)
    modality = FIXTURES[name][2]
    assert ds.modality == modality
    result = train(tiny_config(tmp_path / "out", tmp_path / "run", modality, method="ce",
                               epochs=1, batch_size=4), progress=False)
    assert result.status == "finished" and result.epochs_done == 1
    # the dataset label, when the importer wrote one, is what the training set reads
    train_set = EmotionDataset(ds, "train", feature_cache=False)
    if "label" in ds.items and ds.schema.label_scale == "category":
        codes = label_codes(ds.items["label"], ds.class_names)
        if (codes >= 0).all():
            np.testing.assert_array_equal(train_set.labels, codes[train_set.rows])
    table = agreement_table(ds)
    assert list(table["scale"]) == list(ds.schema.scales)
    # the run evaluates on its corpus and predicts one of its media files
    metrics = evaluate_run(result.run_dir, tmp_path / "out", split=None)
    assert metrics["n"] == len(EmotionDataset(ds, None, feature_cache=False))
    assert 0 <= metrics["uar"] <= 1
    assert np.sum(metrics["confusion_matrix"]["matrix"]) == metrics["n"]
    prediction = Predictor.from_name_or_run(result.run_dir).predict_file(ds.media_path(0))
    assert prediction.error is None, prediction.error
    assert set(prediction.distribution) == set(ds.class_names)
    assert sum(prediction.distribution.values()) == pytest.approx(1.0, abs=1e-5)


def _ferplus_value_counts() -> np.ndarray:
    """FER+'s fixture votes of the kept images (the rows that won), emotions only."""
    kept = [fx.FERPLUS_ROWS[row][2][:8] for row, _ in fx.FERPLUS_KEPT.values()]
    return np.array(kept, dtype=np.float64)


def test_ferplus_votes_give_alpha_from_value_counts_and_refuse_per_rater_statistics(tmp_path):
    ds = _import(tmp_path, "ferplus")
    table = agreement_table(ds).set_index("scale")
    expected = krippendorff.alpha(value_counts=_ferplus_value_counts(),
                                  level_of_measurement="nominal")
    assert table.loc["category", "alpha"] == pytest.approx(expected)
    assert table.loc["category", "n_raters"] == 0
    assert table.loc["category", "n_anonymous"] == len(ds.ratings) == 39
    message = (r"ratings of scale 'category' are anonymous vote counts \(39 of 39 have no "
               r"rater_id.*per-rater statistics \(Dawid–Skene\) need rater identities")
    with pytest.raises(AnonymousRatingsError, match=message):
        weighted_soft_labels(ds.ratings, ds.items["item_id"], "category",
                             ds.scale("category"))
    with pytest.raises(AnonymousRatingsError, match="per-rater statistics"):
        rater_agreement(ds.ratings, "category")
    with pytest.raises(AnonymousRatingsError, match="raters × items matrix"):
        reliability_matrix(ds.ratings, "category")


def test_cremad_keeps_rater_ids_where_the_source_has_them(tmp_path):
    ds = _import(tmp_path, "cremad")
    assert not ds.ratings["rater_id"].isna().any()
    per_rater = rater_agreement(ds.ratings, "category", min_items=1)
    assert set(per_rater["rater_id"]) == set(ds.ratings["rater_id"])
    assert agreement_table(ds).set_index("scale").loc["category", "n_anonymous"] == 0


def test_a_training_set_warning_is_a_notice_of_the_run(tmp_path):
    """A method's word on its training set ("classes [...] have no mass": AffectNet's fixture
    has three of eight classes) came out as a Python warning with a source line; it is one of
    the run's notices now (events, terminal, Train page)."""
    import warnings

    from affectlab.engine.events import read_events

    _import(tmp_path, "affectnet")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = train(tiny_config(tmp_path / "out", tmp_path / "run", "face", method="ce",
                                   epochs=1, batch_size=4), progress=False)
    notices = [e["message"] for e in read_events(result.run_dir)[0] if e["type"] == "notice"]
    assert any(n.startswith("classes [") and "have no mass" in n for n in notices), notices
