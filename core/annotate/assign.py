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
   ``max_ratings`` finished ratings whose disagreement (:func:`affectlab.annotate.aggregate.
   item_disagreement`: normalised entropy for categories, normalised variance for Likert) is at
   least ``min_disagreement`` get extra ratings, the most disputed first.
5. Otherwise None: nothing left for this rater.

A skipped item is never shown to that rater again and does not count towards N.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from affectlab.annotate.aggregate import item_disagreement
from affectlab.annotate.store import Assignment, Campaign, Item, Rating, utcnow

__all__ = ["OPEN_LEASE", "CampaignRules", "pick_next", "release"]

# An open assignment older than this no longer reserves its item for coverage (rater left).
OPEN_LEASE = timedelta(minutes=15)

# Statements are built once with bound parameters: building a SQLAlchemy statement costs more
# than running it on SQLite, and a fixed statement hits the compiled-SQL cache every time.
_items, _asg, _rat = Item.__table__, Assignment.__table__, Rating.__table__
_ITEM_COLS = (_items.c.id, _items.c.item_key, _items.c.media)
_SEEN = select(_asg.c.item_id).where(_asg.c.rater_id == bindparam("rid"))

_OPEN = (select(*_ITEM_COLS).join(_asg, _asg.c.item_id == _items.c.id)
         .where(_asg.c.rater_id == bindparam("rid"), _asg.c.status == "open")
         .order_by(_asg.c.assigned_at, _asg.c.id).limit(1))
_GOLD_DONE = (select(_items.c.is_gold, func.count()).join(_asg, _asg.c.item_id == _items.c.id)
              .where(_asg.c.rater_id == bindparam("rid"), _asg.c.status == "done")
              .group_by(_items.c.is_gold))
_GOLD_UNSEEN = (select(*_ITEM_COLS)
                .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(True),
                       _items.c.id.not_in(_SEEN)).order_by(_items.c.id))
# fast path: the per-item counter (open or done assignments), served by ix_items_cover
_COVER = (select(*_ITEM_COLS, _items.c.n_live.label("n"))
          .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(False),
                 _items.c.n_live < bindparam("n_per"), _items.c.id.not_in(_SEEN))
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
                       _items.c.id.not_in(_SEEN), _n_live < bindparam("n_per"))
                .order_by(_n_live).limit(64))
_DONE_COUNTS = (select(_asg.c.item_id.label("item_id"), func.count().label("n"))
                .where(_asg.c.campaign_id == bindparam("cid"), _asg.c.status == "done")
                .group_by(_asg.c.item_id).subquery())
_ADAPTIVE = (select(*_ITEM_COLS).join(_DONE_COUNTS, _DONE_COUNTS.c.item_id == _items.c.id)
             .where(_items.c.campaign_id == bindparam("cid"), _items.c.is_gold.is_(False),
                    _items.c.id.not_in(_SEEN), _DONE_COUNTS.c.n < bindparam("cap"))
             .order_by(_items.c.id))
_ITEM_RATINGS = (select(_rat.c.item_id, _rat.c.scale, _rat.c.value)
                 .where(_rat.c.item_id.in_(bindparam("ids", expanding=True))))
_ASSIGN = insert(_asg)
_N_LIVE_UP = (update(_items).where(_items.c.id == bindparam("iid"))
              .values(n_live=_items.c.n_live + 1))
_N_LIVE_DOWN = (update(_items).where(_items.c.id == bindparam("iid"))
                .values(n_live=_items.c.n_live - 1))


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

    item = None
    if rules.gold_rate > 0:
        item = _pick_gold(conn, rules, rater_id, rng)
    if item is None:
        item = _pick_coverage(conn, rules, rater_id, rng)
    if item is None and rules.max_ratings > rules.ratings_per_item:
        item = _pick_adaptive(conn, rules, rater_id)
    if item is None:
        return None
    conn.execute(_ASSIGN, {"campaign_id": rules.id, "rater_id": rater_id, "item_id": item.id,
                           "status": "open", "assigned_at": utcnow()})
    conn.execute(_N_LIVE_UP, {"iid": item.id})
    return item, False


def release(conn: Connection, item_id: int) -> None:
    """An assignment of ``item_id`` was skipped: it no longer counts towards coverage."""
    conn.execute(_N_LIVE_DOWN, {"iid": item_id})


def _pick_gold(conn: Connection, rules: CampaignRules, rater_id: int, rng: random.Random
               ) -> Row | None:
    counts = {bool(g): n for g, n in conn.execute(_GOLD_DONE, {"rid": rater_id}).all()}
    n_gold, n_done = counts.get(True, 0), sum(counts.values())
    if n_gold >= rules.gold_rate * (n_done + 1):
        return None
    unseen = conn.execute(_GOLD_UNSEEN, {"cid": rules.id, "rid": rater_id}).all()
    return rng.choice(unseen) if unseen else None


def _pick_coverage(conn: Connection, rules: CampaignRules, rater_id: int, rng: random.Random
                   ) -> Row | None:
    params = {"cid": rules.id, "rid": rater_id, "n_per": rules.ratings_per_item}
    rows = conn.execute(_COVER, params).all()
    if not rows:
        # exact path: open assignments past the lease (raters who left) free their slot
        rows = conn.execute(_COVER_LEASE, {**params, "fresh": utcnow() - OPEN_LEASE}).all()
    if not rows:
        return None
    least = rows[0].n
    # a random pick among the least-covered spreads concurrent raters over different items
    return rng.choice([r for r in rows if r.n == least])


def _pick_adaptive(conn: Connection, rules: CampaignRules, rater_id: int) -> Row | None:
    rows = conn.execute(_ADAPTIVE, {"cid": rules.id, "rid": rater_id,
                                    "cap": rules.max_ratings}).all()
    if not rows:
        return None
    ids = [r.id for r in rows]
    ratings = conn.execute(_ITEM_RATINGS, {"ids": ids}).all()
    table = pd.DataFrame(ratings, columns=["item_id", "scale", "value"])
    score = item_disagreement(table, ids, rules.scales)
    best = int(score.argmax())
    if score[best] < rules.min_disagreement:
        return None
    return rows[best]
