"""Small files must not exhaust memory: audio headers (sample rate, length, channels) and image
sizes are checked before anything is decoded, and ``affectlab predict`` reports every file of a
batch, good or bad, as one JSON record. The hostile files are made here (a few KB each)."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from affectlab.features.audio import AudioLoadError, decode_audio, load_wav
from affectlab.features.face import ImageLoadError, load_image

REPO = Path(__file__).resolve().parents[1]


def low_rate_wav(path: Path, rate: int, n_bytes: int = 400_000) -> Path:
    """A valid 16-bit mono WAV of ``n_bytes`` of samples whose header says ``rate`` Hz: at 1 Hz,
    today's resampling to 16 kHz asks for 24 GiB."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.25 * np.sin(np.arange(n_bytes // 2) / 3.0), rate, subtype="PCM_16")
    return path


def speech_wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, 0.2 * np.sin(2 * np.pi * 180 * t), rate, subtype="PCM_16")
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + \
        struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path: Path, width: int = 20000, height: int = 20000) -> Path:
    """A valid 1-bit grayscale PNG of width × height black pixels: ~50 KB on disk for
    20000×20000, 400 MB once decoded to 8-bit (today: DecompressionBombError, uncaught)."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    comp = zlib.compressobj(9)
    idat = b"".join(comp.compress(row) for _ in range(height)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat)
                     + _chunk(b"IEND", b""))
    return path


def face_png(path: Path) -> Path:
    from skimage import data as skimage_data

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(skimage_data.astronaut())).save(path)
    return path


# ------------------------------------------------------------------------------ audio
def test_hostile_wavs_are_small(tmp_path):
    assert low_rate_wav(tmp_path / "1hz.wav", 1).stat().st_size < 410_000
    assert bomb_png(tmp_path / "bomb.png").stat().st_size < 100_000


@pytest.mark.parametrize("rate", [1, 8, 3999, 384_001])
def test_sample_rate_outside_the_range_is_refused_before_decoding(tmp_path, rate):
    path = low_rate_wav(tmp_path / f"{rate}hz.wav", rate, n_bytes=2000)
    with pytest.raises(AudioLoadError, match=rf"{rate}hz.wav: sample rate {rate} Hz is outside "
                                             r"4000..384000 Hz"):
        load_wav(path)


def test_one_hz_wav_cannot_exhaust_memory(tmp_path):
    """Decoded in a child process capped at 3 GiB of address space: today's code asks for 24 GiB
    (MemoryError, or the kernel's OOM killer without the cap); now it is refused from the
    header and the child exits cleanly."""
    path = low_rate_wav(tmp_path / "1hz.wav", 1)
    code = textwrap.dedent(f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        from affectlab.features.audio import AudioLoadError, load_wav
        try:
            load_wav({str(path)!r})
        except AudioLoadError as exc:
            print("refused:", exc)
            sys.exit(0)
        sys.exit(3)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env={"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                            "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr[-2000:])
    assert "sample rate 1 Hz is outside" in proc.stdout


def test_clip_longer_than_the_limit_is_refused(tmp_path, monkeypatch):
    from affectlab.features.audio import max_audio_seconds

    path = speech_wav(tmp_path / "long.wav", seconds=3.0)
    assert load_wav(path)[1].num_samples == 48_000
    monkeypatch.setenv("AFFECTLAB_MAX_AUDIO_SECONDS", "2.5")
    assert max_audio_seconds() == 2.5
    with pytest.raises(AudioLoadError, match=r"3 s of audio is longer than the 2.5 s allowed"):
        load_wav(path)
    with pytest.raises(AudioLoadError, match="longer"):
        decode_audio(path.read_bytes(), source="upload")
    assert load_wav(path, max_seconds=10)[1].num_samples == 48_000  # a caller's own limit
    for bad in ("0", "-1", "nan", "inf", "five"):
        monkeypatch.setenv("AFFECTLAB_MAX_AUDIO_SECONDS", bad)
        with pytest.raises(ValueError, match="AFFECTLAB_MAX_AUDIO_SECONDS"):
            max_audio_seconds()
    monkeypatch.delenv("AFFECTLAB_MAX_AUDIO_SECONDS")
    assert max_audio_seconds() == 300.0


def test_header_bounds():
    from affectlab.features.audio import check_audio_header

    check_audio_header(4000, 4000 * 300, 1, "x")      # the edges are allowed
    check_audio_header(384_000, 10, 32, "x")
    with pytest.raises(AudioLoadError, match="channels"):
        check_audio_header(16000, 10, 33, "x")
    with pytest.raises(AudioLoadError, match="longer"):
        check_audio_header(16000, 16000 * 301, 1, "x")
    # the samples decoded: 300 s at 48 kHz stereo (or 96 kHz mono) is the most
    check_audio_header(48_000, 48_000 * 300, 2, "x")
    check_audio_header(96_000, 96_000 * 300, 1, "x")
    check_audio_header(384_000, 384_000 * 5, 8, "x")  # a short multichannel take
    with pytest.raises(AudioLoadError, match="more than the 28,800,000 allowed"):
        check_audio_header(96_000, 96_000 * 200, 2, "x")
    with pytest.raises(AudioLoadError, match=r"299 s × 8 channels at 384000 Hz"):
        check_audio_header(384_000, 384_000 * 299, 8, "x")


def test_a_small_file_that_decodes_to_gigabytes_is_refused_before_decoding(tmp_path):
    """A FLAC of silence at 384 kHz × 8 channels: ~1 MB a 5 min file, ~0.9 G samples decoded
    (5 GB of memory before the bound). Here 60 s of it (0.2 MB), with the length limit."""
    import soundfile as sf

    from affectlab.features.audio import check_audio_header

    path = tmp_path / "bomb.flac"
    with sf.SoundFile(path, "w", 384_000, 8, format="FLAC", subtype="PCM_16") as f:
        block = np.zeros((384_000, 8), np.int16)
        for _ in range(60):
            f.write(block)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(AudioLoadError, match="samples, more than"):
        load_wav(path, max_seconds=60)
    with pytest.raises(AudioLoadError, match="samples, more than"):
        decode_audio(path.read_bytes(), source="upload", max_seconds=60)
    check_audio_header(384_000, 384_000 * 60, 8, "x", max_seconds=60 * 32)  # a raised limit


def test_live_upload_refuses_a_low_rate_wav(tmp_path):
    from affectlab.live.audio import AudioChunkProcessor

    data = low_rate_wav(tmp_path / "8hz.wav", 8, n_bytes=4000).read_bytes()
    processor = AudioChunkProcessor.__new__(AudioChunkProcessor)  # the bytes are checked first
    with pytest.raises(AudioLoadError, match="8 Hz"):
        processor.predict_file_bytes(data)


def test_importer_reports_an_out_of_bounds_wav_as_a_bad_file(tmp_path):
    import fixtures_importers as fx

    from affectlab.data.importers import import_corpus

    src = fx.write_ravdess(tmp_path / "src")
    victim = sorted(src.rglob("*.wav"))[0]
    low_rate_wav(victim, 8, n_bytes=4000)
    report = import_corpus("ravdess", src, tmp_path / "out", skip_bad=True)
    assert [r.reason for r in report.skipped] == [
        "sample rate 8 Hz is outside 4000..384000 Hz; not decoded"]


# ------------------------------------------------------------------------------ images
def test_bomb_png_is_a_load_error_not_a_crash(tmp_path):
    path = bomb_png(tmp_path / "bomb.png")
    with pytest.raises(ImageLoadError, match="bomb.png: refused, too many pixels"):
        load_image(path)


def test_image_over_the_pixel_limit_is_refused_from_its_header(tmp_path):
    from affectlab.features.face import MAX_IMAGE_PIXELS

    side = int(MAX_IMAGE_PIXELS ** 0.5) + 10  # over our limit, under Pillow's own
    path = bomb_png(tmp_path / "big.png", side, side)
    with pytest.raises(ImageLoadError, match=rf"refused, {side}×{side} pixels is more than"):
        load_image(path)
    ok = bomb_png(tmp_path / "ok.png", 640, 480)
    assert load_image(ok).shape == (480, 640)


def test_live_image_upload_refuses_a_bomb(tmp_path):
    from affectlab.live.face import FaceFrameProcessor

    data = bomb_png(tmp_path / "bomb.png").read_bytes()
    processor = FaceFrameProcessor.__new__(FaceFrameProcessor)  # decoding comes first
    with pytest.raises(ImageLoadError, match="uploaded image: refused"):
        processor.process_image_bytes(data)


def test_importer_reports_a_bomb_image_as_a_bad_file(tmp_path):
    import fixtures_importers as fx

    from affectlab.data.importers import import_corpus

    src = fx.write_folder_tree(tmp_path / "src")
    victim = sorted(src.rglob("*.png"))[0]
    bomb_png(victim)
    report = import_corpus("folder", src, tmp_path / "out", skip_bad=True)
    assert len(report.skipped) == 1 and "too many pixels" in report.skipped[0].reason


# ------------------------------------------------------------------------------ predict
def test_predict_reports_every_file_of_a_batch(tmp_path):
    """good.png, bomb.png, 1hz.wav, good.wav: four JSON records (today: none at all, the bomb
    raises out of the loop); the bad ones carry an error, the exit status is 1."""
    from typer.testing import CliRunner

    from affectlab.cli import app

    files = [face_png(tmp_path / "good.png"), bomb_png(tmp_path / "bomb.png"),
             low_rate_wav(tmp_path / "1hz.wav", 1), speech_wav(tmp_path / "good.wav")]
    result = CliRunner().invoke(app, ["predict", "--model", "mini_xception",
                                      *map(str, files)])
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [Path(r["file"]).name for r in records] == [f.name for f in files]
    assert records[0]["predicted"] == "happy" and "error" not in records[0]
    assert "too many pixels" in records[1]["error"]
    assert all("error" in r for r in records[2:])  # speech files, and the model is for faces
    assert result.exit_code == 1


def test_speech_predictor_refuses_the_bad_wav_and_predicts_the_rest(tmp_path):
    from affectlab import models
    from affectlab.engine.inference import Predictor
    from affectlab.methods.base import Method

    names = ["neutral", "happy", "sad", "angry"]
    predictor = Predictor(Method(models.create("convpool", num_classes=4), None,
                                 method_name="untrained"), names, "speech")
    paths = [speech_wav(tmp_path / "a.wav"), low_rate_wav(tmp_path / "1hz.wav", 1, n_bytes=2000),
             speech_wav(tmp_path / "b.wav", rate=44100)]
    results = predictor.predict_files(paths)
    assert results[0].error is None and sum(results[0].distribution.values()) == pytest.approx(1)
    assert "sample rate 1 Hz is outside" in results[1].error
    assert results[2].error is None


def test_decode_reads_no_more_than_the_header_promised():
    buf = io.BytesIO()
    sf.write(buf, np.zeros(1600, dtype=np.float32), 16000, format="WAV", subtype="PCM_16")
    wave_, info = decode_audio(buf.getvalue())
    assert len(wave_) == 1600 and info.duration_s == pytest.approx(0.1)
