"""The rating store on SQLite and PostgreSQL: schema, settings, transactions, uniqueness,
crash safety (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from annotate_support import at_once, owner_for, rate_item, tiny_dataset
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from affectlab.annotate import DuplicateRatingError, Store, default_db_url, join_campaign
from affectlab.annotate.store import Item, Rater, Rating, upgrade_schema

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def campaign(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    invite = owner.create_campaign("c1", tiny_dataset(tmp_path, n=40), ratings_per_item=3)
    yield store, owner, invite
    store.dispose()


def test_default_url_is_sqlite_in_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("AFFECTLAB_DB_URL", raising=False)
    monkeypatch.setenv("AFFECTLAB_DATA", str(tmp_path / "d"))
    assert default_db_url() == f"sqlite:///{tmp_path / 'd' / 'affectlab.db'}"
    monkeypatch.setenv("AFFECTLAB_DB_URL", "postgresql+psycopg://u@h/db")
    assert default_db_url() == "postgresql+psycopg://u@h/db"


def test_sqlite_pragmas(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    with store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    with pytest.raises(ValueError, match="synchronous"):
        Store(f"sqlite:///{tmp_path / 'b.db'}", synchronous="SOMETIMES")
    store.dispose()


def test_submit_stores_one_row_with_time_and_timestamp(campaign):
    store, owner, invite = campaign
    rater = join_campaign(store, invite.token, "alice")
    item = rater.next_item()
    assert rater.submit(item.item_id, "category", 2, time_spent=3.5) is True
    table = owner.ratings("c1")
    assert len(table) == 1
    row = table.iloc[0]
    assert (row.item_id, row.rater_id, row.scale, row.value) == (item.item_id, "alice",
                                                                 "category", 2.0)
    assert row.time_spent == 3.5 and row.timestamp is not None


def test_duplicate_submit_is_idempotent_or_a_clear_error(campaign):
    store, owner, invite = campaign
    rater = join_campaign(store, invite.token, "bob")
    item = rater.next_item()
    assert rater.submit(item.item_id, "valence", 4) is True
    assert rater.submit(item.item_id, "valence", 4) is False   # same value: no-op
    with pytest.raises(DuplicateRatingError, match="already rated"):
        rater.submit(item.item_id, "valence", 2)
    assert len(owner.ratings("c1")) == 1


def test_database_rejects_duplicate_rows_itself(campaign):
    """The unique constraint holds even for code that bypasses the service."""
    store, _, invite = campaign
    rater = join_campaign(store, invite.token, "carol")
    item = rater.next_item()
    rater.submit(item.item_id, "category", 1)
    with store.read() as s:
        existing = s.execute(select(Rating)).scalar_one()
        rater_id, item_id, campaign_id = existing.rater_id, existing.item_id, existing.campaign_id
    with pytest.raises(IntegrityError), store.write() as s:
        s.add(Rating(campaign_id=campaign_id, rater_id=rater_id, item_id=item_id,
                     scale="category", value=2.0))


def test_foreign_keys_enforced(campaign):
    store, _, _ = campaign
    with pytest.raises(IntegrityError), store.write() as s:
        s.add(Rating(campaign_id=1, rater_id=999_999, item_id=999_999, scale="category",
                     value=0.0))


def test_concurrent_duplicate_submits_store_once(campaign):
    store, owner, invite = campaign
    rater = join_campaign(store, invite.token, "dave")
    item = rater.next_item()
    results, errors = at_once(lambda: rater.submit(item.item_id, "category", 1), 6)
    assert not errors
    assert results.count(True) == 1 and results.count(False) == 5
    with store.read() as s:
        assert s.execute(select(func.count()).select_from(Rating)).scalar_one() == 1


def test_a_failed_transaction_leaves_nothing(campaign):
    store, _, _ = campaign
    with store.read() as s:
        n_before = s.execute(select(func.count()).select_from(Rater)).scalar_one()
    with pytest.raises(RuntimeError), store.write() as s:
        s.add(Rater(campaign_id=1, name="ghost"))
        s.flush()
        raise RuntimeError("crash inside the transaction")
    with store.read() as s:
        assert s.execute(select(func.count()).select_from(Rater)).scalar_one() == n_before


WRITER = r"""
import sys
from affectlab.annotate import Store, join_campaign
store = Store(sys.argv[1])
rater = join_campaign(store, sys.argv[2], "writer")
print("CODE", rater.resume_code, flush=True)
value = 0
while True:
    item = rater.next_item()
    if item is None:
        print("DONE", flush=True)
        break
    for scale in item.pending:
        v = value % 3 if scale == "category" else 1 + value % 5
        rater.submit(item.item_id, scale, v, time_spent=0.1)
        print("ACK", item.item_id, scale, v, flush=True)
        value += 1
"""


def test_kill_9_loses_no_acknowledged_rating(campaign):
    store, owner, invite = campaign
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.engine.url.render_as_string(
        hide_password=False)), invite.token], stdout=subprocess.PIPE, text=True, env=env,
        cwd=REPO)
    acked, code = [], None
    try:
        for line in proc.stdout:
            if line.startswith("CODE"):
                code = line.split()[1]
            if line.startswith("ACK"):
                _, item_id, scale, v = line.split()
                acked.append((item_id, scale, float(v)))
            if len(acked) >= 25 or line.startswith("DONE"):
                break
        proc.send_signal(signal.SIGKILL)  # mid-loop: likely inside the next transaction
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= 25
    stored = owner.ratings("c1")
    stored = {(r.item_id, r.scale): r.value for r in stored.itertuples()}
    missing = [a for a in acked if stored.get(a[:2]) != a[2]]
    assert missing == []
    # the store is still usable and consistent after the crash
    if store.is_sqlite:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar() == "ok"
    rater = join_campaign(store, invite.token, "writer", code)  # resumes the interrupted item
    item = rater.next_item()
    assert item is not None
    rate_item(rater, item)


def test_items_unique_per_campaign(campaign):
    store, _, _ = campaign
    with store.read() as s:
        first = s.execute(select(Item).limit(1)).scalar_one()
        cid, key = first.campaign_id, first.item_key
    with pytest.raises(IntegrityError), store.write() as s:
        s.add(Item(campaign_id=cid, item_key=key, media="x.png", position=99))


def test_older_database_gains_the_new_columns_and_keeps_its_rows(campaign):
    """A store written before resume codes, revocation and broken items opens unchanged: the
    missing nullable columns are added, rows and ratings stay."""
    store, owner, invite = campaign
    rater = join_campaign(store, invite.token, "early")
    rate_item(rater, rater.next_item())
    url = store.engine.url.render_as_string(hide_password=False)
    store.dispose()
    old = Store(url, create=False)
    with old.engine.begin() as conn:  # back to the old layout
        for table, column in (("raters", "code_hash"), ("raters", "revoked_at"),
                              ("items", "broken"), ("items", "broken_at")):
            conn.exec_driver_sql(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')
    assert sorted(upgrade_schema(old.engine)) == ["items.broken", "items.broken_at",
                                                  "raters.code_hash", "raters.revoked_at"]
    assert upgrade_schema(old.engine) == []                     # idempotent
    old.dispose()
    again = Store(url)
    from annotate_support import PASSWORD

    from affectlab.annotate import open_owner
    table = open_owner(again, PASSWORD).ratings("c1")
    assert len(table) == 2 and set(table["rater_id"]) == {"early"}
    assert not table["rater_revoked"].any()
    again.dispose()
