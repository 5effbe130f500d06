"""The rater's side of the service: joining a campaign, resuming, rating, skipping, correcting.

- :func:`join_campaign` (invite token, name, resume code) → :class:`RaterSession`. The first
  join under a name creates the rater and gives a **resume code** (``session.resume_code``,
  shown once; only its hash is stored). Joining again under a taken name needs that code
  (:class:`~affectlab.annotate.access.ResumeCodeRequired` otherwise), so nobody rates in
  someone else's name. A new name that looks like a taken one (the same
  :func:`~affectlab.annotate.checks.name_skeleton`: "аlice" with a Cyrillic а next to "alice")
  is refused, so nobody appears to the owner under someone else's name either.
- :func:`resume_rater` (rater link token, ``session.link_token``) → the same rater again: what
  the rating page's address carries (``&r=<token>``), so a reload resumes without typing.

**Rate limits** (:mod:`affectlab.annotate.limits`, in this process's memory), asked for by
the caller: the rating page passes its client's address and the server's submit limit (the
CLI, ``affectlab bench`` and tests, which are no remote client, pass neither). One address
creates at most :data:`~affectlab.annotate.limits.JOIN_LIMIT` new names per invite link an
hour (resuming is not limited); a rater submits at most a human's pace (a token bucket per
rater, shared by all their sessions). A refused call raises
:class:`~affectlab.annotate.limits.RateLimited` and changes nothing: the item stays theirs.

A session reads and writes only its own ratings. Every call checks that the campaign is open
and the rater not revoked (:class:`~affectlab.annotate.access.AccessDenied`).

**Undo** (:meth:`RaterSession.correct_last`): a rater may correct the item they finished last.
The rating row takes the new value and the old one moves to ``rating_corrections`` in the same
transaction, so every value ever saved survives; soft labels use the current value.

**Undecodable media**: :meth:`RaterSession.next_item` decodes the picked item's media first
(:func:`affectlab.annotate.media.media_problem`); an item that fails is marked broken (served
to nobody, its open assignments released, not counted against the cap), recorded as an incident
for the owner, logged, and the next item is picked. ``ItemView.n_broken_skipped`` tells the page
how many were skipped that way, so it can say so without details.
"""

from __future__ import annotations

import hmac
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import DBAPIError, IntegrityError

from affectlab.annotate.access import (
    AccessDenied,
    RaterRevoked,
    ResumeCodeRequired,
    hash_resume_code,
    hash_token,
    new_resume_code,
    parse_rater_link_token,
    rater_link_token,
)
from affectlab.annotate.assign import OPEN_LEASE, CampaignRules, pick_next, release
from affectlab.annotate.checks import (
    DuplicateRatingError,
    check_name,
    check_time_spent,
    check_value,
    name_skeleton,
    normal_name,
)
from affectlab.annotate.limits import (
    JOIN_LIMIT,
    JoinLimiter,
    RateLimited,
    SubmitLimiter,
)
from affectlab.annotate.media import media_problem
from affectlab.annotate.store import (
    Assignment,
    Campaign,
    Incident,
    Item,
    Rater,
    Rating,
    RatingCorrection,
    Store,
    is_transient,
    utcnow,
)

__all__ = [
    "ItemUnavailable",
    "ItemView",
    "RaterProgress",
    "RateLimited",
    "RaterSession",
    "join_campaign",
    "resume_rater",
]

logger = logging.getLogger("affectlab.annotate")

MAX_DETAIL_CHARS = 4000      # an incident's detail (an error message, a traceback's last lines)
_MAX_PICKS = 1000            # broken items skipped in one next_item() before giving up
REVOKED = "your access to this campaign was revoked by its owner"
_ATTEMPTS = 5                # a transaction PostgreSQL rolled back as a deadlock victim reruns


def _retry_or_raise(exc: DBAPIError, attempt: int) -> None:
    """Return (so the caller reruns its transaction) for a transient error with attempts left,
    else raise it."""
    if not is_transient(exc) or attempt == _ATTEMPTS - 1:
        raise exc
    logger.info("transaction rerun after %s", type(exc.orig).__name__)


class ItemUnavailable(ValueError):
    """The item is no longer this rater's to rate: it waited past the lease and went to another
    rater, or its media cannot be shown. Call ``next_item()``."""


