"""affectlab.live: face frame processor, audio chunk processor, device probe, result holder."""

from __future__ import annotations

import io
import threading

import cv2
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from affectlab.data.synth.truth import CATEGORIES
from affectlab.explore.projection import MapProjection
from affectlab.features.face import FaceDetector, ImageLoadError, YuNetDetector, iou
from affectlab.labels import entropy
from affectlab.live.audio import SAMPLE_RATE, AudioChunkProcessor, av_to_samples
from affectlab.live.devices import LocalMicrophone, probe_audio
from affectlab.live.face import FaceFrameProcessor, annotate_frame
from affectlab.live.holder import LatestResult
from affectlab.live.models import LiveModel, load_run_model, pretrained_face_model
from affectlab.live.tracking import FaceTracker, search_region
from affectlab.models import create


@pytest.fixture(scope="module")
def face_processor():
    return FaceFrameProcessor(pretrained_face_model())


@pytest.fixture(scope="module")
def astronaut_bgr():
    from skimage.data import astronaut

    return cv2.cvtColor(astronaut(), cv2.COLOR_RGB2BGR)


# -- face ----------------------------------------------------------------------------------

def test_astronaut_gives_a_box_and_happy(face_processor, astronaut_bgr):
    before = astronaut_bgr.copy()
    r = face_processor.process(astronaut_bgr, color="bgr")
    assert r.ok and r.box is not None and r.face.shape == (64, 64)
    assert r.class_names == list(CATEGORIES) and r.top == "happy"
    assert r.probs.shape == (7,) and r.probs.sum() == pytest.approx(1.0)
    assert r.uncertainty == pytest.approx(float(entropy(r.probs, normalize=True)))
    assert 0.0 <= r.uncertainty <= 1.0
    assert r.annotated.shape == astronaut_bgr.shape
    assert not np.array_equal(r.annotated, astronaut_bgr)  # the box was drawn ...
    np.testing.assert_array_equal(astronaut_bgr, before)  # ... on a copy


def test_rgb_order_gives_the_same_face(face_processor, astronaut_bgr):
    a = face_processor.process(astronaut_bgr, color="bgr")
    b = face_processor.process(astronaut_bgr[..., ::-1].copy(), color="rgb")
    assert a.box == b.box
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-6)


def test_pretrained_probs_are_the_reordered_fer_outputs(face_processor, astronaut_bgr):
    from affectlab.models.mini_xception import FER2013_CLASSES

    r = face_processor.process(astronaut_bgr)
    x = torch.from_numpy(r.face.astype(np.float32) / 255.0)[None, None]
    fresh = create("mini_xception", pretrained=True).eval()  # not channels-last: same outputs
    with torch.no_grad():
        fer = fresh(x).logits.softmax(-1)[0].numpy()
    for k, name in enumerate(CATEGORIES):
        fer_name = {"disgusted": "disgust", "fearful": "fear", "surprised": "surprise"}.get(
            name, name)
        assert r.probs[k] == pytest.approx(fer[FER2013_CLASSES.index(fer_name)], abs=1e-6)


def test_blank_frame_has_no_face(face_processor):
    blank = np.zeros((240, 320, 3), np.uint8)
    r = face_processor.process(blank)
    assert not r.ok and r.box is None and r.probs is None and r.top is None
    assert r.reason == "no face detected"
    np.testing.assert_array_equal(r.annotated, blank)


def test_position_on_a_run_map_is_the_pca_transform(face_processor, astronaut_bgr, rng):
    model = face_processor.model
    proj = MapProjection().fit(rng.normal(size=(20, model.model.embedding_dim)))
    r = FaceFrameProcessor(model, proj).process(astronaut_bgr)
    np.testing.assert_allclose(r.position, proj.transform(r.embedding[None])[0])


def test_uploaded_image_bytes(face_processor, astronaut_bgr):
    buf = io.BytesIO()
    Image.fromarray(astronaut_bgr[..., ::-1]).save(buf, format="PNG")
    r = face_processor.process_image_bytes(buf.getvalue())
    assert r.top == "happy" and r.annotated.shape == astronaut_bgr.shape
    with pytest.raises(ImageLoadError, match="cannot decode"):
        face_processor.process_image_bytes(b"not an image")


