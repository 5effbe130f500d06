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

Tables: ``settings`` (key/value: the generated admin password's hash), ``campaigns``, ``items``,
``gold_answers``, ``raters``, ``assignments`` (which rater was shown which item, and whether it
was done or skipped), ``ratings``.
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
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from affectlab.paths import data_dir

__all__ = [
    "Assignment",
    "Base",
    "Campaign",
    "GoldAnswer",
    "Item",
    "Rater",
    "Rating",
    "Setting",
    "Store",
    "default_db_url",
    "make_engine",
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
    """``n_live`` counts the item's assignments that are not skipped (open or done), kept in the
    same transaction as the assignment, so picking the least-covered item needs no GROUP BY."""

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


class GoldAnswer(Base):
    __tablename__ = "gold_answers"
    __table_args__ = (UniqueConstraint("item_id", "scale", name="uq_gold_item_scale"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    scale: Mapped[str] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)


class Rater(Base):
    __tablename__ = "raters"
    __table_args__ = (UniqueConstraint("campaign_id", "name", name="uq_rater_name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"),
                                             index=True)
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Assignment(Base):
    """Item ``item_id`` was shown to rater ``rater_id``; status 'open', 'done' or 'skipped'."""

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
