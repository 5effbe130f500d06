"""The Data, Explore and Live pages under streamlit.testing.v1.AppTest, on a tiny generated
dataset and a fake run in a temporary data directory (conftest sets AFFECTLAB_DATA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from app_support import open_home, open_page
from explore_fakes import make_dataset, make_fake_run

from affectlab.data.browse import filter_items, item_table
from affectlab.live.devices import probe_audio
from affectlab.paths import data_dir


@pytest.fixture
def world(monkeypatch):
    root = data_dir()
    ds = make_dataset(root, n=24)
    run = make_fake_run(root, ds)
    calls: list[str] = []
    # UMAP compiles for 30–50 s in its worker process: the pages are tested without it
    monkeypatch.setattr("affectlab.explore.projection.ensure_umap_async",
                        lambda path: calls.append(str(path)) or "running")
    return ds, run, calls




def test_home_renders(world):
    at = open_home()
    assert not at.exception and at.title[0].value == "affectlab"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Datasets"] == "1" and metrics["Runs"] == "1"
    assert metrics["Device"] in ("CPU",) or metrics["Device"].startswith("CUDA")


# -- Data ----------------------------------------------------------------------------------

def test_data_page_browses_a_dataset(world):
    ds, _, _ = world
    at = open_page("data")
    assert at.selectbox(key="browse_dataset").value == ds.name
    table = at.dataframe[0].value
    assert len(table) == len(ds.items)
    assert len(at.get("image")) >= 1  # the gallery
    at.multiselect(key="browse_split").set_value(["test"]).run()
    assert not at.exception
    expected = filter_items(item_table(ds), split=["test"])
    assert at.dataframe[0].value["item_id"].tolist() == expected["item_id"].tolist()
    agreement = at.dataframe[1].value
    assert set(agreement["scale"]) == {"category", "valence", "activation", "intensity"}
    assert np.isfinite(agreement["alpha"]).all()


def test_data_page_soft_labels_by_the_chosen_aggregator(world, tmp_path):
    ds, _, _ = world
    at = open_page("data")
    assert at.selectbox(key="browse_aggregator").value == "votes"  # the dataset's own
    at.selectbox(key="browse_aggregator").set_value("mace").run()
    assert not at.exception, at.exception
    shown = at.dataframe[0].value.set_index("item_id")
    expected = item_table(ds, aggregator="mace").set_index("item_id")
    np.testing.assert_allclose(shown.loc[expected.index, "soft_top_p"],
                               expected["soft_top_p"], rtol=1e-6)
    # anonymous votes cannot feed a per-rater model: a warning, and the votes are shown
    import fixtures_importers as fx

    from affectlab.data.importers import import_corpus
    from affectlab.paths import datasets_dir

    import_corpus("ferplus", fx.write_ferplus(tmp_path / "src"), datasets_dir() / "ferplus")
    at = open_page("data")
    at.selectbox(key="browse_dataset").set_value("ferplus").run()
    at.selectbox(key="browse_aggregator").set_value("ds").run()
    assert not at.exception, at.exception
    assert any("needs rater identities" in w.value for w in at.warning)


def test_data_page_shows_alpha_of_anonymous_ferplus_votes(world, tmp_path):
    """FER+ votes carry no rater ids (anonymous): α comes from the value counts per item."""
    import fixtures_importers as fx

    from affectlab.data.importers import import_corpus
    from affectlab.paths import datasets_dir

    import_corpus("ferplus", fx.write_ferplus(tmp_path / "src"), datasets_dir() / "ferplus")
    at = open_page("data")
    at.selectbox(key="browse_dataset").set_value("ferplus").run()
    assert not at.exception, at.exception
    agreement = at.dataframe[1].value.set_index("scale")
    assert np.isfinite(agreement.loc["category", "alpha"])
    assert agreement.loc["category", "n_anonymous"] == agreement.loc["category", "n_ratings"]


def test_data_page_generates_a_corpus(world):
    at = open_page("data")
    at.number_input(key="gen_n").set_value(10)
    at.text_input(key="gen_name").set_value("tiny-gen")
    at.button(key="FormSubmitter:generate-Generate").click().run()
    assert not at.exception, at.exception
    job = at.session_state["data_job"]
    assert job.wait(120), "generation did not finish"
    assert job.status == "done", job.error
    at.run()
    assert not at.exception, at.exception
    assert any("tiny-gen" in s.value for s in at.success)
    assert "tiny-gen" in at.selectbox(key="browse_dataset").options
    at.selectbox(key="browse_dataset").set_value("tiny-gen").run()
    assert not at.exception, at.exception
    assert len(at.dataframe[0].value) == 10


def test_data_page_import_reports_a_bad_source(world, tmp_path):
    at = open_page("data")
    assert at.selectbox(key="imp_format").options  # from the importers' registry
    at.text_input(key="imp_src").set_value(str(tmp_path / "nowhere"))
    at.text_input(key="imp_name").set_value("imported")
    at.button(key="FormSubmitter:import-Import").click().run()
    job = at.session_state["data_job"]
    assert job.wait(30) and job.status == "failed"
    at.run()
    assert any("not a directory" in e.value for e in at.error)


@pytest.mark.slow
def test_data_page_plays_speech(world):
    make_dataset(data_dir(), name="tiny-speech", modality="speech", n=10)
    at = open_page("data")
    at.selectbox(key="browse_dataset").set_value("tiny-speech").run()
    assert not at.exception, at.exception
    assert len(at.get("audio")) >= 1


# -- Explore -------------------------------------------------------------------------------

def test_explore_page_renders_and_recolours(world):
    _, run, calls = world
    at = open_page("explore")
    assert calls == [str(run)]  # UMAP requested in the background, the page did not wait
    assert len(at.get("plotly_chart")) == 1
    colour = at.selectbox(key="explore_colour")
    kinds = ["predicted", "uncertainty", "latent entropy", "true ambiguity", "true sub-class",
             "sub-class"]
    assert set(kinds) <= set(colour.options)
    for option in kinds:  # categorical and continuous, run outputs and hidden truth
        at.selectbox(key="explore_colour").set_value(option).run()
        assert not at.exception, (option, at.exception)
    assert at.radio(key="explore_layout").options == ["PCA"]  # no UMAP layout yet
    # the last option was sub-class: the items nearest each sub-class centre are shown
    assert any("nearest each centre" in h.value for h in at.subheader)


def test_explore_page_shows_a_selection_and_neighbours(world):
    at = open_page("explore")
    splits = at.multiselect(key="explore_splits")
    assert splits.value == ["test"]  # the engine saves val items too; test is the default
    splits.set_value(["train", "val", "test"]).run()
    assert at.caption[0].value.startswith("24 items")
    at.selectbox(key="explore_colour").set_value("predicted").run()
    # what st.plotly_chart returns after a box selection of two points
    at.session_state["explore_map"] = {"selection": {
        "points": [{"curve_number": 0, "point_index": 0}, {"curve_number": 1, "point_index": 0}],
        "point_indices": [0, 0], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, at.exception
    heads = [s.value for s in at.subheader]
    assert heads[0] == "Selected: 2 items" and heads[1].startswith("Nearest neighbours of")
    assert len(at.get("image")) >= 2


def test_explore_page_without_runs(monkeypatch):
    at = open_page("explore")
    assert "No finished run" in at.info[0].value


# -- Live ----------------------------------------------------------------------------------

def test_live_page_renders_with_upload_and_device_message(world):
    at = open_page("live")
    assert at.selectbox(key="live_face_model").value.startswith("pretrained mini_xception")
    uploads = at.get("file_uploader")
    assert any(u.label == "Image with a face" for u in uploads)
    # no trained speech run: the page says so, and what the local audio probe found
    assert any("No trained speech run" in i.value for i in at.info)
    message = probe_audio().message
    assert any(message in c.value for c in at.caption)


def test_live_page_offers_a_trained_face_run(world):
    ds, run, _ = world
    (run / "checkpoints").mkdir()
    from affectlab.models import create

    net = create("mini_xception")
    torch.save({"model": net.state_dict()}, run / "checkpoints" / "last.pt")
    np.save(run / "outputs" / "embeddings.npy",
            np.random.default_rng(0).normal(size=(len(ds.items), 128)).astype(np.float32))
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["model"] == "mini_xception"
    at = open_page("live")
    box = at.selectbox(key="live_face_model")
    assert run.name in box.options
    box.set_value(run.name).run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_live_page_voice_tab_with_a_trained_speech_run(world):
    from affectlab.data.synth.corpus import generate_corpus
    from affectlab.engine.config import RunConfig
    from affectlab.engine.trainer import train

    root = data_dir()
    ds = generate_corpus("speech", n=20, seed=0, out=root / "datasets" / "speech")
    cfg = RunConfig(dataset=ds.root, model="convpool", method="ce", epochs=1,
                    out=root / "runs" / "speech-run")
    assert train(cfg, progress=False).status == "finished"
    at = open_page("live")
    assert at.selectbox(key="live_speech_model").value == "speech-run"
    assert any(u.label == "Speech recording" for u in at.get("file_uploader"))
    status = probe_audio()
    if not status.available:  # e.g. no PortAudio: the page explains instead of crashing
        assert any(status.message == w.value for w in at.warning)
