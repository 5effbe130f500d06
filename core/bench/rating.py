"""``affectlab bench --what annotate``: the rating-store load test and the rating page's server
time per click. Returns a small table with the figures, the targets and whether they are met."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

# The rating page's target: server time per click, median, on SQLite (issue "rating at the speed
# of a click"); the submit click is the costly one, so it is the one held to the target.
CLICK_TARGET_MS = 100.0


def bench_annotate(db_url: str | None = None, raters: int = 50, ratings_each: int = 200) -> pd.DataFrame:
    """The rating-store load test (concurrent raters: lost/duplicated ratings, items over the
    cap, p95 latency) and the rating page's server time per click (one rater, the page's own
    RatingFlow calls, on SQLite)."""
    from affectlab.bench.rating_load import run_load_test, time_page_clicks

    with tempfile.TemporaryDirectory(prefix="affectlab-bench-") as tmp:
        url = db_url or f"sqlite:///{Path(tmp) / 'loadtest.db'}"
        report = run_load_test(url, raters=raters, ratings_each=ratings_each)
        # always a fresh SQLite file: the target is SQLite's, and its own admin password
        clicks = time_page_clicks(f"sqlite:///{Path(tmp) / 'clicks.db'}",
                                  n_items=min(100, ratings_each))
    return pd.DataFrame([{
        "backend": report.backend, "raters": report.raters, "ratings": report.acknowledged,
        "lost": report.lost, "duplicated": report.duplicated, "over_cap": report.over_cap,
        "errors": report.errors, "p50_ms": report.p50_ms, "p95_ms": report.p95_ms,
        "ratings_per_s": report.ratings_per_s,
        "click_p50_ms": clicks.all_p50_ms, "submit_click_p50_ms": clicks.submit_p50_ms,
        "submit_click_p95_ms": clicks.submit_p95_ms,
        "click_target": f"<= {CLICK_TARGET_MS:.0f} ms",
        "meets": report.lost == 0 and report.duplicated == 0 and report.over_cap == 0
        and clicks.submit_p50_ms <= CLICK_TARGET_MS,
    }])
