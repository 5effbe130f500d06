"""Live: webcam or microphone in; the model's distribution, uncertainty and map position out."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from affectlab.app.signin import require_owner
from affectlab.engine.rundir import RunDir
from affectlab.explore.projection import run_projection
from affectlab.live.audio import AudioChunkProcessor, av_to_samples, silent_like
from affectlab.live.devices import LocalMicrophone, probe_audio
from affectlab.live.face import FaceFrameProcessor
from affectlab.live.holder import LatestResult
from affectlab.live.models import load_run_model, pretrained_face_model
from affectlab.paths import runs_dir

PRETRAINED = "pretrained mini_xception (FER2013)"
RTC_CONFIG = {"iceServers": []}  # localhost needs no STUN server; works offline
IMAGE_TYPES = ["png", "jpg", "jpeg", "bmp", "webp"]
AUDIO_TYPES = ["wav", "flac", "ogg"]


def _stream(key: str, media: str, unavailable: str, **callbacks) -> bool:
    """A streamlit-webrtc stream of ``media`` ("video" or "audio") through ``callbacks``;
    whether it is playing. The component must never take the page down: any failure becomes
    the ``unavailable`` message (``{}`` receives the reason)."""
    try:
        from streamlit_webrtc import WebRtcMode, webrtc_streamer

        ctx = webrtc_streamer(key=key, mode=WebRtcMode.SENDRECV, rtc_configuration=RTC_CONFIG,
                              media_stream_constraints={"video": media == "video",
                                                        "audio": media == "audio"},
                              async_processing=True, **callbacks)
        return bool(ctx.state.playing)
    except Exception as exc:  # noqa: BLE001
        st.warning(unavailable.format(exc))
        return False


@st.cache_resource(show_spinner="Loading the face model …")
def _face_processor(run_path: str) -> FaceFrameProcessor:
    """Shared by all sessions: the model is read-only and the processor is stateless."""
    if not run_path:
        return FaceFrameProcessor(pretrained_face_model())
    model = load_run_model(run_path)
    try:
        projection = run_projection(run_path)
    except FileNotFoundError:  # a run without embeddings: no map position
        projection = None
    return FaceFrameProcessor(model, projection)


@st.cache_resource(show_spinner="Loading the speech model …")
def _speech_model(run_path: str):
    return load_run_model(run_path)


@st.cache_resource(show_spinner=False)
def _run_map(run_path: str) -> np.ndarray | None:
    try:
        proj = run_projection(run_path)
        return proj.transform(RunDir(run_path).read_embeddings())
    except (FileNotFoundError, ValueError):
        return None


@st.cache_data(ttl=10, show_spinner=False)
def _runs_with_weights(modality: str, root: str) -> dict[str, str]:
    summaries = (r.summary() for r in RunDir.list(root, has_outputs=True))
    return {r.name: str(r.path) for r in summaries if r.modality == modality and r.has_weights}


def _bars(probs: np.ndarray, names: list[str], uncertainty: float) -> None:
    c1, c2 = st.columns([3, 1])
    c1.bar_chart(pd.Series(probs, index=pd.Index(names, name="class"), name="p"), height=220,
                 horizontal=True)
    c2.metric("top", names[int(np.argmax(probs))], f"{probs.max():.0%}", delta_color="off")
    c2.metric("uncertainty", f"{uncertainty:.2f}", help="normalised entropy: 0 certain, 1 uniform")


def _map(run_path: str, position: np.ndarray | None) -> None:
    xy = _run_map(run_path)
    if xy is None or position is None:
        return
    # SVG for small maps (no WebGL needed), WebGL beyond the Explore page's threshold
    trace_type = go.Scatter if len(xy) <= 5_000 else go.Scattergl
    fig = go.Figure([trace_type(x=xy[:, 0], y=xy[:, 1], mode="markers", name="test items",
                                marker={"size": 4, "color": "lightgray"}),
                     go.Scatter(x=[position[0]], y=[position[1]], mode="markers", name="now",
                                marker={"size": 14, "color": "crimson", "symbol": "x"})])
    fig.update_layout(height=260, margin={"l": 0, "r": 0, "t": 20, "b": 0}, showlegend=False)
    st.plotly_chart(fig, key="live_face_map")


def _face_result(result, run_path: str) -> None:
    if result is None:
        st.caption("Waiting for frames …")
    elif not result.ok:
        st.info(f"No face in the frame ({result.reason}).")
    else:
        if len(result.faces) > 1:
            st.caption(f"{len(result.faces)} faces in the frame, each boxed and labelled; "
                       "the panel shows the largest.")
        _bars(result.probs, result.class_names, result.uncertainty)
        if run_path:
            _map(run_path, result.position)


def _face_tab() -> None:
    runs = _runs_with_weights("face", str(runs_dir()))
    choice = st.selectbox("Face model", [PRETRAINED, *runs], key="live_face_model",
                          help="The shipped FER2013 model works before anything is trained.")
    run_path = runs.get(choice, "")
    try:
        processor = _face_processor(run_path)
    except (FileNotFoundError, ValueError) as exc:  # a damaged or refused checkpoint, say
        st.error(f"Cannot load {choice}: {exc}")
        return
    holder = st.session_state.setdefault("live_face_holder", LatestResult())
    # the stream's state (where the faces were): one tracker per session and model
    tracker = st.session_state.setdefault(f"live_face_tracker_{run_path}",
                                          processor.new_tracker())

    def on_frame(frame):  # webrtc worker thread: no st.* calls here
        import av

        result = processor.process(frame.to_ndarray(format="bgr24"), color="bgr",
                                   tracker=tracker)
        holder.put(result)
        return av.VideoFrame.from_ndarray(result.annotated, format="bgr24")

    playing = _stream("live-face", "video", "Webcam streaming is unavailable here ({}); use an "
                      "image upload.", video_frame_callback=on_frame)

    def readout() -> None:
        result, _, _ = holder.get()
        _face_result(result, run_path)

    if playing:
        st.fragment(run_every=0.25)(readout)()
    else:
        st.caption("Press **START** to stream your webcam (the browser asks for permission). "
                   "No camera, or permission denied? Upload a photo instead.")
    # always rendered, so a change of stream state never removes it (and its file) mid-upload
    st.markdown("**Image file**")
    upload = st.file_uploader("Image with a face", type=IMAGE_TYPES, key="live_image",
                              help="A photo (every face is found) or an already-cropped face "
                              "(at most 128 px and about square, e.g. a FER2013 image), used "
                              "whole.")
    if upload is not None:
        try:
            result = processor.process_image_bytes(upload.getvalue())
        except ValueError as exc:
            st.error(str(exc))
            return
        st.image(result.annotated, width=320)
        st.caption(result.reason)  # already a face crop, or which detector found it where
        _face_result(result, run_path)


def _mic_processor(run_path: str) -> AudioChunkProcessor:
    """One ring buffer per session and run (the model is shared)."""
    key = f"live_audio_{run_path}"
    if key not in st.session_state:
        st.session_state[key] = AudioChunkProcessor(_speech_model(run_path))
    return st.session_state[key]


def _voice_tab() -> None:
    runs = _runs_with_weights("speech", str(runs_dir()))
    status = probe_audio()
    if not runs:
        st.info("No trained speech run yet: train a speech model (e.g. convpool on "
                "speech-default) on the **Train** page, then come back. There is no shipped "
                "pretrained speech model.")
        st.caption(f"Local audio: {status.message}")
        return
    choice = st.selectbox("Speech model", list(runs), key="live_speech_model")
    try:
        processor = _mic_processor(runs[choice])
    except (FileNotFoundError, ValueError) as exc:
        st.error(f"Cannot load {choice}: {exc}")
        return

    def on_audio(frame):  # webrtc worker thread
        samples = av_to_samples(frame.to_ndarray(), len(frame.layout.channels),
                                frame.format.is_planar)
        processor.push(samples, frame.sample_rate)
        return silent_like(frame)  # no echo of the user's voice

    st.markdown("**Browser microphone**")
    playing = _stream("live-mic", "audio", "Browser microphone streaming is unavailable here ({}).",
                      audio_frame_callback=on_audio)

    st.markdown("**Local microphone**")
    mic: LocalMicrophone | None = st.session_state.get("live_local_mic")
    if not status.available:
        st.warning(status.message)
    else:
        names = {d["index"]: d["name"] for d in status.devices}
        device = st.selectbox("Input device", list(names), format_func=names.get,
                              index=list(names).index(status.default_input), key="live_device")
        c1, c2 = st.columns(2)
        if c1.button("Start local microphone", disabled=mic is not None and mic.running):
            mic = LocalMicrophone(processor.push, device=device)
            ok, msg = mic.start()
            (st.success if ok else st.error)(msg)
            st.session_state["live_local_mic"] = mic if ok else None
        if c2.button("Stop", disabled=mic is None):
            mic.stop()
            st.session_state["live_local_mic"] = None
            mic = None

    def readout() -> None:
        result = processor.predict()
        if result is None:
            st.caption(f"Listening … {processor.buffered_seconds:.1f} s buffered")
        else:
            _bars(result.probs, result.class_names, result.uncertainty)
            st.caption(f"last {result.seconds:.1f} s of audio")

    if playing or (mic is not None and mic.running):
        st.fragment(run_every=0.5)(readout)()

    st.markdown("**Audio file**")
    upload = st.file_uploader("Speech recording", type=AUDIO_TYPES, key="live_audio_file")
    if upload is not None:
        try:
            result = processor.predict_file_bytes(upload.getvalue())
        except ValueError as exc:
            st.error(str(exc))
            return
        st.audio(upload.getvalue())
        _bars(result.probs, result.class_names, result.uncertainty)


require_owner()
st.title("Live")
face_tab, voice_tab = st.tabs(["Face", "Voice"])
with face_tab:
    _face_tab()
with voice_tab:
    _voice_tab()