@dataclass(frozen=True)
class ItemView:
    """What the rating page shows: the item's id and media file, the scales still to rate.
    ``n_broken_skipped``: items found undecodable (and skipped for everyone) while picking it."""

    item_id: str
    media_path: Path
    modality: str
    scales: dict[str, dict[str, Any]]
    pending: tuple[str, ...]
    instructions: str
    n_broken_skipped: int = 0


@dataclass(frozen=True)
class RaterProgress:
    done: int          # items finished (all scales rated), gold included
    skipped: int
    gold_done: int
    remaining: int     # regular items this rater could still get for coverage (upper bound)


_UNAVAILABLE = {
    "expired": f"it waited more than {OPEN_LEASE.seconds // 60} minutes and went to another "
               "rater",
    "broken": "its media cannot be shown",
}


class RaterSession:
    """One rater in one campaign. Obtain it from :func:`join_campaign` or :func:`resume_rater`;
    it never exposes other raters' ratings or other campaigns.

    ``name``, ``campaign`` (its name), ``instructions``, ``link_token`` (the page's address),
    ``resume_code`` (the code, on the session of the first join only; else None).
    ``submit_limit``: the :class:`~affectlab.annotate.limits.SubmitLimiter` its submits spend
    from (keyed by rater, so every session of the rater shares one bucket), or None: none.

    Its methods run fixed Core statements (built once, see the module's ``_R_*``) on one
    connection per call: a submit is one lookup, one insert and one conditional update (plus a
    row lock on PostgreSQL); a next item is one status read, the pick and one insert and update,
    then a decode check of the media outside the transaction.
    """

    def __init__(self, store: Store, campaign: Campaign, rater_id: int, name: str, *,
                 link_token: str = "", resume_code: str | None = None,
                 submit_limit: SubmitLimiter | None = None, _key: object = None):
        if _key is not _JOIN_KEY:
            raise TypeError("use join_campaign(store, token, name) to get a RaterSession")
        self._store, self._campaign_id, self._rater_id = store, campaign.id, rater_id
        # fixed when the campaign was created: read once, not on every call
        self._rules = CampaignRules.of(campaign)
        self._scales = dict(campaign.scales)
        self._modality, self._instructions = campaign.modality, campaign.instructions
        self._media_root = Path(campaign.media_root)
        self.name, self.campaign = name, campaign.name
        self.instructions = campaign.instructions or ""
        self.link_token, self.resume_code = link_token, resume_code
        self._rng = random.Random()
        self._limit = submit_limit

    def __repr__(self) -> str:
        return f"RaterSession(name={self.name!r}, campaign={self.campaign!r})"

    # ------------------------------------------------------------------ access
    def _check_open(self, conn: Connection) -> None:
        row = conn.execute(_R_ACCESS, {"cid": self._campaign_id, "rid": self._rater_id}).first()
        _check_access(row)

    def _lookup(self, conn: Connection, item_id: str, scale: str) -> Row:
        """(active, revoked_at, item pk, assignment id, assignment status, existing value on
        ``scale``) for ``item_id``, after the access checks."""
        if not isinstance(item_id, str):
            raise TypeError(f"item_id must be a str, got {type(item_id).__name__}")
        row = conn.execute(_R_LOOKUP, {"cid": self._campaign_id, "key": item_id,
                                       "rid": self._rater_id, "scale": scale}).first()
        _check_access(row)
        if row.item_pk is None:
            raise ValueError(f"item_id {item_id!r} is not an item of this campaign")
        if row.assignment_id is None:
            raise ValueError(f"item_id {item_id!r} was not given to you; call next_item()")
        return row

    # ------------------------------------------------------------------ items
    def _view(self, conn: Connection, item: Row, resumed: bool) -> ItemView:
        rated: set[str] = set()
        if resumed:  # a new assignment has no ratings yet (the rater never saw the item)
            rated = set(conn.execute(_R_RATED, {"rid": self._rater_id,
                                                "iid": item.id}).scalars())
        return ItemView(item.item_key, self._media_root / item.media, self._modality,
                        dict(self._scales), tuple(s for s in self._scales if s not in rated),
                        self._instructions)

    def _pick(self) -> tuple[ItemView, int] | None:
        for attempt in range(_ATTEMPTS):
            try:
                with self._store.write_conn() as conn:
                    self._check_open(conn)
                    picked = pick_next(conn, self._rules, self._rater_id, self._rng)
                    return None if picked is None else (self._view(conn, *picked), picked[0].id)
            except IntegrityError:  # a concurrent call for this same rater won the unique slot
                continue
            except DBAPIError as exc:
                _retry_or_raise(exc, attempt)
        raise RuntimeError("could not assign an item (concurrent requests for this rater)")

    def next_item(self) -> ItemView | None:
        """The item to rate now (the unfinished one first), or None when nothing is left.
        Items whose media cannot be decoded are marked broken and passed over."""
        for n_broken in range(_MAX_PICKS):
            picked = self._pick()
            if picked is None:
                return None
            view, item_pk = picked
            problem = media_problem(view.media_path, self._modality)
            if problem is None:
                return replace(view, n_broken_skipped=n_broken) if n_broken else view
            self._mark_broken(item_pk, view.item_id, problem)
        raise RuntimeError(f"{_MAX_PICKS} items in a row could not be decoded")

    def _mark_broken(self, item_pk: int, item_key: str, reason: str) -> None:
        logger.warning("campaign %r: item %r cannot be shown and is skipped for everyone: %s",
                       self.campaign, item_key, reason)
        now = utcnow()
        with self._store.write_conn() as conn:
            # assignments first, then the item: the lock order of skip and expiry (no deadlock)
            n_open = conn.execute(_R_BREAK_OPEN, {"iid": item_pk, "now": now}).rowcount
            marked = conn.execute(_R_MARK_BROKEN, {"iid": item_pk, "why": reason[:MAX_DETAIL_CHARS],
                                                   "now": now}).rowcount
            release(conn, item_pk, n_open)
            if marked:  # first report only: a concurrent one found it too
                self._incident(conn, item_key, "media", reason)

    def _incident(self, conn: Connection, item_key: str | None, kind: str, detail: str) -> None:
        conn.execute(_R_INCIDENT, {"campaign_id": self._campaign_id, "rater_id": self._rater_id,
                                   "item_key": item_key, "kind": kind,
                                   "detail": str(detail)[:MAX_DETAIL_CHARS], "at": utcnow()})

    def report_broken(self, item_id: str, detail: str) -> None:
        """The page could not show ``item_id`` (given to you): mark it broken for everyone, as
        next_item() does for media that fail its decode check."""
        with self._store.read_conn() as conn:
            row = self._lookup(conn, item_id, "")
        self._mark_broken(row.item_pk, item_id, str(detail))

    def report_problem(self, item_id: str | None, detail: str) -> None:
        """Record an error the rating page ran into (for the owner's view; never shown to the
        rater). ``item_id``: the item on screen, if any."""
        with self._store.write_conn() as conn:
            self._check_open(conn)
            self._incident(conn, item_id if isinstance(item_id, str) else None, "page", detail)

    # ------------------------------------------------------------------ rating
    def submit(self, item_id: str, scale: str, value: Any, time_spent: float | None = None
               ) -> bool:
        """Store one rating in its own transaction. Returns True when stored, False when the
        same value was already stored (idempotent re-submit); raises
        :class:`DuplicateRatingError` for a different value, ValueError for a skipped item,
        :class:`ItemUnavailable` for one that went to another rater or broke meanwhile,
        :class:`RateLimited` (nothing stored) when the rater submits faster than a human."""
        time_spent = check_time_spent(time_spent)
        self._spend(1)
        return self._submit(item_id, scale, value, time_spent)

    def _spend(self, n_ratings: int) -> None:
        """Spend ``n_ratings`` of the submit limit (a whole item costs one token)."""
        if self._limit is not None:
            # the link token names this rater in this store (ids repeat across stores)
            self._limit.take(self.link_token or (self._campaign_id, self._rater_id),
                             n_ratings / max(1, len(self._scales)))

    def _submit(self, item_id: str, scale: str, value: Any, time_spent: float | None) -> bool:
        for attempt in range(_ATTEMPTS):
            try:
                return self._submit_once(item_id, scale, value, time_spent)
            except DBAPIError as exc:
                if isinstance(exc, IntegrityError):
                    raise
                _retry_or_raise(exc, attempt)
        raise RuntimeError(f"could not store the rating of {item_id!r} (database busy)")

    def _submit_once(self, item_id: str, scale: str, value: Any, time_spent: float | None
                     ) -> bool:
        try:
            with self._store.write_conn() as conn:
                row = self._lookup(conn, item_id, scale if isinstance(scale, str) else "")
                v = check_value(self._scales, scale, value)
                self._check_rateable(item_id, row.status)
                if row.existing is not None:
                    return self._same(row.existing, v, item_id, scale)
                if not self._store.is_sqlite:
                    # lock the assignment: an expiry or skip committed meanwhile shows here, and
                    # none can commit until this rating and its completion are in
                    status = conn.execute(_R_LOCK_ASSIGNMENT,
                                          {"aid": row.assignment_id}).scalar_one()
                    self._check_rateable(item_id, status)
                now = utcnow()
                conn.execute(_R_INSERT, {"campaign_id": self._campaign_id,
                                         "rater_id": self._rater_id, "item_id": row.item_pk,
                                         "scale": scale, "value": v, "created_at": now,
                                         "time_spent": time_spent})
                conn.execute(_R_FINISH, {"aid": row.assignment_id, "now": now,
                                         "rid": self._rater_id, "iid": row.item_pk,
                                         "n_scales": len(self._scales)})
            return True
        except IntegrityError:
            # another submit of the same rating committed first: decide as for a re-submit
            with self._store.read_conn() as conn:
                row = self._lookup(conn, item_id, scale)
            if row.existing is None:
                raise
            return self._same(row.existing, v, item_id, scale)

    @staticmethod
    def _check_rateable(item_id: str, status: str) -> None:
        if status == "skipped":
            raise ValueError(f"item_id {item_id!r} was skipped; it cannot be rated now")
        if status in _UNAVAILABLE:
            raise ItemUnavailable(f"item_id {item_id!r} is no longer yours to rate: "
                                  f"{_UNAVAILABLE[status]}; call next_item()")

    def submit_all(self, item_id: str, values: Mapping[str, Any],
                   time_spent: float | None = None) -> int:
        """Submit several scales of one item (one transaction each); returns how many were new.
        The submit limit is checked once for all of them (:class:`RateLimited`: none stored)."""
        if not isinstance(values, Mapping) or not values:
            raise ValueError("values must be a non-empty dict {scale: value}")
        time_spent = check_time_spent(time_spent)
        self._spend(len(values))
        return sum(self._submit(item_id, s, v, time_spent) for s, v in values.items())

    @staticmethod
    def _same(existing: float, v: float, item_id: str, scale: str) -> bool:
        if existing == v:
            return False
        raise DuplicateRatingError(f"you already rated item {item_id!r} on scale {scale!r} "
                                   f"({existing:g}); only the item you finished last can be "
                                   "corrected (correct_last)")

    def skip(self, item_id: str) -> None:
        """Skip an item given to you: it is not shown to you again. Ratings already given for
        some of its scales stay."""
        with self._store.write_conn() as conn:
            row = self._lookup(conn, item_id, "")
            # conditional: a double click or a concurrent expiry releases the slot only once
            if row.status == "open" and conn.execute(
                    _R_SKIP, {"aid": row.assignment_id, "now": utcnow()}).rowcount == 1:
                release(conn, row.item_pk)

    # ------------------------------------------------------------------ undo
    def last_done(self) -> tuple[ItemView, dict[str, float]] | None:
        """The item you finished last, with every scale pending, and your stored values
        {scale: value}; None before your first finished item."""
        with self._store.read_conn() as conn:
            self._check_open(conn)
            last = conn.execute(_R_LAST_DONE, {"rid": self._rater_id}).first()
            if last is None:
                return None
            values = {s: v for s, v in conn.execute(_R_MY_VALUES, {"rid": self._rater_id,
                                                                   "iid": last.id})}
        view = ItemView(last.item_key, self._media_root / last.media, self._modality,
                        dict(self._scales), tuple(self._scales), self._instructions)
        return view, values

    def correct_last(self, item_id: str, values: Mapping[str, Any],
                     time_spent: float | None = None) -> int:
        """Correct your ratings of the item you finished last (see the module doc); returns how
        many scales changed (0 when the values are the stored ones)."""
        if not isinstance(values, Mapping) or not values:
            raise ValueError("values must be a non-empty dict {scale: value}")
        checked = {s: check_value(self._scales, s, v) for s, v in values.items()}
        time_spent = check_time_spent(time_spent)
        with self._store.write_conn() as conn:
            self._check_open(conn)
            last = conn.execute(_R_LAST_DONE, {"rid": self._rater_id}).first()
            if last is None or last.item_key != item_id:
                raise ValueError(f"item_id {item_id!r} is not the item you finished last; only "
                                 "that one can be corrected")
            mine = {r.scale: r for r in conn.execute(_R_MINE, {"rid": self._rater_id,
                                                              "iid": last.id})}
            changed, now = 0, utcnow()
            for scale, v in checked.items():
                old = mine.get(scale)
                if old is None:
                    raise ValueError(f"you have no rating of item {item_id!r} on scale "
                                     f"{scale!r} to correct")
                # conditional on the old value: of two racing corrections one records it
                if v == old.value or conn.execute(_R_CORRECT, {
                        "rating_pk": old.id, "old_value": old.value, "new_value": v,
                        "now": now, "spent": time_spent}).rowcount != 1:
                    continue
                conn.execute(_R_KEEP_OLD, {"rating_id": old.id, "campaign_id": self._campaign_id,
                                           "value": old.value, "created_at": old.created_at,
                                           "time_spent": old.time_spent, "replaced_at": now})
                changed += 1
        return changed

    # ------------------------------------------------------------------ reading
    def progress(self) -> RaterProgress:
        params = {"cid": self._campaign_id, "rid": self._rater_id,
                  "n_per": self._rules.ratings_per_item}
        with self._store.read_conn() as conn:
            self._check_open(conn)
            rows = conn.execute(_R_STATUS, params).all()
            done = sum(n for s, _, n in rows if s == "done")
            skipped = sum(n for s, _, n in rows if s == "skipped")
            gold = sum(n for s, g, n in rows if s == "done" and g)
            remaining = conn.execute(_R_REMAINING, params).scalar_one()
        return RaterProgress(done=done, skipped=skipped, gold_done=gold, remaining=remaining)

    def my_ratings(self) -> pd.DataFrame:
        """This rater's own ratings: item_id, scale, value, timestamp, time_spent."""
        with self._store.read() as session:
            rows = session.execute(
                select(Item.item_key, Rating.scale, Rating.value, Rating.created_at,
                       Rating.time_spent)
                .join(Item, Item.id == Rating.item_id)
                .where(Rating.rater_id == self._rater_id).order_by(Rating.id)).all()
        return pd.DataFrame(rows, columns=["item_id", "scale", "value", "timestamp",
                                           "time_spent"])


