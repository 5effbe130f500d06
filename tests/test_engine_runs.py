import json

import numpy as np
import pytest
import soundfile as sf
from engine_helpers import TINY, isolated_data_env, make_corpus, registered_module_scope, train_tiny
from PIL import Image
from typer.testing import CliRunner

from affectlab.cli import app
from affectlab.engine.rundir import RunDir
from affectlab.engine.runs import evaluate_run, load_run, runs_table

runner = CliRunner()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("engine-runs")
    mp = isolated_data_env(tmp)
    undo = registered_module_scope()
    face, speech = make_corpus(tmp, "face", 60), make_corpus(tmp, "speech", 40)
    runs = tmp / "runs"
    face_run = train_tiny(face, runs / "face-a").run_dir
    speech_run = train_tiny(speech, runs / "speech-a", modality="speech").run_dir
    yield {"tmp": tmp, "face": face, "speech": speech, "runs": runs, "face_run": face_run,
           "speech_run": speech_run}
    undo()
    mp.__exit__(None, None, None)


def test_runs_table_headlines(env):
    from engine_helpers import tiny_config

    queued = tiny_config(env["face"], env["runs"] / "queued")
    queued.run_dir().mkdir()
    RunDir(queued.run_dir()).write_config(queued)
    table = runs_table(env["runs"])
    rows = table.set_index("name")
    assert {"face-a", "speech-a", "queued"} <= set(rows.index)
    assert rows.loc["face-a", "status"] == "finished" and rows.loc["queued", "status"] == "queued"
    assert rows.loc["face-a", "method"] == TINY and rows.loc["face-a", "epochs_done"] == 2
    metrics = json.loads((env["face_run"] / "metrics.json").read_text())
    best = max(h["val"]["uar"] for h in metrics["history"])
    assert rows.loc["face-a", "best_val_uar"] == pytest.approx(best)
    assert rows.loc["face-a", "test_uar"] == pytest.approx(metrics["test"]["uar"])
    assert np.isnan(rows.loc["queued", "best_val_uar"])
    assert runs_table(env["tmp"] / "no-runs-here").empty
    finished = runs_table(env["runs"], status="finished", has_outputs=True)
    assert set(finished["name"]) == {"face-a", "speech-a"}
    assert list(runs_table(env["runs"], has_outputs=False)["name"]) == ["queued"]


def test_load_run_rebuilds_the_trained_model(env):
    import torch

    from affectlab.data.dataset import EmotionDataset
    from affectlab.engine.evaluate import predict_split

    run = load_run(env["face_run"])
    assert run.method is not None and not run.method.training
    assert run.outputs is not None and run.embeddings.shape[0] == len(run.outputs)
    assert run.class_names == EmotionDataset(env["face"], "test").class_names
    assert [e["type"] for e in run.events][-1] == "end"
    ds = EmotionDataset(env["face"], "test")
    loader = torch.utils.data.DataLoader(ds, batch_size=8, collate_fn=ds.collate_fn)
    pred = predict_split(run.method, loader, torch.device("cpu"), "test")
    saved = run.outputs[run.outputs.split == "test"].set_index("item_id").loc[pred.item_id]
    np.testing.assert_allclose(np.stack(saved.probs.to_numpy()), pred.probs, atol=1e-5)
    with pytest.raises(ValueError, match="weights"):
        load_run(env["face_run"], weights="middle")
    with pytest.raises(FileNotFoundError):
        load_run(env["tmp"])


def test_evaluate_run_same_and_other_corpus(env):
    metrics = json.loads((env["face_run"] / "metrics.json").read_text())
    same = evaluate_run(env["face_run"], env["face"])
    for key, value in metrics["test"].items():
        assert same[key] == pytest.approx(value, abs=1e-9), key
    other = make_corpus(env["tmp"], "face", 40, seed=7)
    cross = evaluate_run(env["face_run"], other, split=None)
    assert cross["n"] == 40 and 0 <= cross["uar"] <= 1
    with pytest.raises(ValueError, match="speech data"):
        evaluate_run(env["face_run"], env["speech"])


def test_cli_train_runs_eval(env):
    out = env["tmp"] / "cli-run"
    res = runner.invoke(app, ["train", "--dataset", str(env["face"]), "--model", "resnet18",
                              "--method", TINY, "--epochs", "1", "--out", str(out),
                              "--set", "model_params.width=4", "--set", "batch_size=16",
                              "--set", "device=cpu"])
    assert res.exit_code == 0, res.output
    assert "finished" in res.output and (out / "metrics.json").is_file()
    bad = runner.invoke(app, ["train", "--dataset", str(env["face"]), "--model", "resnet18",
                              "--set", "epoch=2"])
    assert bad.exit_code == 2 and "epoch" in bad.output
    res = runner.invoke(app, ["runs", "--root", str(env["runs"])])
    assert res.exit_code == 0 and "face-a" in res.output and "finished" in res.output
    res = runner.invoke(app, ["eval", str(env["face_run"]), "--dataset", str(env["face"])])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["uar"] == pytest.approx(
        json.loads((env["face_run"] / "metrics.json").read_text())["test"]["uar"])


