"""Real corpora end to end through the command line: a corpus as published → ``data import`` →
``train`` (one epoch; the shipped model fine-tuned on FER+'s 8 classes) → ``eval`` on another
corpus with another label set → ``predict`` on one media file; and a user's data error is one
line and exit status 2, never a traceback."""

from __future__ import annotations

import json

import fixtures_importers as fx
import pytest
from typer.testing import CliRunner

from affectlab.cli import app

pytestmark = pytest.mark.filterwarnings("ignore:classes .* have no mass")  # tiny fixtures
runner = CliRunner()
CPU = ["--set", "device=cpu", "--set", "batch_size=4", "--set", "lr=0.001"]
CONVPOOL = ["--model", "convpool", "--set", "model_params.channels=16",
            "--set", "model_params.hidden=16"]


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def _user_error(args: list[str], *expected: str):
    """Exit status 2 and one ``error:`` line naming what is wrong."""
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer's Exit(2), nothing uncaught
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for text in expected:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def test_ravdess_run_evaluated_on_emodb_and_predicting_a_clip(tmp_path):
    ravdess = fx.write_ravdess_actors(tmp_path / "RAVDESS", 8)
    emodb = fx.write_emodb(tmp_path / "EmoDB")
    out = _ok(["data", "import", "ravdess", str(ravdess), "--out", str(tmp_path / "ds-ravdess")])
    assert "[train 12, val 2, test 1]" in out.stdout  # 8 actors: 6 / 1 / 1
    _ok(["data", "import", "emodb", str(emodb), "--out", str(tmp_path / "ds-emodb")])
    run = tmp_path / "run-ravdess"
    trained = _ok(["train", "--dataset", str(tmp_path / "ds-ravdess"), *CONVPOOL, "--method",
                   "ce", "--epochs", "1", "--out", str(run), *CPU])
    assert "finished" in trained.stdout and "test uar=" in trained.stdout

    evaluated = _ok(["eval", str(run), "--dataset", str(tmp_path / "ds-emodb"), "--split",
                     "all"])
    metrics = json.loads(evaluated.stdout)
    classes = metrics["classes"]
    assert [c["class"] for c in classes["shared"]] == ["angry", "disgusted", "fearful", "happy",
                                                        "sad", "neutral"]
    assert classes["dropped"] == {"bored": 1} and classes["unused"] == ["calm", "surprised"]
    assert metrics["n"] == len(fx.EMODB_FILES) - 1 and 0 <= metrics["uar"] <= 1
    assert metrics["confusion_matrix"]["classes"] == [c["class"] for c in classes["shared"]]
    assert ("classes kept: angry, disgusted←disgust, fearful, happy, sad, neutral; dataset "
            "classes dropped: bored (1 items); run classes unused: calm, surprised; 8 of 9 items "
            "scored") in evaluated.stderr
    # calm read as neutral: RAVDESS's calm clips count for EmoDB's neutral
    merged = json.loads(_ok(["eval", str(run), "--dataset", str(tmp_path / "ds-emodb"),
                             "--split", "all", "--class-map", "calm=neutral"]).stdout)
    assert merged["classes"]["unused"] == ["surprised"]

    clip = emodb / "wav" / f"{fx.EMODB_FILES[0]}.wav"
    predicted = json.loads(_ok(["predict", "--model", str(run), str(clip)]).stdout)
    assert set(predicted["distribution"]) == {"neutral", "calm", "happy", "sad", "angry",
                                              "fearful", "disgust", "surprised"}


def test_ferplus_fine_tuned_from_the_shipped_model_evaluated_on_fer2013_folders(tmp_path):
    _ok(["data", "import", "ferplus", str(fx.write_ferplus_folders(tmp_path / "FERPlus")),
         "--out", str(tmp_path / "ds-ferplus")])
    _ok(["data", "import", "folder", str(fx.write_fer2013_folders(tmp_path / "fer2013")),
         "--out", str(tmp_path / "ds-fer2013")])
    run = tmp_path / "run-ferplus"
    trained = _ok(["train", "--dataset", str(tmp_path / "ds-ferplus"), "--model",
                   "mini_xception", "--pretrained", "--method", "ce", "--epochs", "1", "--out",
                   str(run), *CPU])
    assert ("initialised from the shipped mini_xception weights (7 classes): 7 class(es) mapped"
            in trained.stdout) and "new: contempt" in trained.stdout

    metrics = json.loads(_ok(["eval", str(run), "--dataset", str(tmp_path / "ds-fer2013"),
                              "--split", "all"]).stdout)
    assert metrics["n"] == len(fx.FER2013_FOLDER_FILES)
    assert metrics["classes"]["unused"] == ["contempt"] and metrics["classes"]["dropped"] == {}
    assert len(metrics["confusion_matrix"]["matrix"]) == 7
    assert metrics["confusion_matrix"]["classes"] == ["angry", "disgust", "fear", "happy",
                                                      "neutral", "sad", "surprise"]
    assert "angry←anger" in metrics["classes"]["summary"]

    face = tmp_path / "FERPlus" / "data" / "FER2013Test" / "fer0000005.png"
    predicted = json.loads(_ok(["predict", "--model", str(run), str(face)]).stdout)
    assert set(predicted["distribution"]) == set(fx.FERPLUS_NEW_HEADER.split(",")[2:10])

    # the FER+ run as the starting point of a FER2013-labelled one
    again = _ok(["train", "--dataset", str(tmp_path / "ds-fer2013"), "--model", "mini_xception",
                 "--init-from", str(run), "--method", "ce", "--epochs", "1", "--out",
                 str(tmp_path / "run-fer2013"), *CPU])
    assert "7 class(es) mapped" in again.stdout and "unused: contempt" in again.stdout


