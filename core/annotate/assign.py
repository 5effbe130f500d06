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
   ``max_ratings`` finished ratings whose disagreement (:func:`core.annotate.aggregate.
   item_disagreement`: normalised entropy for categories, normalised variance for Likert) is at
   least ``min_disagreement`` get extra ratings, the most disputed first.
5. Otherwise None: nothing left for this rater.

A skipped item is never shown to that rater again and does not count towards N.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pandas as pd
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from core.annotate.aggregate import item_disagreement
from core.annotate.store import Assignment, Campaign, Item, Rating, utcnow

__all__ = ["OPEN_LEASE", "pick_next", "release"]

# An open assignment older than this no longer reserves its item for coverage (rater left).
OPEN_LEASE = timedelta(minutes=15)


def _live_counts(campaign_id: int):
    """Subquery: item id → number of live assignments (done, or open within the lease)."""
    fresh = utcnow() - OPEN_LEASE
    live = or_(Assignment.status == "done",
               and_(Assignment.status == "open", Assignment.assigned_at > fresh))
    return (select(Assignment.item_id.label("item_id"), func.count().label("n"))
            .where(Assignment.campaign_id == campaign_id, live)
            .group_by(Assignment.item_id).subquery())


def _seen(rater_id: int):
    return select(Assignment.item_id).where(Assignment.rater_id == rater_id)


def pick_next(session: Session, campaign: Campaign, rater_id: int,
              rng: random.Random | None = None) -> Item | None:
    """The next item for ``rater_id`` in ``campaign`` (see the module doc), with its open
    assignment created in ``session`` (the caller commits). None when nothing is left."""
    rng = rng or random.Random()
    open_item = session.execute(
        select(Item).join(Assignment, Assignment.item_id == Item.id)
        .where(Assignment.rater_id == rater_id, Assignment.status == "open")
        .order_by(Assignment.assigned_at, Assignment.id).limit(1)).scalar_one_or_none()
    if open_item is not None:
        return open_item

    item = None
    if campaign.gold_rate > 0:
        item = _pick_gold(session, campaign, rater_id, rng)
    if item is None:
        item = _pick_coverage(session, campaign, rater_id, rng)
    if item is None and campaign.max_ratings > campaign.ratings_per_item:
        item = _pick_adaptive(session, campaign, rater_id)
    if item is not None:
        session.add(Assignment(campaign_id=campaign.id, rater_id=rater_id, item_id=item.id,
                               status="open"))
        session.execute(update(Item).where(Item.id == item.id)
                        .values(n_live=Item.n_live + 1))
    return item


def release(session: Session, item_id: int) -> None:
    """An assignment of ``item_id`` was skipped: it no longer counts towards coverage."""
    session.execute(update(Item).where(Item.id == item_id).values(n_live=Item.n_live - 1))


def _pick_gold(session: Session, campaign: Campaign, rater_id: int, rng: random.Random
               ) -> Item | None:
    rows = session.execute(
        select(Item.is_gold, func.count())
        .join(Assignment, Assignment.item_id == Item.id)
        .where(Assignment.rater_id == rater_id, Assignment.status == "done")
        .group_by(Item.is_gold)).all()
    counts = {bool(g): n for g, n in rows}
    n_gold, n_done = counts.get(True, 0), sum(counts.values())
    if n_gold >= campaign.gold_rate * (n_done + 1):
        return None
    unseen = session.execute(
        select(Item.id).where(Item.campaign_id == campaign.id, Item.is_gold.is_(True),
                              Item.id.not_in(_seen(rater_id)))).scalars().all()
    return session.get(Item, rng.choice(unseen)) if unseen else None


def _pick_coverage(session: Session, campaign: Campaign, rater_id: int, rng: random.Random
                   ) -> Item | None:
    # fast path: the per-item counter (open or done assignments), served by an index
    rows = session.execute(
        select(Item.id, Item.n_live.label("n"))
        .where(Item.campaign_id == campaign.id, Item.is_gold.is_(False),
               Item.n_live < campaign.ratings_per_item, Item.id.not_in(_seen(rater_id)))
        .order_by(Item.n_live).limit(64)).all()
    if not rows:
        # exact path: open assignments past the lease (raters who left) free their slot
        rows = _coverage_with_lease(session, campaign, rater_id)
    if not rows:
        return None
    least = rows[0].n
    # a random pick among the least-covered spreads concurrent raters over different items
    return session.get(Item, rng.choice([r.id for r in rows if r.n == least]))


def _coverage_with_lease(session: Session, campaign: Campaign, rater_id: int) -> list:
    counts = _live_counts(campaign.id)
    n = func.coalesce(counts.c.n, 0)
    rows = session.execute(
        select(Item.id, n.label("n"))
        .outerjoin(counts, counts.c.item_id == Item.id)
        .where(Item.campaign_id == campaign.id, Item.is_gold.is_(False),
               Item.id.not_in(_seen(rater_id)), n < campaign.ratings_per_item)
        .order_by(n).limit(64)).all()
    return rows


def _pick_adaptive(session: Session, campaign: Campaign, rater_id: int) -> Item | None:
    done = (select(Assignment.item_id.label("item_id"), func.count().label("n"))
            .where(Assignment.campaign_id == campaign.id, Assignment.status == "done")
            .group_by(Assignment.item_id).subquery())
    ids = session.execute(
        select(Item.id).join(done, done.c.item_id == Item.id)
        .where(Item.campaign_id == campaign.id, Item.is_gold.is_(False),
               Item.id.not_in(_seen(rater_id)), done.c.n < campaign.max_ratings)
    ).scalars().all()
    if not ids:
        return None
    rows = session.execute(select(Rating.item_id, Rating.scale, Rating.value)
                           .where(Rating.item_id.in_(ids))).all()
    table = pd.DataFrame(rows, columns=["item_id", "scale", "value"])
    score = item_disagreement(table, ids, campaign.scales)
    best = int(score.argmax())
    if score[best] < campaign.min_disagreement:
        return None
    return session.get(Item, ids[best])
