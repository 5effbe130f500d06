"""Which item a rater sees next.

Rules, in order (:func:`pick_next`):

1. **Resume**: an item shown to the rater and not yet finished (status 'open') comes back first,
   so a rater who closes the tab continues where they stopped.
2. **Gold**: with ``gold_rate`` g > 0, a gold item (known answer) the rater has not seen is
   served whenever the rater's gold count is below g·(finished + 1), so gold makes up a fraction
   g of each rater's items. Gold items are outside the regular pool.
3. **Coverage**: among regular items the rater has not seen and that hold fewer than
   ``ratings_per_item`` (N) live assignments (finished, or open for less than
   :data:`OPEN_LEASE`), the one with the fewest, ties broken at random.
4. **Adaptive**: when every item has its N, items the rater has not seen with fewer than
   ``max_ratings`` open or finished assignments whose disagreement (:func:`affectlab.annotate.aggregate.
   item_disagreement`: normalised entropy for categories, normalised variance for Likert) is at
   least ``min_disagreement`` get extra ratings, the most disputed first.
5. Otherwise None: nothing left for this rater.

A skipped item is never shown to that rater again and does not count towards N. A broken item
(media that cannot be decoded) is shown to nobody.

**The cap under concurrency** (both backends): an item's ``n_live`` counts its open and done
assignments. A slot is claimed with one statement, ``UPDATE items SET n_live = n_live + 1
WHERE id = (SELECT id FROM items WHERE id = :item AND n_live < :cap FOR NO KEY UPDATE SKIP
LOCKED)`` (cap N for coverage, ``max_ratings`` for the adaptive rule), and the assignment is
inserted only when it changed a row. On PostgreSQL the sub-select row-locks the item and checks
the cap on its latest committed version, so two raters racing for the last slot cannot both get
it; SKIP LOCKED means a claim never waits for another (a wait could deadlock: a claim that lost
keeps its lock until commit), a locked item is passed over and, when every candidate was locked,
the pick re-reads its candidates after a short pause. NO KEY UPDATE leaves the key-share locks
of concurrent rating inserts alone. On SQLite writers are serialised anyway (FOR UPDATE is not
rendered). An open assignment past :data:`OPEN_LEASE` gives its slot up only when another
rater claims it: it is set to 'expired' (conditionally, so one claimer wins) in the same
transaction, and a late submit on it is refused (the service locks the assignment row before
completing it). Hence an item never holds more than ``max_ratings`` open-or-done assignments,
and never more than N unless the adaptive rule raised it.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from affectlab.annotate.aggregate import item_disagreement
from affectlab.annotate.store import Assignment, Campaign, Item, Rating, utcnow

__all__ = ["OPEN_LEASE", "CampaignRules", "pick_next", "release"]

# how often a pick re-reads its candidates after losing every claim to concurrent raters, and
# the pause before each re-read (seconds, growing with the round): a claim's lock is held for
# one short transaction
_CLAIM_ROUNDS = 50
_CLAIM_PAUSE_S = 0.002

# An open assignment older than this no longer reserves its item for coverage (rater left).
OPEN_LEASE = timedelta(minutes=15)

# Statements are built once with bound parameters: building a SQLAlchemy statement costs more
# than running it on SQLite, and a fixed statement hits the compiled-SQL cache every time.
_items, _asg, _rat = Item.__table__, Assignment.__table__, Rating.__table__
_ITEM_COLS = (_items.c.id, _items.c.item_key, _items.c.media)
_SEEN = select(_asg.c.item_id).where(_asg.c.rater_id == bindparam("rid"))

_usable = _items.c.broken.is_(None)
_OPEN = (select(*_ITEM_COLS).join(_asg, _asg.c.item_id == _items.c.id)
         .where(_asg.c.rater_id == bindparam("rid"), _asg.c.status == "open", _usable)
         .order_by(_asg.c.assigned_at, _asg.c.id).limit(1))
_GOLD_DONE = (select(_items.c.is_gold, func.count()).join(_asg, _asg.c.item_id == _items.c.id)
              .where(_asg.c.rater_id == bindparam("rid"), _asg.c.status == "done")
              .group_by(_items.c.is_gold))
_GOLD_UNSEEN = (select(*_ITEM_COLS)
                .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(True),
                       _usable, _items.c.id.not_in(_SEEN)).order_by(_items.c.id))
# fast path: the per-item counter (open or done assignments), served by ix_items_cover
_COVER = (select(*_ITEM_COLS, _items.c.n_live.label("n"))
          .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(False),
                 _items.c.n_live < bindparam("n_per"), _usable, _items.c.id.not_in(_SEEN))
          .order_by(_items.c.n_live).limit(64))
_live = or_(_asg.c.status == "done",
            and_(_asg.c.status == "open", _asg.c.assigned_at > bindparam("fresh")))
_LIVE_COUNTS = (select(_asg.c.item_id.label("item_id"), func.count().label("n"))
                .where(_asg.c.campaign_id == bindparam("cid"), _live)
                .group_by(_asg.c.item_id).subquery())
_n_live = func.coalesce(_LIVE_COUNTS.c.n, 0)
_COVER_LEASE = (select(*_ITEM_COLS, _n_live.label("n"))
                .outerjoin(_LIVE_COUNTS, _LIVE_COUNTS.c.item_id == _items.c.id)
                .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(False),
                       _usable, _items.c.id.not_in(_SEEN), _n_live < bindparam("n_per"))
                .order_by(_n_live).limit(64))
_DONE_COUNTS = (select(_asg.c.item_id.label("item_id"), func.count().label("n"))
                .where(_asg.c.campaign_id == bindparam("cid"), _asg.c.status == "done")
                .group_by(_asg.c.item_id).subquery())
_ADAPTIVE = (select(*_ITEM_COLS).join(_DONE_COUNTS, _DONE_COUNTS.c.item_id == _items.c.id)
             .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(False),
                    _usable, _items.c.id.not_in(_SEEN), _items.c.n_live < bindparam("cap"))
             .order_by(_items.c.id))
_ITEM_RATINGS = (select(_rat.c.item_id, _rat.c.scale, _rat.c.value)
                 .where(_rat.c.item_id.in_(bindparam("ids", expanding=True))))
_ASSIGN = insert(_asg)
_N_LIVE_UP = (update(_items).where(_items.c.id == bindparam("iid"))
              .values(n_live=_items.c.n_live + 1))
_N_LIVE_DOWN = (update(_items).where(_items.c.id == bindparam("iid"))
                .values(n_live=_items.c.n_live - bindparam("n", value=1)))
# claim one slot: changes a row only while the item is below the cap (see the module doc)
_CLAIMABLE = (select(_items.c.id).where(_items.c.id == bindparam("iid"),
                                        _items.c.n_live < bindparam("cap"), _usable)
              .with_for_update(skip_locked=True, key_share=True).scalar_subquery())
_CLAIM = (update(_items).where(_items.c.id == _CLAIMABLE)
          .values(n_live=_items.c.n_live + 1))
_STALE_OPEN = (select(_asg.c.id).where(_asg.c.item_id == bindparam("iid"),
                                       _asg.c.status == "open",
                                       _asg.c.assigned_at <= bindparam("stale"))
               .order_by(_asg.c.assigned_at, _asg.c.id).limit(1))
_EXPIRE = (update(_asg).where(_asg.c.id == bindparam("aid"), _asg.c.status == "open")
           .values(status="expired", finished_at=bindparam("now")))


@dataclass(frozen=True)
class CampaignRules:
    """The assignment settings of one campaign (fixed when it is created)."""

    id: int
    ratings_per_item: int
    max_ratings: int
    gold_rate: float
    min_disagreement: float
    scales: dict[str, Any]

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignRules:
        return cls(campaign.id, campaign.ratings_per_item, campaign.max_ratings,
                   campaign.gold_rate, campaign.min_disagreement, dict(campaign.scales))


def pick_next(conn: Connection, rules: CampaignRules, rater_id: int,
              rng: random.Random | None = None) -> tuple[Row, bool] | None:
    """The next item for ``rater_id`` (see the module doc) as (row with id, item_key, media;
    resumed), with its open assignment created on ``conn`` (the caller commits). ``resumed``
    is True for an unfinished item shown before. None when nothing is left."""
    rng = rng or random.Random()
    open_item = conn.execute(_OPEN, {"rid": rater_id}).first()
    if open_item is not None:
        return open_item, True

    for attempt in range(_CLAIM_ROUNDS):
        item, contended = _pick_new(conn, rules, rater_id, rng)
        if item is not None:
            conn.execute(_ASSIGN, {"campaign_id": rules.id, "rater_id": rater_id,
                                   "item_id": item.id, "status": "open",
                                   "assigned_at": utcnow()})
            return item, False
        if not contended:
            return None
        time.sleep(_CLAIM_PAUSE_S * (1 + attempt) * rng.uniform(0.5, 1.5))
    return None


def _pick_new(conn: Connection, rules: CampaignRules, rater_id: int, rng: random.Random
              ) -> tuple[Row | None, bool]:
    """An unseen item with its slot claimed, by rules 2–4, as (row, False); (None, True) when
    candidates existed but concurrent raters held or took every one; (None, False) when none
    is left."""
    if rules.gold_rate > 0:
        item = _pick_gold(conn, rules, rater_id, rng)
        if item is not None:  # gold goes to every rater: no cap
            conn.execute(_N_LIVE_UP, {"iid": item.id})
            return item, False
    item, contended = _pick_coverage(conn, rules, rater_id, rng)
    if item is None and not contended and rules.max_ratings > rules.ratings_per_item:
        item, contended = _pick_adaptive(conn, rules, rater_id)
    return item, contended


def release(conn: Connection, item_id: int, n: int = 1) -> None:
    """``n`` open assignments of ``item_id`` ended without a rating (skipped, expired, broken):
    they no longer count towards coverage."""
    if n:
        conn.execute(_N_LIVE_DOWN, {"iid": item_id, "n": n})


def _claim(conn: Connection, item_id: int, cap: int, stale=None) -> bool:
    """Take one of ``item_id``'s ``cap`` slots; with ``stale`` (a time), an open assignment
    older than it may be expired to free one. False when the item is full (or broken)."""
    if conn.execute(_CLAIM, {"iid": item_id, "cap": cap}).rowcount == 1:
        return True
    if stale is None:
        return False
    aid = conn.execute(_STALE_OPEN, {"iid": item_id, "stale": stale}).scalar()
    if aid is None or conn.execute(_EXPIRE, {"aid": aid, "now": utcnow()}).rowcount != 1:
        return False  # nothing stale left, or a concurrent claimer expired it first
    release(conn, item_id)
    return conn.execute(_CLAIM, {"iid": item_id, "cap": cap}).rowcount == 1


def _least_first(rows: list[Row], rng: random.Random) -> list[Row]:
    """Candidates by coverage, least first, in random order within one coverage level: a random
    pick among the least-covered spreads concurrent raters over different items."""
    shuffled = list(rows)
    rng.shuffle(shuffled)
    return sorted(shuffled, key=lambda r: r.n)


def _pick_gold(conn: Connection, rules: CampaignRules, rater_id: int, rng: random.Random
               ) -> Row | None:
    counts = {bool(g): n for g, n in conn.execute(_GOLD_DONE, {"rid": rater_id}).all()}
    n_gold, n_done = counts.get(True, 0), sum(counts.values())
    if n_gold >= rules.gold_rate * (n_done + 1):
        return None
    unseen = conn.execute(_GOLD_UNSEEN, {"cid": rules.id, "rid": rater_id}).all()
    return rng.choice(unseen) if unseen else None


def _pick_coverage(conn: Connection, rules: CampaignRules, rater_id: int, rng: random.Random
                   ) -> tuple[Row | None, bool]:
    params = {"cid": rules.id, "rid": rater_id, "n_per": rules.ratings_per_item}
    stale = None
    rows = conn.execute(_COVER, params).all()
    if not rows:
        # exact path: open assignments past the lease (raters who left) free their slot
        stale = utcnow() - OPEN_LEASE
        rows = conn.execute(_COVER_LEASE, {**params, "fresh": stale}).all()
    if not rows:
        return None, False
    for row in _least_first(rows, rng):
        if _claim(conn, row.id, rules.ratings_per_item, stale):
            return row, False
    return None, True


def _pick_adaptive(conn: Connection, rules: CampaignRules, rater_id: int
                   ) -> tuple[Row | None, bool]:
    rows = conn.execute(_ADAPTIVE, {"cid": rules.id, "rid": rater_id,
                                    "cap": rules.max_ratings}).all()
    if not rows:
        return None, False
    ids = [r.id for r in rows]
    ratings = conn.execute(_ITEM_RATINGS, {"ids": ids}).all()
    table = pd.DataFrame(ratings, columns=["item_id", "scale", "value"])
    score = item_disagreement(table, ids, rules.scales)
    tried = False
    for k in np.argsort(-score, kind="stable"):  # the most disputed first
        if score[k] < rules.min_disagreement:
            break
        if _claim(conn, rows[k].id, rules.max_ratings):
            return rows[k], False
        tried = True
    return None, tried
