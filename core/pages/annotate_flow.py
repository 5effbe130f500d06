"""The rating page's state for one rater, without Streamlit: what is on screen, what was picked,
what a click does. The page (``app/views/annotate.py``) keeps one :class:`RatingFlow` per
browser session, calls its methods from widget callbacks and lays out its fields; ``affectlab
bench --what annotate`` times the same methods (server time per click).

A click costs at most one service call chain: a pick none (it only records the choice); Submit
the rating writes, the next item (with its decode check) and the rater's progress; Skip the
skip, the next item and progress; Undo one read (:meth:`RaterSession.last_done`).

**Undo** (one level): after a submit, :meth:`undo` brings the item just finished back with its
stored values chosen; Submit then records a correction (:meth:`RaterSession.correct_last`: the
old values are kept in the store) and returns to the item that was on screen; Skip there
cancels the correction. Undo is offered until the next submit or skip.

A submit refused by the rater's submit limit (:class:`~affectlab.annotate.rater.RateLimited`)
keeps the item and its picks on screen with :data:`SLOW_DOWN_NOTICE`.

Messages for the rater are generic (:data:`BROKEN_NOTICE`, :data:`TAKEN_NOTICE`): details of
an undecodable file go to the owner (incidents) and the server log, never to the rater.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from affectlab.annotate.access import AccessDenied
from affectlab.annotate.checks import DuplicateRatingError
from affectlab.annotate.rater import (
    ItemUnavailable,
    ItemView,
    RateLimited,
    RaterProgress,
    RaterSession,
)
from affectlab.pages.annotate_view import elapsed_seconds

__all__ = ["BROKEN_NOTICE", "CLOSED_NOTICE", "SLOW_DOWN_NOTICE", "TAKEN_NOTICE", "Notice",
           "RatingFlow"]

BROKEN_NOTICE = ("An item could not be shown, so it was skipped (for everyone); the campaign "
                 "owner has been told. Here is the next one.")
TAKEN_NOTICE = ("That item went to another rater while this page was idle; here is the next "
                "one. Your earlier ratings are saved.")
CLOSED_NOTICE = "This campaign is closed, or your access to it has ended."
SLOW_DOWN_NOTICE = ("Slow down: that was faster than anyone can rate. Nothing was lost; "
                    "submit again in a moment.")
CORRECTING_NOTICE = ("Correcting your last item: change a value and submit, or press Skip to "
                     "go back without changes.")


@dataclass(frozen=True)
class Notice:
    """One message for the rater: level "info", "warning" or "error", and its text."""

    level: str
    text: str


class RatingFlow:
    """One rater's rating page: ``item`` on screen (None: nothing left), ``picks`` {scale:
    value} chosen for it, ``progress``, ``notice`` (the message to show once), ``closed``
    (access ended: show :data:`CLOSED_NOTICE`, no buttons), ``correcting`` (the item on screen
    is the last finished one, see the module doc), ``can_undo``."""

    def __init__(self, rater: RaterSession, clock: Callable[[], float] = time.time):
        self.rater = rater
        self.item: ItemView | None = None
        self.picks: dict[str, float] = {}
        self.progress: RaterProgress | None = None
        self.notice: Notice | None = None
        self.closed = False
        self.correcting = False
        self.can_undo = False
        self._clock = clock
        self._shown_at: float | None = None

    # ------------------------------------------------------------------ state
    @property
    def active_scale(self) -> str | None:
        """The first scale of the item on screen still without a pick (digit keys go there)."""
        if self.item is None:
            return None
        return next((s for s in self.item.pending if s not in self.picks), None)

    @property
    def ready(self) -> bool:
        return self.item is not None and all(s in self.picks for s in self.item.pending)

    def take_notice(self) -> Notice | None:
        """The pending message, cleared (each is shown once)."""
        notice, self.notice = self.notice, None
        return notice

    # ------------------------------------------------------------------ clicks
    def start(self) -> None:
        """Load the item to rate (the unfinished one first) and the progress."""
        self._guarded(self._advance)

    def choose(self, scale: str, value: float) -> None:
        """A value button: remember the pick (no database call)."""
        if self.item is not None and scale in self.item.pending:
            self.picks = {**self.picks, scale: float(value)}

    def submit(self) -> None:
        """Submit (or, while correcting, correct) the item on screen, then show the next."""
        item = self.item
        if self.closed or item is None:
            return
        missing = [s for s in item.pending if s not in self.picks]
        if missing:
            self.notice = Notice("warning", f"Choose a value for: {', '.join(missing)}")
            return
        spent = self._elapsed()
        values = {s: self.picks[s] for s in item.pending}

        def run() -> None:
            try:
                if self.correcting:
                    changed = self.rater.correct_last(item.item_id, values, time_spent=spent)
                    self.notice = Notice("info", "Corrected." if changed else "No change.")
                else:
                    self.rater.submit_all(item.item_id, values, time_spent=spent)
                    self.can_undo = True
            except RateLimited:  # nothing stored: the item and its picks stay on screen
                self.notice = Notice("warning", SLOW_DOWN_NOTICE)
                return
            except ItemUnavailable:
                self.can_undo, self.notice = False, Notice("warning", TAKEN_NOTICE)
            except (ValueError, TypeError, DuplicateRatingError) as exc:
                self.notice = Notice("error", f"Not saved: {exc}")
                return
            self.correcting = False
            self._advance()

        self._guarded(run)

    def skip(self) -> None:
        """Skip the item on screen (while correcting: go back without changes)."""
        item = self.item
        if self.closed or item is None:
            return

        def run() -> None:
            if self.correcting:
                self.correcting = False
            else:
                self.rater.skip(item.item_id)
                self.can_undo = False
            self._advance()

        self._guarded(run)

    def undo(self) -> None:
        """Bring the item finished last back, its stored values chosen (see the module doc)."""
        if self.closed or self.correcting or not self.can_undo:
            return

        def run() -> None:
            last = self.rater.last_done()
            if last is None:
                self.can_undo = False
                return
            self.item, stored = last
            self.picks = dict(stored)
            self.correcting, self._shown_at = True, self._clock()
            self.notice = Notice("info", CORRECTING_NOTICE)

        self._guarded(run)

    def media_failed(self, detail: str) -> None:
        """The page could not show the item's media: mark it broken, show the next item."""
        item = self.item
        if self.closed or item is None or self.correcting:
            return

        def run() -> None:
            self.rater.report_broken(item.item_id, detail)
            self.notice = Notice("warning", BROKEN_NOTICE)
            self._advance()

        self._guarded(run)

    # ------------------------------------------------------------------ helpers
    def _advance(self) -> None:
        self.item = self.rater.next_item()
        self.picks, self._shown_at = {}, self._clock()
        if self.item is not None and self.item.n_broken_skipped:
            self.notice = Notice("warning", BROKEN_NOTICE)
        self.progress = self.rater.progress()

    def _elapsed(self) -> float | None:
        return elapsed_seconds(self._shown_at, self._clock())

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except AccessDenied:
            self.closed, self.item, self.picks = True, None, {}
            self.correcting = self.can_undo = False
            self.notice = Notice("error", CLOSED_NOTICE)
