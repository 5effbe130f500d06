"""Load test of the rating store: many raters submitting at once (``affectlab bench`` uses it).

:func:`run_load_test` creates a throw-away campaign over synthetic items (tiny PNGs in a
temporary directory: every served item passes the decode check) in the database at ``db_url``,
lets ``raters`` threads each rate up to ``ratings_each`` items through the same
:class:`~affectlab.annotate.rater.RaterSession` API the page uses (next_item → submit),
re-submits every tenth rating to exercise idempotency, and then compares what the raters were
told was stored with what the database holds, and counts the items holding more finished
ratings than the cap (``max_ratings``; N without the adaptive rule).

:func:`time_page_clicks` times what the rating page's server does per click (the
:class:`~affectlab.pages.annotate_flow.RatingFlow` methods its callbacks call) for one rater.
"""

from __future__ import annotations

import io
import math
import os
import random
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sqlalchemy import func, select

from affectlab.annotate.access import configured_admin_password, ensure_admin_password
from affectlab.annotate.service import OwnerSession, join_campaign, open_owner
from affectlab.annotate.store import Assignment, Store
from affectlab.data.contract import DatasetDir
from affectlab.pages.annotate_flow import RatingFlow

__all__ = ["ClickTimes", "LoadTestReport", "finished_per_item", "run_load_test",
           "time_page_clicks"]


@dataclass(frozen=True)
class LoadTestReport:
    """lost: acknowledged ratings missing from the store; duplicated: (rater, item, scale)
    stored more than once; extra: stored ratings nobody was told about; over_cap: items with
    more finished ratings than ``cap`` (max_ratings), max_finished: the most any item holds;
    latencies in ms of one submit followed by the next next_item (what a rater waits for after
    clicking)."""

    backend: str
    raters: int
    ratings_each: int
    acknowledged: int
    stored: int
    lost: int
    duplicated: int
    extra: int
    errors: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    wall_s: float
    ratings_per_s: float
    first_error: str = ""
    cap: int = 0
    over_cap: int = 0
    max_finished: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def _synthetic_dataset(root: Path, n_items: int) -> DatasetDir:
    """``n_items`` items sharing one 8×8 PNG (hard links, else copies) under ``root``."""
    ids = [f"load{i:06d}" for i in range(n_items)]
    (root / "media").mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.new("L", (8, 8), color=128).save(buf, format="PNG")
    first = root / "media" / "shared.png"
    first.write_bytes(buf.getvalue())
    for i in ids:
        try:
            os.link(first, root / "media" / f"{i}.png")
        except OSError:
            (root / "media" / f"{i}.png").write_bytes(buf.getvalue())
    items = pd.DataFrame({"item_id": ids, "media": [f"media/{i}.png" for i in ids],
                          "modality": "face", "split": "train", "domain": "load"})
    meta = {"name": "loadtest", "modality": "face",
            "label_set": {"scale": "category", "names": ["a", "b", "c", "d"], "ordinal": False},
            "scales": {"category": {"type": "nominal", "names": ["a", "b", "c", "d"]}}}
    ratings = pd.DataFrame(columns=["item_id", "rater_id", "scale", "value"])
    return DatasetDir(root=root, items=items, ratings=ratings, meta=meta)


def finished_per_item(store: Store, campaign_id: int) -> pd.Series:
    """Finished (done) assignments per item pk of one campaign, counted in the database."""
    with store.read() as session:
        rows = session.execute(select(Assignment.item_id, func.count())
                               .where(Assignment.campaign_id == campaign_id,
                                      Assignment.status == "done")
                               .group_by(Assignment.item_id)).all()
    return pd.Series({i: n for i, n in rows}, dtype=np.int64)


def _owner(store: Store, password: str | None) -> OwnerSession:
    if password is None:
        password = ensure_admin_password(store) or configured_admin_password()
    if password is None:
        raise RuntimeError("the load test needs the admin password: set "
                           "$AFFECTLAB_ADMIN_PASSWORD for a store whose password was generated")
    return open_owner(store, password)


def _campaign_name(kind: str) -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{random.Random().randrange(10**6)}"


