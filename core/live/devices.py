"""Local audio input through sounddevice, probed safely.

``import sounddevice`` raises OSError when the PortAudio library is missing, and opening a
stream fails on a machine without a sound card; neither may crash the app. :func:`probe_audio`
returns an :class:`AudioDeviceStatus` whose ``message`` says in plain words what is missing and
what to do instead, and :class:`LocalMicrophone` reports failures the same way.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["AudioDeviceStatus", "LocalMicrophone", "probe_audio"]


@dataclass(frozen=True)
class AudioDeviceStatus:
    """available: sounddevice imported and at least one input device exists.

    devices: [{"index", "name", "channels", "sample_rate"}] input devices;
    default_input: index of the default input device or None; message: for people.
    """

    available: bool
    message: str
    devices: list[dict[str, Any]] = field(default_factory=list)
    default_input: int | None = None


def _import_sounddevice(importer: Callable[[], Any] | None = None) -> tuple[Any, str | None]:
    try:
        if importer is not None:
            return importer(), None
        import sounddevice
        return sounddevice, None
    except OSError as exc:  # PortAudio missing: sounddevice raises at import
        return None, (f"No local audio: the PortAudio library is not installed ({exc}). "
                      "Install it (e.g. `apt install libportaudio2`) for a local microphone, "
                      "or use the browser microphone or a WAV upload.")
    except ImportError as exc:
        return None, (f"No local audio: the sounddevice package is not installed ({exc}). "
                      "Use the browser microphone or a WAV upload.")
    except Exception as exc:  # noqa: BLE001 - any failure to load a native library
        return None, f"No local audio: sounddevice failed to load ({type(exc).__name__}: {exc})."


def probe_audio(importer: Callable[[], Any] | None = None) -> AudioDeviceStatus:
    """Look for local input devices; never raises.

    importer: returns the sounddevice module (tests pass a fake); default ``import sounddevice``.
    """
    sd, problem = _import_sounddevice(importer)
    if sd is None:
        return AudioDeviceStatus(False, problem or "No local audio.")
    try:
        raw = list(sd.query_devices())
    except Exception as exc:  # noqa: BLE001 - PortAudio errors come in several types
        return AudioDeviceStatus(False, f"No local audio: listing devices failed ({exc}).")
    devices = []
    for i, d in enumerate(raw):
        try:
            ch = int(d.get("max_input_channels", 0))
        except (AttributeError, TypeError, ValueError):
            continue
        if ch > 0:
            devices.append({"index": int(d.get("index", i)), "name": str(d.get("name", i)),
                            "channels": ch,
                            "sample_rate": float(d.get("default_samplerate", 0) or 0)})
    if not devices:
        return AudioDeviceStatus(False, "No local audio: no input device (microphone) found. "
                                        "Use the browser microphone or a WAV upload.")
    default = None
    try:
        dflt = sd.default.device
        idx = int(dflt[0] if isinstance(dflt, list | tuple) else dflt)
        default = idx if any(d["index"] == idx for d in devices) else None
    except Exception:  # noqa: BLE001 - no default device is fine
        default = None
    n = len(devices)
    return AudioDeviceStatus(True, f"{n} input device{'s' if n != 1 else ''} found.", devices,
                             default if default is not None else devices[0]["index"])


class LocalMicrophone:
    """A sounddevice input stream feeding ``on_chunk(samples (frames, channels) float32,
    sample_rate)`` from PortAudio's thread.

    ``start()`` returns (ok, message) instead of raising; ``stop()`` is idempotent.
    """

    def __init__(self, on_chunk: Callable[[np.ndarray, int], None], device: int | None = None,
                 sample_rate: int | None = None, channels: int = 1,
                 importer: Callable[[], Any] | None = None) -> None:
        if not callable(on_chunk):
            raise TypeError(f"on_chunk must be callable, got {type(on_chunk).__name__}")
        self.on_chunk = on_chunk
        self.device, self.sample_rate, self.channels = device, sample_rate, int(channels)
        self._importer = importer
        self._stream: Any = None
        self._lock = threading.Lock()
        self.last_error: str | None = None

    @property
    def running(self) -> bool:
        return self._stream is not None

    def start(self) -> tuple[bool, str]:
        with self._lock:
            if self._stream is not None:
                return True, "already running"
            sd, problem = _import_sounddevice(self._importer)
            if sd is None:
                return False, problem or "No local audio."
            try:
                rate = self.sample_rate or int(
                    sd.query_devices(self.device, "input")["default_samplerate"])

                def callback(indata, frames, time, status):  # PortAudio thread
                    try:
                        self.on_chunk(np.array(indata, dtype=np.float32), rate)
                    except Exception as exc:  # noqa: BLE001 - never kill the audio thread
                        self.last_error = f"{type(exc).__name__}: {exc}"

                stream = sd.InputStream(device=self.device, channels=self.channels,
                                        samplerate=rate, dtype="float32", callback=callback)
                stream.start()
            except Exception as exc:  # noqa: BLE001 - PortAudioError, ValueError, OSError...
                return False, f"Could not open the microphone: {exc}"
            self._stream = stream
            return True, f"recording at {rate} Hz"

    def stop(self) -> None:
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
                stream.close()
            except Exception:  # noqa: BLE001 - closing a dead stream must not raise
                pass
