"""The load test (many raters at once): nothing lost, nothing stored twice, on both backends."""

from __future__ import annotations

import pytest
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)

from affectlab.bench.rating_load import run_load_test, time_page_clicks


def test_small_load_no_loss_no_duplicates(db_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", "load")
    report = run_load_test(db_url, raters=4, ratings_each=12, ratings_per_item=2)
    assert report.errors == 0
    assert report.acknowledged == 48 and report.stored == 48
    assert (report.lost, report.duplicated, report.extra) == (0, 0, 0)
    assert report.over_cap == 0 and report.cap == 2
    assert report.p95_ms >= report.p50_ms > 0


def test_page_click_timing_runs_the_page_flow(tmp_path, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", "load")
    times = time_page_clicks(f"sqlite:///{tmp_path / 'c.db'}", n_items=6)
    assert times.clicks == 6 * 3                      # two value picks and a submit per item
    assert times.submit_p95_ms >= times.submit_p50_ms > times.pick_p50_ms >= 0
    with pytest.raises(ValueError, match="n_items"):
        time_page_clicks(f"sqlite:///{tmp_path / 'd.db'}", n_items=0)


def test_load_test_validates_arguments():
    with pytest.raises(ValueError, match="raters"):
        run_load_test("sqlite://", raters=0)


@pytest.mark.slow
def test_full_load_50_raters_200_each(db_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", "load")
    report = run_load_test(db_url, raters=50, ratings_each=200)
    print(report.as_dict())
    assert report.errors == 0
    assert report.acknowledged == 50 * 200
    assert (report.lost, report.duplicated, report.extra) == (0, 0, 0)
    assert report.over_cap == 0
