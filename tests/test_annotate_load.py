"""The load test (many raters at once): nothing lost, nothing stored twice, on both backends."""

from __future__ import annotations

import pytest
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)

from affectlab.annotate.loadtest import run_load_test


def test_small_load_no_loss_no_duplicates(db_url, monkeypatch):  # noqa: F811
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", "load")
    report = run_load_test(db_url, raters=4, ratings_each=12, ratings_per_item=2)
    assert report.errors == 0
    assert report.acknowledged == 48 and report.stored == 48
    assert (report.lost, report.duplicated, report.extra) == (0, 0, 0)
    assert report.p95_ms >= report.p50_ms > 0


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