def test_face_processor_validates(face_processor):
    with pytest.raises(TypeError, match="uint8"):
        face_processor.process(np.zeros((10, 10, 3), np.float32))
    with pytest.raises(ValueError, match="color must be"):
        face_processor.process(np.zeros((10, 10, 3), np.uint8), color="hsv")
    with pytest.raises(ValueError, match="shape"):
        face_processor.process(np.zeros((10, 10, 2), np.uint8))
    speech = LiveModel(create("convpool"), ["low", "high"], "x", "speech")
    with pytest.raises(ValueError, match="face model"):
        FaceFrameProcessor(speech)


@pytest.fixture(scope="module")
def two_faces_bgr(astronaut_bgr):
    scene = np.full((512, 900, 3), 180, np.uint8)
    scene[:, :512] = astronaut_bgr
    scene[128:384, 600:856] = cv2.resize(astronaut_bgr, (256, 256), interpolation=cv2.INTER_AREA)
    return scene


def test_every_face_gets_its_box_and_distribution(face_processor, two_faces_bgr):
    r = face_processor.process(two_faces_bgr)
    assert len(r.faces) == 2 and r.reason.startswith("2 faces detected by YuNet")
    big, small = r.faces
    assert big.box[2] * big.box[3] > small.box[2] * small.box[3] and small.box[0] >= 512
    # the top level is the largest face; each face's numbers are its own crop's
    assert r.box == big.box and r.probs is big.probs and r.uncertainty == big.uncertainty
    for face in r.faces:
        probs, emb = face_processor.predict_face(face.face)
        np.testing.assert_allclose(face.probs, probs, atol=1e-6)
        assert face.uncertainty == pytest.approx(float(entropy(face.probs, normalize=True)))
        x, y, w, h = face.box
        assert r.annotated[y, x + w // 2].tolist() == [0, 200, 0]  # both boxes drawn
    assert big.label(r.class_names).startswith("happy ")


def test_an_uploaded_face_crop_is_used_whole(face_processor, astronaut_bgr):
    crop = cv2.resize(astronaut_bgr[40:200, 140:300], (48, 48), interpolation=cv2.INTER_AREA)
    buf = io.BytesIO()
    Image.fromarray(crop[..., ::-1]).save(buf, format="PNG")
    r = face_processor.process_image_bytes(buf.getvalue())
    assert r.reason == "already a face crop (48×48): resized to 64×64"
    assert r.box == (0, 0, 48, 48) and r.top == "happy" and r.face.shape == (64, 64)
    # a camera frame is never taken as a crop unless asked
    assert face_processor.process(crop).reason == face_processor.process(
        crop, crop=False).reason != r.reason
    assert face_processor.process(crop, crop=True).reason.startswith("taken whole as a face crop")


# -- tracking ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clip():
    from affectlab.bench.live import moving_faces

    return moving_faces(24)


class _Counting(FaceDetector):
    """YuNet, counting the calls and the image sizes it sees."""

    name = "YuNet"

    def __init__(self):
        super().__init__(640)
        self.inner, self.sizes = YuNetDetector(max_side=None), []

    def _detect(self, image, color):
        self.sizes.append(image.shape[:2])
        return self.inner._detect(image, color)


def test_tracker_follows_the_known_faces_with_few_full_detections(clip):
    det = _Counting()
    tracker = FaceTracker(det, redetect_every=10)
    for frame, truth in zip(clip.frames, clip.truth, strict=True):
        boxes = tracker.update(frame)
        assert len(boxes) == 2 and all(max(iou(b, t) for b in boxes) >= 0.5 for t in truth)
    assert tracker.full_detections == 3  # frames 1, 11, 21
    assert tracker.searches == 2 * (24 - 3)  # two faces on every other frame
    full = [s for s in det.sizes if max(s) == 320]
    assert len(full) == 3 and full[0] == (240, 320)  # full detections at 320 px
    assert all(max(s) <= 96 for s in det.sizes if max(s) != 320)  # searches at <= 96 px


def test_tracker_detects_again_when_a_face_is_lost(clip):
    tracker = FaceTracker(YuNetDetector(), redetect_every=100)
    assert len(tracker.update(clip.frames[0])) == 2 and tracker.full_detections == 1
    tracker.update(clip.frames[1])
    assert tracker.full_detections == 1  # searched, not detected
    empty = clip.frames[1].copy()
    x, y, w, h = clip.truth[1][1]
    empty[y - 20:y + h + 20, x - 20:x + w + 20] = 128  # the small face disappears
    boxes = tracker.update(empty)
    assert tracker.full_detections == 2 and len(boxes) == 1  # lost → a full detection at once
    assert iou(boxes[0], clip.truth[1][0]) >= 0.5
    tracker.reset()
    assert tracker.tracks == [] and tracker.full_detections == 0


def test_a_face_moving_faster_than_the_margin_is_detected_again():
    from affectlab.bench.live import moving_faces

    fast = moving_faces(6)  # ~85 px a frame: more than half a face
    tracker = FaceTracker(YuNetDetector(), redetect_every=100)
    for frame, truth in zip(fast.frames, fast.truth, strict=True):
        boxes = tracker.update(frame)
        assert all(max(iou(b, t) for b in boxes) >= 0.5 for t in truth), (boxes, truth)
    assert tracker.full_detections == 6  # every search ran into its region's edge, or missed


def test_processor_with_a_tracker_matches_full_detection(face_processor, clip):
    tracker = face_processor.new_tracker(redetect_every=5)
    for frame in clip.frames[:6]:
        tracked = face_processor.process(frame, tracker=tracker)
        full = face_processor.process(frame)
        assert len(tracked.faces) == len(full.faces) == 2
        assert all(iou(a.box, b.box) > 0.7 for a, b in zip(tracked.faces, full.faces, strict=True))
        assert tracked.top == full.top == "happy"


def test_search_region_and_tracker_validation():
    assert search_region((100, 50, 40, 20), 0.5, 640, 480) == (80, 30, 160, 90)
    assert search_region((0, 0, 40, 40), 0.5, 50, 45) == (0, 0, 50, 45)  # clipped
    with pytest.raises(TypeError, match="FaceDetector"):
        FaceTracker("yunet")
    with pytest.raises(ValueError, match="redetect_every"):
        FaceTracker(YuNetDetector(), redetect_every=0)
    with pytest.raises(ValueError, match="search_side"):
        FaceTracker(YuNetDetector(), search_side=4)
    with pytest.raises(TypeError, match="tracker"):
        FaceFrameProcessor(pretrained_face_model()).process(np.zeros((8, 8, 3), np.uint8),
                                                            tracker="t")


def test_annotate_frame_draws_inside_the_box():
    frame = np.zeros((100, 100, 3), np.uint8)
    out = annotate_frame(frame, (20, 30, 40, 40), "happy")
    assert out[30, 40].any() and out[30 + 20, 20].any()  # top edge, left edge
    assert not out[60, 50].any()  # inside the box stays as it was
    assert annotate_frame(frame, None, "x").sum() == 0


# -- audio ---------------------------------------------------------------------------------

@pytest.fixture
def speech_model():
    torch.manual_seed(0)
    return LiveModel(create("convpool", num_classes=3).eval(), ["a", "b", "c"], "tiny",
                     "speech")


def _tone(seconds: float, rate: int, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_48k_stereo_becomes_16k_mono(speech_model):
    proc = AudioChunkProcessor(speech_model, window_s=2.0)
    left, right = _tone(0.5, 48000), _tone(0.5, 48000, 880.0)
    added = proc.push(np.stack([left, right], axis=1), 48000)
    assert added == 8000 and proc.buffered_seconds == pytest.approx(0.5)
    # mono average, then 48 → 16 kHz: compare with a direct 16 kHz rendering of the same sum
    expected = (_tone(0.5, 16000) + _tone(0.5, 16000, 880.0)) / 2
    got = proc.buffer()
    mid = slice(200, 7800)  # away from the resampling filter's edges
    np.testing.assert_allclose(got[mid], expected[mid], atol=2e-3)


def test_ring_buffer_keeps_the_last_window(speech_model):
    proc = AudioChunkProcessor(speech_model, window_s=1.0, min_s=0.1)
    for i in range(5):  # 5 chunks of 0.3 s of a constant level i / 10
        proc.push(np.full(4800, i / 10, np.float32), SAMPLE_RATE)
    buf = proc.buffer()
    assert len(buf) == SAMPLE_RATE
    # 1.5 s went in: the buffer is exactly the last 16000 samples of the whole stream
    stream = np.concatenate([np.full(4800, i / 10, np.float32) for i in range(5)])
    np.testing.assert_array_equal(buf, stream[-SAMPLE_RATE:])
    proc.reset()
    assert proc.buffered_seconds == 0.0 and proc.predict() is None


def test_audio_distribution(speech_model):
    proc = AudioChunkProcessor(speech_model, window_s=2.0, min_s=0.5)
    proc.push(_tone(0.3, 48000), 48000)
    assert proc.predict() is None  # less than min_s buffered
    for _ in range(10):
        proc.push((_tone(0.2, 48000) * 32767).astype(np.int16), 48000)  # int16 chunks too
    r = proc.predict()
    assert r.probs.shape == (3,) and r.probs.sum() == pytest.approx(1.0)
    assert r.class_names == ["a", "b", "c"] and r.top in ("a", "b", "c")
    assert r.seconds == pytest.approx(2.0)
    assert r.uncertainty == pytest.approx(float(entropy(r.probs, normalize=True)))
    # the same window through predict_wave gives the same distribution
    np.testing.assert_allclose(proc.predict_wave(proc.buffer()).probs, r.probs)


def test_audio_file_bytes(speech_model):
    buf = io.BytesIO()
    stereo = np.stack([_tone(1.0, 44100), _tone(1.0, 44100)], axis=1)
    sf.write(buf, stereo, 44100, format="WAV", subtype="PCM_16")
    proc = AudioChunkProcessor(speech_model)
    r = proc.predict_file_bytes(buf.getvalue())
    assert r.seconds == pytest.approx(1.0) and r.probs.shape == (3,)
    with pytest.raises(ValueError, match="cannot decode"):
        proc.predict_file_bytes(b"RIFF nonsense")


def test_av_to_samples_layouts():
    packed = np.array([[1, -1, 2, -2, 3, -3]], dtype=np.int16)  # interleaved L R
    out = av_to_samples(packed, channels=2, planar=False)
    np.testing.assert_allclose(out, np.array([[1, -1], [2, -2], [3, -3]]) / 32768.0)
    planar = np.array([[0.5, 0.25], [-0.5, -0.25]], dtype=np.float32)
    np.testing.assert_array_equal(av_to_samples(planar, channels=2, planar=True),
                                  planar.T)
    with pytest.raises(ValueError, match="multiple of channels"):
        av_to_samples(np.zeros((1, 5), np.int16), channels=2, planar=False)
    with pytest.raises(ValueError, match="planar array"):
        av_to_samples(np.zeros((1, 5), np.float32), channels=2, planar=True)


def test_audio_processor_validates(speech_model):
    with pytest.raises(ValueError, match="speech model"):
        AudioChunkProcessor(pretrained_face_model())
    with pytest.raises(ValueError, match="window_s"):
        AudioChunkProcessor(speech_model, window_s=0)
    proc = AudioChunkProcessor(speech_model)
    with pytest.raises(ValueError, match="non-empty"):
        proc.push(np.zeros(0), 16000)
    with pytest.raises(ValueError, match="finite"):
        proc.push(np.array([0.0, np.nan]), 16000)
    for rate in (0, 1, 8, 3_999, 384_001):  # a header saying 8 Hz once drove an upload to 7 GB
        with pytest.raises(ValueError, match="outside 4000..384000 Hz"):
            proc.push(np.zeros(10), rate)
    with pytest.raises(ValueError, match="integer"):
        proc.push(np.zeros(10), 16000.5)
    with pytest.raises(ValueError, match="longer than the 10 s allowed"):
        proc.push(np.zeros(4_000 * 11, np.float32), 4_000)
    assert proc.push(np.zeros(480, np.float32), 48_000) == 160  # a 10 ms WebRTC chunk
    with pytest.raises(ValueError, match="at least"):
        proc.predict_wave(np.zeros(100, np.float32))


# -- run models ----------------------------------------------------------------------------

def test_load_run_model_from_a_checkpoint(tmp_path):
    import yaml

    torch.manual_seed(1)
    net = create("convpool", num_classes=2)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save({"model": net.state_dict(), "epoch": 3}, run / "checkpoints" / "last.pt")
    (run / "config.yaml").write_text(yaml.safe_dump(
        {"model": "convpool", "class_names": ["low", "high"], "dataset": str(tmp_path / "x")}))
    live = load_run_model(run)
    assert live.modality == "speech" and live.class_names == ["low", "high"]
    x = torch.randn(1, 50, 40)
    with torch.no_grad():
        expected = net.eval()(x).logits.softmax(-1).double().numpy()
    np.testing.assert_allclose(live.predict(x)[0], expected, atol=1e-6)
    (run / "checkpoints" / "last.pt").unlink()
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_run_model(run)


# -- devices and holder --------------------------------------------------------------------

def test_probe_never_raises_without_portaudio():
    def missing():
        raise OSError("PortAudio library not found")

    status = probe_audio(importer=missing)
    assert not status.available and "PortAudio" in status.message and status.devices == []
    # and the real module on this machine, whatever it has
    assert isinstance(probe_audio().message, str)


class _FakeSD:
    def __init__(self, devices, fail_stream=False):
        self._devices, self.fail_stream = devices, fail_stream
        self.default = type("D", (), {"device": [1, 0]})()

    def query_devices(self, device=None, kind=None):
        if device is None and kind is None:
            return self._devices
        return {"default_samplerate": 48000.0}

    def InputStream(self, **kw):  # noqa: N802 - sounddevice's name
        if self.fail_stream:
            raise RuntimeError("Error opening InputStream: Device unavailable")
        return type("S", (), {"start": lambda s: None, "stop": lambda s: None,
                              "close": lambda s: None})()


def test_probe_lists_input_devices_only():
    sd = _FakeSD([{"name": "speaker", "max_input_channels": 0},
                  {"name": "mic", "max_input_channels": 2, "default_samplerate": 48000}])
    status = probe_audio(importer=lambda: sd)
    assert status.available and status.default_input == 1
    assert status.devices == [{"index": 1, "name": "mic", "channels": 2, "sample_rate": 48000.0}]
    none = probe_audio(importer=lambda: _FakeSD([{"name": "speaker", "max_input_channels": 0}]))
    assert not none.available and "no input device" in none.message


def test_local_microphone_reports_failures():
    def missing():
        raise OSError("PortAudio library not found")

    ok, msg = LocalMicrophone(lambda x, r: None, importer=missing).start()
    assert not ok and "PortAudio" in msg
    mic = LocalMicrophone(lambda x, r: None, importer=lambda: _FakeSD([], fail_stream=True))
    ok, msg = mic.start()
    assert not ok and "Device unavailable" in msg and not mic.running
    mic = LocalMicrophone(lambda x, r: None, importer=lambda: _FakeSD([]))
    assert mic.start() == (True, "recording at 48000 Hz") and mic.running
    mic.stop()
    mic.stop()
    assert not mic.running


def test_latest_result_is_thread_safe():
    holder = LatestResult()
    assert holder.get() == (None, None, 0)

    def writer(k):
        for i in range(500):
            holder.put((k, i))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    value, age, count = holder.get()
    assert count == 2000 and value[1] == 499 and age >= 0
    holder.clear()
    assert holder.get()[2] == 0


@pytest.mark.slow
def test_engine_trained_speech_run_feeds_the_audio_processor(tmp_path):
    """A real (1-epoch) engine run: its method, class names and training normalisers."""
    from affectlab.data.synth.corpus import generate_corpus
    from affectlab.engine.config import RunConfig
    from affectlab.engine.trainer import train

    ds = generate_corpus("speech", n=20, seed=0, out=tmp_path / "speech")
    cfg = RunConfig(dataset=ds.root, model="convpool", method="ce", epochs=1,
                    out=tmp_path / "run")
    assert train(cfg, progress=False).status == "finished"
    live = load_run_model(tmp_path / "run")
    assert live.method is not None and live.modality == "speech"
    assert live.class_names == list(CATEGORIES)
    proc = AudioChunkProcessor(live)
    assert proc._normalizer is not None  # the training statistics, not per-window
    proc.push(_tone(2.0, 48000), 48000)
    r = proc.predict()
    assert r.probs.shape == (7,) and r.probs.sum() == pytest.approx(1.0)


def test_silent_like_keeps_the_frame_format_and_is_silent():
    import av

    from affectlab.live.audio import silent_like

    samples = (np.random.default_rng(0).uniform(-0.5, 0.5, (1, 960 * 2)) * 32767).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="stereo")
    frame.sample_rate = 48000
    frame.pts = 1234
    out = silent_like(frame)
    assert (out.format.name, out.layout.name, out.sample_rate, out.pts) == ("s16", "stereo", 48000, 1234)
    assert out.to_ndarray().shape == samples.shape and not out.to_ndarray().any()