def run_load_test(db_url: str | None = None, raters: int = 50, ratings_each: int = 200, *,
                  ratings_per_item: int = 5, max_ratings: int | None = None,
                  min_disagreement: float = 0.3, n_items: int | None = None, seed: int = 0,
                  password: str | None = None) -> LoadTestReport:
    """Run the load test against ``db_url`` (default: the configured store) and report.

    ``password``: the admin password (default: the configured one, or one generated now for a
    store that has none). By default the campaign gets enough items for every rater to find
    ``ratings_each`` unseen ones while each item collects ``ratings_per_item`` ratings; a
    smaller ``n_items`` makes raters run out and fight over the last slots (the cap test).
    ``max_ratings`` > N turns the adaptive rule on. Threads share one engine (connection
    pool), as the app's sessions do.
    """
    for name, v in (("raters", raters), ("ratings_each", ratings_each),
                    ("ratings_per_item", ratings_per_item), ("n_items", n_items or 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if n_items is None:
        n_items = max(ratings_each + 1,
                      math.ceil(raters * ratings_each / ratings_per_item) + raters)
    store = Store(db_url)
    owner = _owner(store, password)
    with tempfile.TemporaryDirectory(prefix="affectlab-loadtest-") as tmp:
        invite = owner.create_campaign(_campaign_name("loadtest"),
                                       _synthetic_dataset(Path(tmp), n_items),
                                       ratings_per_item=ratings_per_item,
                                       max_ratings=max_ratings,
                                       min_disagreement=min_disagreement)
        acked, latencies, errors, wall = _run_raters(store, invite.token, raters, ratings_each,
                                                     seed)
    stored = owner.ratings(invite.campaign_id)
    keys = list(zip(stored["rater_id"], stored["item_id"], stored["scale"], strict=True))
    stored_values = {(r, i, s): v for (r, i, s), v in zip(keys, stored["value"], strict=True)}
    want = {(f"load-rater-{k:03d}", i, s): v for k in range(raters) for i, s, v in acked[k]}
    finished = finished_per_item(store, invite.campaign_id)
    cap = max_ratings or ratings_per_item
    lat = np.concatenate([np.asarray(x) for x in latencies]) if any(latencies) else np.zeros(1)
    store.dispose()
    return LoadTestReport(
        backend=store.engine.dialect.name, raters=raters, ratings_each=ratings_each,
        acknowledged=len(want), stored=len(keys),
        lost=sum(1 for key, v in want.items() if stored_values.get(key) != v),
        duplicated=len(keys) - len(set(keys)),
        extra=sum(1 for key in set(keys) if key not in want),
        errors=len(errors), p50_ms=float(np.percentile(lat, 50)),
        p95_ms=float(np.percentile(lat, 95)), max_ms=float(lat.max()), wall_s=wall,
        ratings_per_s=len(want) / wall if wall > 0 else float("nan"),
        first_error=repr(errors[0])[:500] if errors else "", cap=cap,
        over_cap=int((finished > cap).sum()),
        max_finished=int(finished.max()) if len(finished) else 0)


def _run_raters(store: Store, token: str, raters: int, ratings_each: int, seed: int):
    """``raters`` threads rating at once: (acknowledged (item, scale, value) per rater,
    latencies in ms per rater, errors, wall seconds)."""
    acked: list[list[tuple[str, str, float]]] = [[] for _ in range(raters)]
    latencies: list[list[float]] = [[] for _ in range(raters)]
    errors: list[BaseException] = []
    start_gate = threading.Barrier(raters)

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        try:
            session = join_campaign(store, token, f"load-rater-{k:03d}")
            start_gate.wait()
            item = session.next_item()
            for j in range(ratings_each):
                if item is None:
                    break
                value = rng.randrange(4)
                t0 = time.perf_counter()
                session.submit(item.item_id, "category", value, time_spent=0.5)
                acked[k].append((item.item_id, "category", float(value)))
                if j % 10 == 0:  # an impatient double click: must not store twice
                    session.submit(item.item_id, "category", value)
                item = session.next_item()
                latencies[k].append((time.perf_counter() - t0) * 1000)
        except BaseException as exc:  # reported, not raised: the report counts it
            errors.append(exc)
            start_gate.abort()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work, args=(k,)) for k in range(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return acked, latencies, errors, time.perf_counter() - t0


@dataclass(frozen=True)
class ClickTimes:
    """Server time per click of the rating page, in ms: ``all`` (every click: value picks,
    submits), ``submit`` (the submit clicks: writes, next item with its decode check,
    progress), ``pick`` (value buttons)."""

    clicks: int
    all_p50_ms: float
    submit_p50_ms: float
    submit_p95_ms: float
    pick_p50_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def time_page_clicks(db_url: str | None = None, n_items: int = 100, *,
                     password: str | None = None) -> ClickTimes:
    """One rater rates ``n_items`` items on two scales through :class:`RatingFlow` (the page's
    callbacks), timing each click on the server side."""
    if isinstance(n_items, bool) or not isinstance(n_items, int) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer, got {n_items!r}")
    store = Store(db_url)
    owner = _owner(store, password)
    picks, submits = [], []
    with tempfile.TemporaryDirectory(prefix="affectlab-clicks-") as tmp:
        ds = _synthetic_dataset(Path(tmp), n_items)
        ds.meta["scales"]["valence"] = {"type": "likert", "low": 1, "high": 5}
        invite = owner.create_campaign(_campaign_name("clicks"), ds, ratings_per_item=1)
        flow = RatingFlow(join_campaign(store, invite.token, "clicker"))
        flow.start()
        while flow.item is not None:
            for scale, value in (("category", 1.0), ("valence", 4.0)):
                t0 = time.perf_counter()
                flow.choose(scale, value)
                picks.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            flow.submit()
            submits.append((time.perf_counter() - t0) * 1000)
    store.dispose()
    return ClickTimes(clicks=len(picks) + len(submits),
                      all_p50_ms=float(np.median(picks + submits)),
                      submit_p50_ms=float(np.median(submits)),
                      submit_p95_ms=float(np.percentile(submits, 95)),
                      pick_p50_ms=float(np.median(picks)))
