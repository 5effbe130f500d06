"""Fine-tuning on another label set: the head's rows mapped by class name
(affectlab.models.finetune), from the shipped weights or a trained run (affectlab.engine.finetune),
through the trainer on FER+'s 8 classes."""

from __future__ import annotations

import fixtures_importers as fx
import numpy as np
import pytest
import torch
from engine_helpers import isolated_data_env, make_corpus, tiny_config

import affectlab.models as models
from affectlab.data.dataset import EmotionDataset
from affectlab.data.importers import import_corpus
from affectlab.data.importers.ferplus import LABELS as FERPLUS
from affectlab.engine.config import ConfigError, RunConfig, validate_config
from affectlab.engine.events import read_events
from affectlab.engine.finetune import init_from_run
from affectlab.engine.rundir import CheckpointError
from affectlab.engine.trainer import train
from affectlab.models.finetune import init_from_shipped, init_head_from
from affectlab.models.mini_xception import FER2013_CLASSES

TINY_RESNET = {"width": 4, "embedding_dim": 16}


def _resnet(k: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return models.create("resnet18", num_classes=k, **TINY_RESNET)


def test_head_rows_follow_class_names_and_the_rest_is_copied():
    source = _resnet(7, seed=0)
    target = _resnet(8, seed=1)
    fresh = {k: v.clone() for k, v in target.state_dict().items()}
    report = init_head_from(target, source.state_dict(), FER2013_CLASSES, FERPLUS)
    assert report.mapped == {"neutral": "neutral", "happiness": "happy", "surprise": "surprise",
                             "sadness": "sad", "anger": "angry", "disgust": "disgust",
                             "fear": "fear"}
    assert report.new == ["contempt"] and report.unused == []
    got, src = target.state_dict(), source.state_dict()
    for key in got:
        if not key.startswith("classifier."):
            torch.testing.assert_close(got[key], src[key])  # the backbone, buffers included
    for key in ("classifier.weight", "classifier.bias"):
        for t, name in enumerate(FERPLUS):
            if name == "contempt":  # new: the model's own initialisation, untouched
                torch.testing.assert_close(got[key][t], fresh[key][t])
            else:
                s = FER2013_CLASSES.index(report.mapped[name])
                torch.testing.assert_close(got[key][t], src[key][s])
    assert report.summary() == (
        "initialised from the source: 7 class(es) mapped (neutral, happiness←happy, surprise, "
        "sadness←sad, anger←angry, disgust, fear); new: contempt")


def test_a_class_map_maps_what_the_table_does_not():
    source, target = _resnet(7, 0), _resnet(8, 1)
    report = init_head_from(target, source.state_dict(), FER2013_CLASSES, FERPLUS,
                            {"contempt": "disgust"})
    assert report.new == [] and report.mapped["contempt"] == "disgust"
    w = target.state_dict()["classifier.weight"]
    torch.testing.assert_close(w[FERPLUS.index("contempt")], w[FERPLUS.index("disgust")])


def test_another_network_is_refused_by_key_and_shape():
    with pytest.raises(ValueError, match=r"'stem\.0\.weight' is \(8, 1, 3, 3\), this model "
                       r"needs \(4, 1, 3, 3\)"):
        init_head_from(_resnet(8, 1), models.create("resnet18", width=8).state_dict(),
                       FER2013_CLASSES, FERPLUS)
    with pytest.raises(ValueError, match="no weights for 'conv1.weight'"):
        init_head_from(models.create("mini_xception", num_classes=8),
                       _resnet(7, 0).state_dict(), FER2013_CLASSES, FERPLUS)
    with pytest.raises(ValueError, match="has 7 names but the model has 8 outputs"):
        init_head_from(_resnet(8, 1), _resnet(7, 0).state_dict(), FER2013_CLASSES,
                       FER2013_CLASSES)


def test_shipped_mini_xception_on_ferplus_classes_keeps_the_shared_logits():
    shipped = models.create("mini_xception", pretrained=True).eval()
    model = models.create("mini_xception", num_classes=8)
    report = init_from_shipped("mini_xception", model, FERPLUS)
    assert report.new == ["contempt"] and len(report.mapped) == 7
    x = torch.rand(4, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ours, theirs = model.eval()(x).logits, shipped(x).logits
    for t, name in enumerate(FERPLUS):
        if name in report.mapped:
            s = FER2013_CLASSES.index(report.mapped[name])
            torch.testing.assert_close(ours[:, t], theirs[:, s])


# --------------------------------------------------------------------------- through the trainer

@pytest.fixture(scope="module")
def ferplus(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("finetune")
    mp = isolated_data_env(tmp)
    import_corpus("ferplus", fx.write_ferplus_folders(tmp / "src"), tmp / "ferplus")
    faces = EmotionDataset(make_corpus(tmp, "face", 40), None)
    x = torch.stack([faces[i]["x"] for i in range(len(faces))])
    yield {"tmp": tmp, "dataset": tmp / "ferplus", "faces": x}
    mp.__exit__(None, None, None)


def _config(dataset, out, **kw) -> RunConfig:
    return RunConfig(dataset=dataset, model="mini_xception", method="ce", epochs=1,
                     batch_size=4, lr=1e-3, device="cpu", out=out, **kw)


def _shared_argmax(logits: torch.Tensor, columns: list[int]) -> np.ndarray:
    return logits[:, columns].argmax(dim=1).numpy()


@pytest.mark.filterwarnings("ignore:classes .* have no mass")
def test_pretrained_mini_xception_fine_tunes_on_ferplus_and_agrees_with_the_shipped_model(
        ferplus):
    result = train(_config(ferplus["dataset"], ferplus["tmp"] / "ft", pretrained=True),
                   progress=False)
    assert result.status == "finished" and result.epochs_done == 1
    notice = next(e for e in read_events(result.run_dir)[0] if e["type"] == "notice")
    assert notice["init"]["new"] == ["contempt"] and len(notice["init"]["mapped"]) == 7
    assert "7 class(es) mapped" in notice["message"]

    from affectlab.engine.runs import load_run

    tuned = load_run(result.run_dir).model.eval()
    shipped = models.create("mini_xception", pretrained=True).eval()
    ours = [FERPLUS.index(c) for c in FERPLUS if c != "contempt"]
    theirs = [FER2013_CLASSES.index(notice["init"]["mapped"][FERPLUS[t]]) for t in ours]
    with torch.no_grad():
        reference = _shared_argmax(shipped(ferplus["faces"]).logits, theirs)
        agree = np.mean(_shared_argmax(tuned(ferplus["faces"]).logits, ours) == reference)
        # the same backbone under heads drawn at random: what an unmapped head would give
        chance = []
        for seed in range(5):
            torch.manual_seed(seed)
            tuned.head.reset_parameters()
            chance.append(np.mean(_shared_argmax(tuned(ferplus["faces"]).logits, ours)
                                  == reference))
    assert len(set(reference)) > 1  # the faces do not all get one class
    # one Adam step and the BatchNorm statistics of two training faces move the outputs
    # (measured: 0.725 against 0.0–0.3 for the random heads)
    assert agree >= 0.5 and agree > max(chance), (agree, chance)


@pytest.mark.filterwarnings("ignore:classes .* have no mass")
def test_init_from_a_trained_run(ferplus):
    first = train(tiny_config(ferplus["dataset"], ferplus["tmp"] / "first", method="ce",
                              epochs=1, batch_size=4), progress=False)
    second = tiny_config(ferplus["dataset"], ferplus["tmp"] / "second", method="ce", epochs=1,
                         batch_size=4, init_from=first.run_dir)
    model = models.create("resnet18", num_classes=8, **second.model_params)
    report = init_from_run(first.run_dir, "resnet18", model, FERPLUS)
    assert report.new == [] and report.mapped == {c: c for c in FERPLUS}
    saved = torch.load(first.run_dir / "checkpoints" / "best.pt", weights_only=True)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, saved["model_state"][key])
    assert train(second, progress=False).status == "finished"
    with pytest.raises(ConfigError, match="trained 'resnet18'; this run's model is "
                       "'mini_xception'"):
        init_from_run(first.run_dir, "mini_xception", models.create("mini_xception"), FERPLUS)
    with pytest.raises(FileNotFoundError, match="not a trained run"):
        init_from_run(ferplus["tmp"], "resnet18", model, FERPLUS)
    with pytest.raises(ConfigError, match="two starting points"):
        validate_config({"dataset": ".", "model": "mini_xception", "pretrained": True,
                         "init_from": str(first.run_dir)})


def test_a_pickled_checkpoint_is_never_unpickled(ferplus, tmp_path):
    run = tmp_path / "crafted"
    (run / "checkpoints").mkdir(parents=True)
    (run / "model.json").write_text('{"model": "resnet18", "class_names": ["a", "b"]}')

    class Boom:
        def __reduce__(self):
            return (exec, ("raise SystemExit('unpickled!')",))

    torch.save({"model_state": {}, "payload": Boom()}, run / "checkpoints" / "best.pt")
    with pytest.raises(CheckpointError, match=r"best\.pt holds objects other than tensors"):
        init_from_run(run, "resnet18", _resnet(2, 0), ["a", "b"])
