"""Rate limits of the rater side: new names per client address per campaign
(:class:`JoinLimiter`) and ratings per rater (:class:`SubmitLimiter`, a token bucket).

Both keep their counts in this process's memory, not in the rating store: they hold for one
app server process (what ``affectlab app`` runs), whichever store (SQLite or PostgreSQL) is
behind it, and start empty when the server restarts. Several server processes behind one
balancer would each allow the limit.

The limits are asked for by the caller: the rating page (app/views/annotate.py) passes its
client's address and :data:`SUBMIT_LIMIT` to :func:`~affectlab.annotate.rater.join_campaign`
and :func:`~affectlab.annotate.rater.resume_rater`; callers in this process that are no remote
client (the CLI, ``affectlab bench``, tests) pass neither and are not limited.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Hashable

__all__ = ["JOIN_LIMIT", "SUBMIT_LIMIT", "JoinLimiter", "RateLimited", "SubmitLimiter"]

MAX_KEYS = 100_000   # tracked keys (addresses, raters) before idle ones are forgotten


class RateLimited(Exception):  # noqa: N818  (a refusal, like AccessDenied)
    """Refused for now: too many requests. ``retry_after``: seconds until one is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, float(retry_after))


def _forget_idle(table: dict, idle_since: Callable[[object], float], horizon: float) -> None:
    """Bound memory: past :data:`MAX_KEYS` keys, drop those idle since before ``horizon``,
    then the oldest half if that was not enough."""
    if len(table) <= MAX_KEYS:
        return
    for key in [k for k, v in table.items() if idle_since(v) < horizon]:
        del table[key]
    if len(table) > MAX_KEYS:
        for key in sorted(table, key=lambda k: idle_since(table[k]))[:len(table) // 2]:
            del table[key]


class JoinLimiter:
    """At most ``max_new`` new rater identities per client address per campaign within
    ``window_s`` seconds (a sliding window). Resuming an identity is never counted."""

    def __init__(self, max_new: int = 5, window_s: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        if max_new < 1 or window_s <= 0:
            raise ValueError(f"max_new must be ≥ 1 and window_s > 0, got {max_new}, {window_s}")
        self.max_new, self.window_s, self._clock = int(max_new), float(window_s), clock
        self._lock = threading.Lock()
        self._joins: dict[Hashable, deque[float]] = {}

    def take(self, key: Hashable) -> None:
        """Count one new identity for ``key``; :class:`RateLimited` when it is at the limit."""
        now = self._clock()
        with self._lock:
            times = self._joins.setdefault(key, deque())
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.max_new:
                wait = times[0] + self.window_s - now
                raise RateLimited(f"too many new names from your address in this campaign; "
                                  f"try again in {max(1, round(wait / 60))} min, or resume "
                                  "with your name and resume code", wait)
            times.append(now)
            _forget_idle(self._joins, lambda t: t[-1] if t else 0.0, now - self.window_s)


class SubmitLimiter:
    """A token bucket per rater: ``burst`` items at once, then ``per_second`` items a second.

    A rating of one scale costs ``1 / n_scales`` (an item of three scales costs one token,
    whether its scales come in one submit_all or one by one), so the pace is in items
    whatever the campaign's scales. The defaults are a fast human's: the rating page's
    keyboard flow (a digit per scale, Enter) waits for the server's next item at each
    Enter, a few hundred ms, and a human who looks at the face or hears the clip needs a
    second or more per item; ten in a burst lets a quick run of easy items through.
    """

    def __init__(self, burst: float = 10.0, per_second: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError(f"burst must be ≥ 1 and per_second > 0, got {burst}, {per_second}")
        self.burst, self.per_second, self._clock = float(burst), float(per_second), clock
        self._lock = threading.Lock()
        self._buckets: dict[Hashable, tuple[float, float]] = {}  # key → (tokens, at)

    def take(self, key: Hashable, cost: float = 1.0) -> None:
        """Spend ``cost`` tokens of ``key``'s bucket; :class:`RateLimited` (nothing spent)
        when it holds fewer."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + max(0.0, now - at) * self.per_second)
            if tokens + 1e-9 < cost:
                self._buckets[key] = (tokens, now)
                raise RateLimited("slow down: you are rating faster than anyone can look; "
                                  "wait a moment, then submit again",
                                  (cost - tokens) / self.per_second)
            self._buckets[key] = (tokens - cost, now)
            _forget_idle(self._buckets, lambda v: v[1], now - self.burst / self.per_second)


JOIN_LIMIT = JoinLimiter()      # the app server's: every rating page of this process
SUBMIT_LIMIT = SubmitLimiter()