def _check_access(row: Row | None) -> None:
    if row is None or not row.active:
        raise AccessDenied("this campaign is closed")
    if row.revoked_at is not None:
        raise RaterRevoked(REVOKED)


# The raters' statements, built once (bound parameters: cid campaign, rid rater, iid item pk).
_c, _i, _a, _r = Campaign.__table__, Item.__table__, Assignment.__table__, Rating.__table__
_rt = Rater.__table__
_R_ACCESS = (select(_c.c.active, _rt.c.revoked_at)
             .join(_rt, and_(_rt.c.campaign_id == _c.c.id, _rt.c.id == bindparam("rid")))
             .where(_c.c.id == bindparam("cid")))
_R_RATED = select(_r.c.scale).where(_r.c.rater_id == bindparam("rid"),
                                    _r.c.item_id == bindparam("iid"))
_R_EXISTING = (select(_r.c.value).where(_r.c.rater_id == bindparam("rid"),
                                        _r.c.item_id == _i.c.id,
                                        _r.c.scale == bindparam("scale"))
               .scalar_subquery())
_R_LOOKUP = (select(_c.c.active, _rt.c.revoked_at, _i.c.id.label("item_pk"),
                    _a.c.id.label("assignment_id"), _a.c.status, _R_EXISTING.label("existing"))
             .select_from(_c.join(_rt, and_(_rt.c.campaign_id == _c.c.id,
                                            _rt.c.id == bindparam("rid")))
                          .outerjoin(_i, and_(_i.c.campaign_id == _c.c.id,
                                              _i.c.item_key == bindparam("key")))
                          .outerjoin(_a, and_(_a.c.item_id == _i.c.id,
                                              _a.c.rater_id == bindparam("rid"))))
             .where(_c.c.id == bindparam("cid")))
