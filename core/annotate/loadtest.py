"""Load test of the rating store: many raters submitting at once (``affectlab bench`` uses it).

:func:`run_load_test` creates a throw-away campaign over synthetic items (no media needed) in the
database at ``db_url``, lets ``raters`` threads each rate ``ratings_each`` items through the same
:class:`~affectlab.annotate.service.RaterSession` API the page uses (next_item → submit), re-submits
every tenth rating to exercise idempotency, and then compares what the raters were told was
stored with what the database holds.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from affectlab.annotate.access import configured_admin_password, ensure_admin_password
from affectlab.annotate.service import join_campaign, open_owner
from affectlab.annotate.store import Store
from affectlab.data.contract import DatasetDir

__all__ = ["LoadTestReport", "run_load_test"]


@dataclass(frozen=True)
class LoadTestReport:
    """lost: acknowledged ratings missing from the store; duplicated: (rater, item, scale)
    stored more than once; extra: stored ratings nobody was told about; latencies in ms of one
    submit followed by the next next_item (what a rater waits for after clicking)."""

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

    def as_dict(self) -> dict:
        return asdict(self)


def _synthetic_dataset(n_items: int) -> DatasetDir:
    ids = [f"load{i:06d}" for i in range(n_items)]
    items = pd.DataFrame({"item_id": ids, "media": [f"media/{i}.png" for i in ids],
                          "modality": "face", "split": "train", "domain": "load"})
    meta = {"name": "loadtest", "modality": "face",
            "label_set": {"scale": "category", "names": ["a", "b", "c", "d"], "ordinal": False},
            "scales": {"category": {"type": "nominal", "names": ["a", "b", "c", "d"]}}}
    ratings = pd.DataFrame(columns=["item_id", "rater_id", "scale", "value"])
    return DatasetDir(root=Path("/nonexistent-loadtest"), items=items, ratings=ratings,
                      meta=meta)


def run_load_test(db_url: str | None = None, raters: int = 50, ratings_each: int = 200, *,
                  ratings_per_item: int = 5, seed: int = 0, password: str | None = None
                  ) -> LoadTestReport:
    """Run the load test against ``db_url`` (default: the configured store) and report.

    ``password``: the admin password (default: the configured one, or one generated now for a
    store that has none). The campaign gets enough items for every rater to find
    ``ratings_each`` unseen ones while each item collects ``ratings_per_item`` ratings. Threads
    share one engine (connection pool), as the app's sessions do.
    """
    for name, v in (("raters", raters), ("ratings_each", ratings_each),
                    ("ratings_per_item", ratings_per_item)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    store = Store(db_url)
    if password is None:
        password = ensure_admin_password(store, announce=False) or configured_admin_password()
    if password is None:
        raise RuntimeError("run_load_test needs the admin password: set "
                           "$AFFECTLAB_ADMIN_PASSWORD for a store whose password was generated")
    owner = open_owner(store, password)
    n_items = max(ratings_each + 1, math.ceil(raters * ratings_each / ratings_per_item) + raters)
    name = f"loadtest-{time.strftime('%Y%m%d-%H%M%S')}-{random.Random().randrange(10**6)}"
    invite = owner.create_campaign(name, _synthetic_dataset(n_items),
                                   ratings_per_item=ratings_per_item)

    acked: list[list[tuple[str, str, float]]] = [[] for _ in range(raters)]
    latencies: list[list[float]] = [[] for _ in range(raters)]
    errors: list[BaseException] = []
    start_gate = threading.Barrier(raters)

    def work(k: int) -> None:
        rng = random.Random(seed * 1000 + k)
        try:
            session = join_campaign(store, invite.token, f"load-rater-{k:03d}")
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
    wall = time.perf_counter() - t0

    stored = owner.ratings(invite.campaign_id)
    keys = list(zip(stored["rater_id"], stored["item_id"], stored["scale"], strict=True))
    stored_values = {(r, i, s): v for (r, i, s), v in zip(keys, stored["value"], strict=True)}
    want = {(f"load-rater-{k:03d}", i, s): v for k in range(raters) for i, s, v in acked[k]}
    lost = sum(1 for key, v in want.items() if stored_values.get(key) != v)
    duplicated = len(keys) - len(set(keys))
    extra = sum(1 for key in set(keys) if key not in want)
    lat = np.concatenate([np.asarray(x) for x in latencies]) if any(latencies) else np.zeros(1)
    store.dispose()
    return LoadTestReport(
        backend=store.engine.dialect.name, raters=raters, ratings_each=ratings_each,
        acknowledged=len(want), stored=len(keys), lost=lost, duplicated=duplicated, extra=extra,
        errors=len(errors), p50_ms=float(np.percentile(lat, 50)),
        p95_ms=float(np.percentile(lat, 95)), max_ms=float(lat.max()), wall_s=wall,
        ratings_per_s=len(want) / wall if wall > 0 else float("nan"),
        first_error=repr(errors[0])[:500] if errors else "")
