"""A thread-safe "latest value" box between a media thread and the page that displays it.

streamlit-webrtc calls frame callbacks on its own threads, where ``st.session_state`` is not
available; the callback ``put``s its result here and a polling fragment ``get``s it.
"""

from __future__ import annotations

import threading
import time
from typing import Any

__all__ = ["LatestResult"]


class LatestResult:
    """Holds the most recent value, when it was set and how many were set (all under a lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: Any = None
        self._time: float | None = None
        self._count = 0

    def put(self, value: Any) -> None:
        with self._lock:
            self._value, self._time = value, time.monotonic()
            self._count += 1

    def get(self) -> tuple[Any, float | None, int]:
        """(value, age in seconds or None when never set, number of values put)."""
        with self._lock:
            age = None if self._time is None else time.monotonic() - self._time
            return self._value, age, self._count

    def clear(self) -> None:
        with self._lock:
            self._value, self._time, self._count = None, None, 0