_R_LOCK_ASSIGNMENT = (select(_a.c.status).where(_a.c.id == bindparam("aid"))
                      .with_for_update(key_share=True))
_R_INSERT = insert(_r)
# the assignment is done once every scale of the item is rated (counted in the same statement)
_R_FINISH = (update(_a).where(_a.c.id == bindparam("aid"), _a.c.status == "open",
                              select(func.count()).select_from(_r)
                              .where(_r.c.rater_id == bindparam("rid"),
                                     _r.c.item_id == bindparam("iid")).scalar_subquery()
                              >= bindparam("n_scales"))
             .values(status="done", finished_at=bindparam("now")))
_R_SKIP = (update(_a).where(_a.c.id == bindparam("aid"), _a.c.status == "open")
           .values(status="skipped", finished_at=bindparam("now")))
_R_BREAK_OPEN = (update(_a).where(_a.c.item_id == bindparam("iid"), _a.c.status == "open")
                 .values(status="broken", finished_at=bindparam("now")))
_R_MARK_BROKEN = (update(_i).where(_i.c.id == bindparam("iid"), _i.c.broken.is_(None))
                  .values(broken=bindparam("why"), broken_at=bindparam("now")))
_R_INCIDENT = insert(Incident.__table__)
_R_STATUS = (select(_a.c.status, _i.c.is_gold, func.count())
             .join(_i, _i.c.id == _a.c.item_id)
             .where(_a.c.rater_id == bindparam("rid"))
             .group_by(_a.c.status, _i.c.is_gold))
