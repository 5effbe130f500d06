"""The fake camera/microphone files (fast, no browser)."""

import wave

import numpy as np
from media import AUDIO_RATE, FPS, face_frames, happy_speech, read_y4m, write_wav16, write_y4m


def test_y4m_header_and_round_trip(tmp_path):
    frames = face_frames(4)
    assert frames.shape == (4, 480, 640, 3) and frames.dtype == np.uint8
    assert not np.array_equal(frames[0], frames[1])  # the face moves
    path = write_y4m(tmp_path / "cam.y4m", frames)
    data = path.read_bytes()
    assert data.startswith(f"YUV4MPEG2 W640 H480 F{FPS}:1 Ip A1:1 C420".encode())
    # header line + per frame: "FRAME\n" and Y (W·H) + U, V (W·H/4 each)
    header = data.index(b"\n") + 1
    assert len(data) == header + 4 * (6 + 640 * 480 * 3 // 2)
    back = read_y4m(path)
    # 4:2:0 chroma subsampling and rounding: close to the original, not identical
    err = np.abs(back.astype(int) - frames.astype(int))
    assert back.shape == frames.shape and np.median(err) <= 3


def test_y4m_rejects_odd_sizes(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="even"):
        write_y4m(tmp_path / "x.y4m", np.zeros((1, 5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="frames"):
        write_y4m(tmp_path / "x.y4m", np.zeros((5, 4, 3), np.uint8))


def test_astronaut_frame_reads_happy_through_the_live_processor():
    from affectlab.live.face import FaceFrameProcessor

    frame = face_frames(1)[0]
    result = FaceFrameProcessor().process(frame, color="rgb")
    assert result.ok and result.top == "happy"


def test_wav_is_16_bit_48k_mono(tmp_path):
    audio = happy_speech(seconds=1.5)
    assert audio.shape == (int(1.5 * AUDIO_RATE),) and np.abs(audio).max() > 0.01
    path = write_wav16(tmp_path / "mic.wav", audio)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, AUDIO_RATE)
        assert w.getnframes() == len(audio)