# --------------------------------------------------------------------------- one-line errors

LATIN1 = "path,label\nclips/s1_a.wav,Ärger\nclips/s2_b.wav,Freude\nclips/s3_c.wav,Ärger\n"


def test_a_label_file_that_is_not_utf8(tmp_path):
    src = fx.write_folder_csv(tmp_path / "src")
    (src / "labels.csv").write_bytes(LATIN1.encode("latin-1"))
    _user_error(["data", "import", "folder", str(src), "--out", str(tmp_path / "out")],
                "labels.csv is not utf-8 text: byte 0xc4 at offset 26 (line 2)", "--encoding")
    out = _ok(["data", "import", "folder", str(src), "--out", str(tmp_path / "out"),
               "--encoding", "latin-1"])
    assert "imported 3 items" in out.stdout


def test_a_truncated_csv(tmp_path):
    src = fx.write_msp_podcast(tmp_path / "src")
    consensus = src / "Labels/labels_consensus.csv"
    text = consensus.read_text()
    consensus.write_text(text[:text.index("Development") - 12])
    _user_error(["data", "import", "msp", str(src), "--out", str(tmp_path / "out")],
                "labels_consensus.csv:3: expected 8 fields, got 5 (a truncated line?)",
                "--skip-bad")


def test_unreadable_media_at_import_train_eval_and_predict(tmp_path):
    src = fx.write_ravdess(tmp_path / "src")
    bad = src / fx.RAVDESS_FILES[0]
    good = bad.read_bytes()
    bad.write_bytes(b"RIFF\x00\x00not a wave")
    _user_error(["data", "import", "ravdess", str(src), "--out", str(tmp_path / "ds")],
                "03-01-01-01-01-01-01.wav: unreadable audio")
    bad.write_bytes(good)
    _ok(["data", "import", "ravdess", str(src), "--out", str(tmp_path / "ds")])
    run = tmp_path / "run"
    _ok(["train", "--dataset", str(tmp_path / "ds"), *CONVPOOL, "--method", "ce", "--epochs",
         "1", "--out", str(run), *CPU])
    # a dataset whose media broke after the import: train and eval name the item and file
    media = tmp_path / "ds" / "media" / fx.RAVDESS_FILES[1]
    media.unlink()  # replaced, not written through (the import may have hard-linked it)
    media.write_bytes(b"broken")
    _user_error(["train", "--dataset", str(tmp_path / "ds"), *CONVPOOL, "--method", "ce",
                 "--epochs", "1", "--out", str(tmp_path / "run2"), *CPU],
                "item '03-01-06-02-02-01-01'", "cannot decode audio")
    _user_error(["eval", str(run), "--dataset", str(tmp_path / "ds"), "--split", "all"],
                "item '03-01-06-02-02-01-01'", "cannot decode audio")
    result = runner.invoke(app, ["predict", "--model", str(run), str(media)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    line = json.loads(result.stdout)
    assert line["file"] == str(media) and "cannot decode audio" in line["error"]


def test_eval_with_no_shared_class(tmp_path):
    _ok(["data", "import", "ravdess", str(fx.write_ravdess(tmp_path / "src")), "--out",
         str(tmp_path / "ds")])
    _ok(["train", "--dataset", str(tmp_path / "ds"), *CONVPOOL, "--method", "ce", "--epochs",
         "1", "--out", str(tmp_path / "run"), *CPU])
    other = fx.write_folder_csv(tmp_path / "src2", "path,label\nclips/s1_a.wav,low\n"
                                "clips/s2_b.wav,high\nclips/s3_c.wav,low\n")
    _ok(["data", "import", "folder", str(other), "--out", str(tmp_path / "ds2")])
    _user_error(["eval", str(tmp_path / "run"), "--dataset", str(tmp_path / "ds2"), "--split",
                 "all"], "share no class", "--class-map")


def test_a_dataset_without_training_items(tmp_path):
    src = tmp_path / "src"
    fx.write_image(src / "test" / "happy" / "a.png", seed=1)
    fx.write_image(src / "test" / "sad" / "b.png", seed=2)
    _ok(["data", "import", "folder", str(src), "--out", str(tmp_path / "ds")])
    _user_error(["train", "--dataset", str(tmp_path / "ds"), "--model", "resnet18", "--set",
                 "model_params.width=4", "--method", "ce", "--epochs", "1", "--out",
                 str(tmp_path / "run"), *CPU], "dataset 'ds' has no rated training items")