# regular usable items this rater has not seen whose live assignments (open or done, the n_live
# counter) are still below N
_R_REMAINING = (select(func.count()).select_from(_i)
                .where(_i.c.campaign_id == bindparam("cid"), _i.c.is_gold.is_(False),
                       _i.c.n_live < bindparam("n_per"), _i.c.broken.is_(None),
                       _i.c.id.not_in(select(_a.c.item_id)
                                      .where(_a.c.rater_id == bindparam("rid")))))
_R_LAST_DONE = (select(_i.c.id, _i.c.item_key, _i.c.media)
                .join(_a, _a.c.item_id == _i.c.id)
                .where(_a.c.rater_id == bindparam("rid"), _a.c.status == "done")
                .order_by(_a.c.finished_at.desc(), _a.c.id.desc()).limit(1))
_R_MY_VALUES = select(_r.c.scale, _r.c.value).where(_r.c.rater_id == bindparam("rid"),
                                                    _r.c.item_id == bindparam("iid"))
_R_MINE = (select(_r.c.id, _r.c.scale, _r.c.value, _r.c.created_at, _r.c.time_spent)
           .where(_r.c.rater_id == bindparam("rid"), _r.c.item_id == bindparam("iid")))
_R_CORRECT = (update(_r).where(_r.c.id == bindparam("rating_pk"),
                              _r.c.value == bindparam("old_value"))
              .values(value=bindparam("new_value"), created_at=bindparam("now"),
                      time_spent=bindparam("spent")))
