"""Model registry, shapes, masking, and the mini-Xception port against Keras's own outputs."""

from pathlib import Path

import numpy as np
import pytest
import torch

import affectlab.models as models
from affectlab.models.mini_xception import FER2013_CLASSES, fer_to_categories, verify_weights_file

REFERENCE = Path(__file__).parent / "fixtures" / "mini_xception_reference.npz"


def test_registry_lists_every_model_with_params():
    names = {spec.name: spec for spec in models.available()}
    assert {"convpool", "mini_xception", "resnet18"} <= set(names)
    assert names["convpool"].modality == "speech"
    assert names["convpool"].params["kernel_width"] == 16
    assert {s.name for s in models.available("face")} == {"mini_xception", "resnet18"}


def test_registry_errors_name_the_problem():
    with pytest.raises(ValueError, match="unknown model 'resnet50'.*convpool"):
        models.create("resnet50")
    with pytest.raises(ValueError, match="no parameter.*'widht'"):
        models.create("resnet18", widht=8)
    with pytest.raises(ValueError, match="no pretrained weights"):
        models.create("convpool", pretrained=True)


@pytest.mark.parametrize("name,shape", [("resnet18", (3, 1, 64, 64)), ("mini_xception", (3, 1, 64, 64)),
                                        ("convpool", (3, 40, 40))])
def test_forward_shapes_and_gradients(name, shape):
    torch.manual_seed(0)
    model = models.create(name, num_classes=5)
    out = model(torch.rand(shape))
    assert out.logits.shape == (3, 5)
    assert out.embedding.shape == (3, model.embedding_dim)
    assert out.features.shape == (3, model.feature_dim)
    out.logits.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_convpool_ignores_padding_frames():
    torch.manual_seed(0)
    model = models.create("convpool").eval()
    short = torch.randn(1, 30, 40)
    padded = torch.cat([short, 100 * torch.randn(1, 50, 40)], dim=1)  # garbage after frame 30
    a = model(short, torch.tensor([30]))
    b = model(padded, torch.tensor([30]))
    torch.testing.assert_close(a.logits, b.logits)
    # the garbage does change the output when it is declared valid
    c = model(padded, torch.tensor([80]))
    assert not torch.allclose(a.logits, c.logits)


def test_convpool_accepts_sequences_shorter_than_its_kernel():
    model = models.create("convpool")
    out = model(torch.randn(2, 5, 40), torch.tensor([5, 3]))
    assert torch.isfinite(out.logits).all()


def test_shipped_weights_match_recorded_sha256():
    verify_weights_file()


def test_mini_xception_port_equals_keras_outputs():
    ref = np.load(REFERENCE)
    model = models.create("mini_xception", pretrained=True)
    x = torch.from_numpy(ref["inputs"].astype(np.float32) / 255.0)[:, None]
    with torch.no_grad():
        probs = model(x).logits.softmax(-1).numpy()
    np.testing.assert_allclose(probs, ref["probs"], atol=2e-5)


def test_fer_class_reordering():
    probs = torch.eye(7)  # row i = FER2013 class i
    ours = ("neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised")
    reordered = fer_to_categories(probs, ours)
    for j, name in enumerate(ours):
        fer_index = int(reordered[:, j].argmax())
        assert FER2013_CLASSES[fer_index].startswith(name[:4])
    with pytest.raises(ValueError, match="categories"):
        fer_to_categories(probs, ("calm",))


def test_pretrained_mini_xception_reads_astronaut_as_happy():
    """scikit-image's astronaut photo (a smiling face) through Haar detection and cropping."""
    from skimage.data import astronaut

    from affectlab.features.face import FaceCropper

    result = FaceCropper().process(astronaut())
    assert result.ok, result.reason
    model = models.create("mini_xception", pretrained=True)
    x = torch.from_numpy(result.face.astype(np.float32) / 255.0)[None, None]
    with torch.no_grad():
        probs = model(x).logits.softmax(-1)[0]
    scores = dict(zip(FER2013_CLASSES, probs.tolist(), strict=True))
    assert FER2013_CLASSES[int(probs.argmax())] == "happy", scores
