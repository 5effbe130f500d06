"""The rating store: SQLAlchemy 2 models and the engine they live in.

Default: a SQLite file ``affectlab.paths.data_dir()/"affectlab.db"`` in WAL mode with foreign keys on
and a busy timeout. Scaled: any SQLAlchemy URL in ``$AFFECTLAB_DB_URL``, PostgreSQL through
psycopg 3 (``postgresql+psycopg://user:pass@host:5432/affectlab``).

Durability: every rating is written in its own transaction; once :meth:`Store.write` returns the
row is committed. SQLite runs ``synchronous=NORMAL`` in WAL mode, which survives any crash of the
process (kill -9) and loses at most the last transactions on a power cut; pass
``synchronous="FULL"`` to :func:`make_engine` to survive power cuts too. A rater rates an item at
most once per scale: a unique constraint on (rater, item, scale) enforces it in the database, so no
race between two submits can store a rating twice.

Tables: ``settings`` (key/value: the generated admin password's hash, the secret that signs
raters' resume links), ``campaigns``, ``items``, ``gold_answers``, ``raters``, ``assignments``
(which rater was shown which item, and whether it was done, skipped, expired or broken),
``ratings``, ``rating_corrections`` (a rating's earlier value, kept when the rater corrects it),
``incidents`` (undecodable media and rating-page errors, for the owner).

Schema changes are additive: :meth:`Store.__init__` creates missing tables and adds missing
nullable columns to existing ones (:func:`upgrade_schema`), so a database written by an older
version opens unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from affectlab.paths import data_dir

__all__ = [
    "Assignment",
    "Base",
    "Campaign",
    "GoldAnswer",
    "Incident",
    "Item",
    "Rater",
    "Rating",
    "RatingCorrection",
    "Setting",
    "Store",
    "default_db_url",
    "is_transient",
    "make_engine",
    "upgrade_schema",
    "utcnow",
]

ENV_DB_URL = "AFFECTLAB_DB_URL"
SQLITE_BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)  # stored naive, always UTC


class Base(DeclarativeBase):
    pass


class Setting(Base):
    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Campaign(Base):
    """One rating campaign over a fixed set of items.

    ``scales`` uses the dataset contract's format ({name: {"type": "nominal", "names": [...]} |
    {"type": "likert", "low": 1, "high": 5} | {"type": "ordinal", "names": [...]}}, as
    :mod:`affectlab.scales` validates and writes them).
    """

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    modality: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(Text, default="")       # dataset dir or "upload"
    media_root: Mapped[str] = mapped_column(Text)               # item.media is relative to it
    scales: Mapped[dict[str, Any]] = mapped_column(JSON)
    label_set: Mapped[dict[str, Any]] = mapped_column(JSON)
    ratings_per_item: Mapped[int] = mapped_column(Integer)
    max_ratings: Mapped[int] = mapped_column(Integer)            # adaptive cap (≥ ratings_per_item)
    min_disagreement: Mapped[float] = mapped_column(Float, default=0.3)
    gold_rate: Mapped[float] = mapped_column(Float, default=0.0)
    instructions: Mapped[str] = mapped_column(Text, default="")
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Item(Base):
    """``n_live`` counts the item's open and done assignments, kept in the same transaction as
    each assignment change, so picking the least-covered item needs no GROUP BY and a
    conditional ``UPDATE … WHERE n_live < cap`` claims a slot race-free (see assign.py).
    ``broken`` holds why the item's media cannot be decoded (None: fine); a broken item is
    served to nobody."""

    __tablename__ = "items"
    __table_args__ = (UniqueConstraint("campaign_id", "item_key", name="uq_item_key"),
                      Index("ix_items_cover", "campaign_id", "is_gold", "n_live"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    item_key: Mapped[str] = mapped_column(String(200))          # the dataset's item_id
    media: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(Integer)
    is_gold: Mapped[bool] = mapped_column(Boolean, default=False)
    n_live: Mapped[int] = mapped_column(Integer, default=0)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # split, domain, truth, …
    broken: Mapped[str | None] = mapped_column(Text, nullable=True)
    broken_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class GoldAnswer(Base):
    __tablename__ = "gold_answers"
    __table_args__ = (UniqueConstraint("item_id", "scale", name="uq_gold_item_scale"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    scale: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class Rater(Base):
    """A rater of one campaign. ``code_hash``: SHA-256 of the resume code given at the first join
    (None for raters from before resume codes); ``revoked_at``: set by the owner, the rater can
    no longer join, resume or rate (their ratings stay)."""

    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="uq_rater_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    code_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Assignment(Base):
    """Item ``item_id`` was shown to rater ``rater_id``; status 'open', 'done', 'skipped',
    'expired' (left open past the lease and given to another rater, or its rater was revoked)
    or 'broken' (the item's media turned out undecodable)."""

    __tablename__ = "assignments"
    __table_args__ = (UniqueConstraint("rater_id", "item_id", name="uq_assignment"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(8), default="open")
    assigned_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Rating(Base):
    __tablename__ = "ratings"
    __table_args__ = (UniqueConstraint("rater_id", "item_id", "scale", name="uq_rating"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    rater_id: Mapped[int] = mapped_column(ForeignKey("raters.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    scale: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    time_spent: Mapped[float | None] = mapped_column(Float, nullable=True)  # seconds


class RatingCorrection(Base):
    """A rating's value before its rater corrected it (undo): the rating row holds the new value,
    this row the old one, so every value ever saved survives."""

    __tablename__ = "rating_corrections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id", ondelete="CASCADE"),
                                           index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime)
    time_spent: Mapped[float | None] = mapped_column(Float, nullable=True)
    replaced_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Incident(Base):
    """Something a rater ran into that the owner should see: kind 'media' (an item's media could
    not be decoded) or 'page' (the rating page failed); ``detail`` is never shown to raters."""

    __tablename__ = "incidents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    rater_id: Mapped[int | None] = mapped_column(ForeignKey("raters.id", ondelete="SET NULL"),
                                                 nullable=True)
    item_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


def upgrade_schema(engine: Engine) -> list[str]:
    """Add the model's nullable columns that an existing table lacks (``ALTER TABLE … ADD
    COLUMN``); returns "table.column" for each one added. Tables themselves come from
    ``create_all``; nothing is dropped or changed."""
    added = []
    with engine.begin() as conn:
        inspector = sa_inspect(conn)
        for table in Base.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            have = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in have:
                    continue
                if not column.nullable:
                    raise RuntimeError(f"table {table.name!r} lacks the required column "
                                       f"{column.name!r}: this database needs a migration")
                kind = column.type.compile(dialect=engine.dialect)
                conn.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN '
                                     f'"{column.name}" {kind}')
                added.append(f"{table.name}.{column.name}")
    return added


# PostgreSQL's deadlock_detected and serialization_failure: the transaction was rolled back and
# may simply be run again
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def is_transient(exc: BaseException) -> bool:
    """True for a database error that a retry of the whole transaction may not meet again."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) in _TRANSIENT_SQLSTATES


def default_db_url() -> str:
    """``$AFFECTLAB_DB_URL`` when set, else the SQLite file in the data directory."""
    url = os.environ.get(ENV_DB_URL, "").strip()
    if url:
        return url
    return f"sqlite:///{data_dir() / 'affectlab.db'}"


def make_engine(url: str | None = None, *, synchronous: str = "NORMAL", echo: bool = False
                ) -> Engine:
    """An engine for ``url`` (default :func:`default_db_url`).

    SQLite connections get WAL, foreign keys, a busy timeout and ``synchronous``; transactions
    are opened by SQLAlchemy (``BEGIN``, or ``BEGIN IMMEDIATE`` for :meth:`Store.write`, so two
    writers queue on the busy timeout instead of failing on a lock upgrade).
    """
    url = default_db_url() if url is None else str(url)
    if synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise ValueError(f"synchronous must be OFF, NORMAL, FULL or EXTRA, got {synchronous!r}")
    if url.startswith("sqlite"):
        engine = create_engine(url, echo=echo, pool_size=10, max_overflow=60, pool_timeout=120,
                               connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000,
                                             "check_same_thread": False})
        _configure_sqlite(engine, synchronous.upper())
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=10, max_overflow=60,
                         pool_timeout=120)


def _configure_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # the driver must not open transactions on its own
        cur = dbapi_conn.cursor()
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("affectlab_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Store:
    """The database behind the annotation service: an engine and its sessions.

    ``Store()`` opens the default store and creates the tables if missing.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None,
                 create: bool = True, synchronous: str = "NORMAL"):
        self.engine = engine if engine is not None else make_engine(url, synchronous=synchronous)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else nullcontext()
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write_bind = self.engine.execution_options(affectlab_write=True)
        self._write = sessionmaker(self._write_bind, expire_on_commit=False)
        if create:
            Base.metadata.create_all(self.engine)
            upgrade_schema(self.engine)

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed when the block ends, rolled back on an exception.

        On SQLite, writers of this process queue on a lock first: SQLite allows one writer at
        a time and its busy handler polls with growing sleeps, which starves some of many
        concurrent writers (seconds of latency, then "database is locked"); other processes
        still wait on the busy timeout.
        """
        with self._write_lock, self._write() as session, session.begin():
            yield session

    @contextmanager
    def write_conn(self) -> Iterator[Connection]:
        """Like :meth:`write`, as a Core connection (the raters' hot path: no ORM unit of work).
        """
        with self._write_lock, self._write_bind.begin() as conn:
            yield conn

    @contextmanager
    def read_conn(self) -> Iterator[Connection]:
        """A Core connection in a transaction that is rolled back at the end (reads only)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only session (rolled back at the end)."""
        with self._read() as session:
            yield session

    def dispose(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