def test_cli_train_prepare_writes_config_for_torchrun(env):
    out = env["tmp"] / "prepared"
    args = ["train", "--dataset", str(env["face"]), "--model", "resnet18", "--method", TINY,
            "--epochs", "1", "--out", str(out), "--prepare"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert (out / "config.yaml").is_file() and not (out / "events.jsonl").exists()
    assert f"affectlab.engine.worker {out}" in res.output
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "already holds a run" in again.output
    bad = runner.invoke(app, [*args[:-3], "--out", str(env["tmp"] / "bad"), "--set",
                              "method_params.weight=maybe", "--prepare"])
    assert bad.exit_code == 2 and "weight must be a finite number, got 'maybe'" in bad.output
    assert not (env["tmp"] / "bad").exists()


def _predict(args):
    res = runner.invoke(app, ["predict", *map(str, args)])
    lines = [json.loads(x) for x in res.output.strip().splitlines() if x.startswith("{")]
    return res.exit_code, lines


def test_predict_generated_png_and_wav(env):
    import pandas as pd

    items = pd.read_parquet(env["face"] / "items.parquet")
    png = env["face"] / items.media.iloc[0]
    code, out = _predict([png, "--model", env["face_run"]])
    assert code == 0 and len(out) == 1
    dist = out[0]["distribution"]
    assert list(dist) == load_run(env["face_run"]).class_names
    assert sum(dist.values()) == pytest.approx(1.0, abs=1e-5)
    assert out[0]["predicted"] == max(dist, key=dist.get)

    sitems = pd.read_parquet(env["speech"] / "items.parquet")
    wav = env["speech"] / sitems.media.iloc[0]
    code, out = _predict([wav, "--model", env["speech_run"]])
    assert code == 0 and sum(out[0]["distribution"].values()) == pytest.approx(1.0, abs=1e-5)
    # a WAV given to a face model is reported, not crashed on
    code, out = _predict([wav, "--model", env["face_run"]])
    assert code == 1 and "face" in out[0]["error"]


def test_predict_astronaut_is_happy_and_blank_image_has_no_face(env, tmp_path):
    from skimage.data import astronaut

    photo = tmp_path / "astronaut.png"
    Image.fromarray(astronaut()).save(photo)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200), 128, np.uint8)).save(blank)
    code, out = _predict([photo, blank, "--model", "mini_xception"])
    assert code == 1 and len(out) == 2
    assert out[0]["predicted"] == "happy", out[0]
    assert out[1]["error"] == "no face detected"
    code, out = _predict([photo, "--model", "resnet18"])
    assert code == 2


def test_predict_wav_needs_a_speech_model(tmp_path):
    wav = tmp_path / "tone.wav"
    t = np.arange(16000) / 16000
    sf.write(wav, 0.1 * np.sin(2 * np.pi * 220 * t), 16000)
    code, out = _predict([wav, "--model", "mini_xception"])
    assert code == 1 and "speech" in out[0]["error"]


def test_rebuilding_a_trained_method_does_not_repeat_its_training_warnings():
    """A training set with a class of no mass warns when the run trains (its class weight is
    0); rebuilding the method for a prediction restores that weight without warning again."""
    import warnings

    import torch

    from affectlab.engine.checkpoint import info_to_dict
    from affectlab.engine.runs import method_from_checkpoint
    from affectlab.methods import TrainSetInfo, create
    from affectlab.models import create as create_model

    soft = torch.tensor([[0.7, 0.3, 0.0], [0.2, 0.8, 0.0], [1.0, 0.0, 0.0]])
    info = TrainSetInfo(n_items=3, num_classes=3, soft_labels=soft, labels=soft.argmax(1))
    params = {"width": 4, "embedding_dim": 8}
    with pytest.warns(RuntimeWarning, match=r"classes \[2\] have no mass"):
        trained = create("ce", create_model("resnet18", num_classes=3, **params), info,
                         class_weights=True)
    state = {"model": "resnet18", "model_params": {"num_classes": 3, **params}, "method": "ce",
             "method_params": {"class_weights": True}, "info": info_to_dict(info),
             "method_state": trained.state_dict()}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rebuilt = method_from_checkpoint(state)
    assert rebuilt.class_weight[2] == 0 and torch.equal(rebuilt.class_weight, trained.class_weight)
