"""The Data, Explore and Live pages under streamlit.testing.v1.AppTest, on a tiny generated
dataset and a fake run in a temporary data directory (conftest sets AFFECTLAB_DATA)."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
import yaml
from app_support import open_home, open_page
from explore_fakes import make_dataset, make_fake_run

from affectlab.data.contract import load_dataset
from affectlab.live.devices import probe_audio
from affectlab.pages.data_browse import filter_items, item_table
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
    assert set(calls) == {str(run)}  # UMAP requested in the background, the page did not wait
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
    assert _map_caption(at).startswith("24 of 24 items · PCA")
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


def _map_caption(at) -> str:
    return next(c.value for c in at.caption if " items · " in c.value)


def _click(at, trace: int, index: int) -> None:
    """What st.plotly_chart returns for one clicked point (a Scattergl point carries its
    customdata: the row first)."""
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    rows = _decode(spec["data"][trace]["customdata"])[:, 0]
    at.session_state["explore_map"] = {"selection": {
        "points": [{"curve_number": trace, "point_index": index,
                    "customdata": [float(rows[index]), None, 0.5, 1.0]}],
        "point_indices": [index], "box": [], "lasso": []}}
    at.run()
    assert not at.exception, at.exception


def _decode(arr):
    """A plotly typed array ({"dtype", "bdata", "shape"}) or a list, as numpy."""
    if isinstance(arr, dict):
        out = np.frombuffer(base64.b64decode(arr["bdata"]), dtype=arr["dtype"])
        return out.reshape([int(d) for d in str(arr.get("shape", len(out))).split(",")])
    return np.asarray(arr)


def test_explore_click_selects_one_item_and_cards_name_every_class(world):
    from affectlab.data.synth.truth import CATEGORIES

    at = open_page("explore")
    at.selectbox(key="explore_colour").set_value("predicted").run()
    _click(at, 0, 0)
    assert [s.value for s in at.subheader][0] == "Selected: 1 item"
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")[1:]]
    assert charts, "no distribution charts under the selected item"
    for spec in charts:  # every class on each card's axis (the issue: only two were labelled)
        assert [list(t["y"]) for t in spec["data"]] == [list(CATEGORIES)] * 2
        assert spec["layout"]["showlegend"] is False
    assert any("annotated soft label" in h.proto.body for h in at.get("html"))  # one legend


def test_explore_selection_survives_a_new_map_until_cleared(world):
    """Recolouring (or the switch to UMAP) draws a new figure, which resets the chart's own
    selection: the page keeps the selected item until the user selects again or clears."""
    at = open_page("explore")
    at.selectbox(key="explore_colour").set_value("predicted").run()
    _click(at, 0, 0)
    anchor = at.subheader[1].value
    at.selectbox(key="explore_colour").set_value("uncertainty").run()
    assert not at.exception, at.exception
    assert at.subheader[0].value == "Selected: 1 item" and at.subheader[1].value == anchor
    assert any("kept from the map before it changed" in c.value for c in at.caption)
    at.text_input(key="explore_export_name").set_value("still-there").run()  # any rerun
    assert at.subheader[0].value == "Selected: 1 item"
    _click(at, 0, 1)  # a selection on this map, then cleared (double-click)
    at.session_state["explore_map"] = {"selection": {"points": [], "point_indices": [],
                                                     "box": [], "lasso": []}}
    at.run()
    assert not any(h.value.startswith("Selected") for h in at.subheader)


def test_explore_map_uses_class_colours_and_the_unit_uncertainty(world):
    at = open_page("explore")
    at.selectbox(key="explore_colour").set_value("uncertainty").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    marker = spec["data"][0]["marker"]
    assert (marker["cmin"], marker["cmax"]) == (0.0, 1.0)
    assert "uncertainty %{customdata[2]:.2f} (entropy (nats)" in spec["data"][0]["hovertemplate"]
    at.selectbox(key="explore_colour").set_value("predicted").run()
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    colours = [t["marker"]["color"] for t in spec["data"]]
    assert len(set(colours)) == len(colours)
    assert spec["layout"]["dragmode"] == "pan"  # a click selects


def test_explore_filter_then_export_the_items_on_the_map(world):
    ds, _, _ = world
    at = open_page("explore")
    at.multiselect(key="explore_splits").set_value(["train", "val", "test"]).run()
    at.slider(key="explore_f_unc").set_value((0.5, 1.0)).run()
    assert not at.exception, at.exception
    n = int(_map_caption(at).split(" of ")[0])
    assert 0 < n < 24
    assert at.radio(key="explore_act_on").value == f"all {n} on the map"
    at.text_input(key="explore_export_name").set_value("uncertain-items").run()
    at.button(key="explore_export").click().run()
    assert not at.exception, at.exception
    assert any("Exported" in s.value for s in at.success), [e.value for e in at.error]
    exported = load_dataset(data_dir() / "datasets" / "uncertain-items")
    assert len(exported.items) == n
    assert exported.meta["provenance"]["filters"]["uncertainty"] == [0.5, 1.0]


def test_explore_selection_becomes_a_campaign_for_the_owner_only(world, tmp_path, monkeypatch):
    from affectlab.annotate import Store, owner_session
    from affectlab.annotate.signin import issue_link_token, sign_in_with_link
    from affectlab.auth import OWNER_GRANT

    monkeypatch.setenv("AFFECTLAB_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    at = open_page("explore")  # signed in as the owner
    at.selectbox(key="explore_colour").set_value("predicted").run()
    _click(at, 0, 0)
    assert at.radio(key="explore_act_on").value == "the 1 selected"
    at.text_input(key="explore_campaign_name").set_value("rerate-one").run()
    at.button(key="explore_campaign").click().run()
    assert not at.exception, at.exception
    assert any("created with 1 items" in s.value for s in at.success), [e.value for e in at.error]
    assert "/annotate?campaign=" in at.code[0].value
    store = Store()
    owner = owner_session(store, sign_in_with_link(issue_link_token()))
    assert len(owner.items("rerate-one")) == 1
    # the action checks the owner's grant when it runs: without one it creates nothing
    at.text_input(key="explore_campaign_name").set_value("rerate-two").run()
    button = at.button(key="explore_campaign")
    del at.session_state[OWNER_GRANT]
    button.click().run()
    assert "rerate-two" not in owner.campaigns()["name"].tolist()
    assert any(t.value == "Sign in" for t in at.title)  # and the page is the sign-in form
    store.dispose()


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