_R_KEEP_OLD = insert(RatingCorrection.__table__)


_JOIN_KEY = object()


def join_campaign(store: Store, token: str, name: str, code: str | None = None, *,
                  client: str | None = None, join_limit: JoinLimiter | None = JOIN_LIMIT,
                  submit_limit: SubmitLimiter | None = None) -> RaterSession:
    """A rater joins the campaign of ``token`` (from the invite link) under ``name``.

    A new name creates the rater; the session's ``resume_code`` is the code to keep. A taken
    name needs its ``code`` (raises :class:`ResumeCodeRequired` without it or with a wrong one);
    a rater from before resume codes gets one at this join. A new name that looks like a taken
    one raises ValueError. Raises AccessDenied for an unknown token, a closed campaign or a
    revoked rater.

    Rate limits (the rating page passes both; in-process callers such as the CLI, the bench
    and tests are no client and pass neither): ``client``, the address of the browser asking,
    may create at most ``join_limit.max_new`` new names per invite link an hour
    (:class:`RateLimited`); ``submit_limit`` (e.g. :data:`~affectlab.annotate.limits.
    SUBMIT_LIMIT`, the server's) paces the session's submits (None: not paced)."""
    if not isinstance(token, str):
        raise AccessDenied("campaign token must be a string")
    name = check_name(name)
    digest = hash_token(token)
    code_hash = None if code is None or not str(code).strip() else hash_resume_code(code)
    limit = None if not client or join_limit is None else (join_limit, str(client)[:200])
    for _ in range(2):
        try:
            with store.write() as session:
                campaign = _open_campaign(session, digest)
                rater = _rater_named(session, campaign.id, name)
                rater, new_code = _admit(session, campaign, rater, name, code_hash, limit)
                rater_id = rater.id
            break
        except IntegrityError:  # the same name joined concurrently: the second pass finds it
            continue
    else:
        raise RuntimeError(f"could not join as {name!r}")
    return RaterSession(store, campaign, rater_id, name, _key=_JOIN_KEY, resume_code=new_code,
                        link_token=rater_link_token(store, campaign.id, rater_id),
                        submit_limit=submit_limit)


def _open_campaign(session, digest: str) -> Campaign:
    campaign = session.execute(select(Campaign).where(
        Campaign.token_hash == digest)).scalar_one_or_none()
    if campaign is None:
        raise AccessDenied("unknown campaign token: ask the campaign owner for a new invite link")
    if not campaign.active:
        raise AccessDenied(f"campaign {campaign.name!r} is closed")
    return campaign


def _rater_named(session, campaign_id: int, name: str) -> Rater | None:
    """The campaign's rater of this (normalised) name, or None for a new name; ValueError when
    a new name looks like a taken one. A name stored before names were normalised counts as
    its normalised form."""
    rater = session.execute(select(Rater).where(
        Rater.campaign_id == campaign_id, Rater.name == name)).scalar_one_or_none()
    if rater is not None:
        return rater
    skeleton = name_skeleton(name)
    for rater_id, taken in session.execute(select(Rater.id, Rater.name).where(
            Rater.campaign_id == campaign_id)):
        if normal_name(taken) == name:
            return session.get(Rater, rater_id)
        if name_skeleton(taken) == skeleton:
            raise ValueError(f"a rater named {taken!r} already exists; choose another name or "
                             "use your resume code")
    return None


def _admit(session, campaign: Campaign, rater: Rater | None, name: str,
           code_hash: str | None, limit: tuple[JoinLimiter, str] | None
           ) -> tuple[Rater, str | None]:
    """Create the rater (counted against ``limit``: (limiter, client)) or check its code;
    returns it with a newly issued resume code (None when the code given was checked)."""
    if rater is not None and rater.revoked_at is not None:
        raise RaterRevoked(REVOKED)
    if rater is not None and rater.code_hash is not None:
        if code_hash is None or not hmac.compare_digest(code_hash, rater.code_hash):
            raise ResumeCodeRequired(f"the name {name!r} is taken in this campaign: enter its "
                                     "resume code, or choose another name")
        return rater, None
    new_code = new_resume_code()
    if rater is None:
        if limit is not None:
            limit[0].take((campaign.token_hash, limit[1]))  # per invite link and client
        rater = Rater(campaign_id=campaign.id, name=name, code_hash=hash_resume_code(new_code))
        session.add(rater)
        session.flush()
    else:  # joined before resume codes existed: this join claims the name
        rater.code_hash = hash_resume_code(new_code)
    return rater, new_code


def resume_rater(store: Store, link_token: str, *,
                 submit_limit: SubmitLimiter | None = None) -> RaterSession:
    """The rater whose ``session.link_token`` this is (the page's ``&r=`` parameter). Raises
    AccessDenied for a malformed or forged token, a revoked rater or a closed campaign.
    ``submit_limit`` as for :func:`join_campaign` (the rater's bucket is the same)."""

    def campaign_of(rater_id: int) -> int | None:
        with store.read() as session:
            return session.execute(select(Rater.campaign_id).where(Rater.id == rater_id)
                                   ).scalar_one_or_none()

    rater_id = parse_rater_link_token(store, link_token, campaign_of)
    with store.read() as session:
        rater = session.get(Rater, rater_id)
        campaign = session.get(Campaign, rater.campaign_id)
    if rater.revoked_at is not None:
        raise RaterRevoked(REVOKED)
    if not campaign.active:
        raise AccessDenied(f"campaign {campaign.name!r} is closed")
    return RaterSession(store, campaign, rater.id, rater.name, _key=_JOIN_KEY,
                        link_token=str(link_token), submit_limit=submit_limit)
