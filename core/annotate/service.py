"""The annotation service: what the rating page and the owner page may call.

Two kinds of session, each bound to who opened it, so a page cannot act beyond its rights:

- :func:`join_campaign` (token, name) → :class:`RaterSession`: one rater in one campaign.
  It reads and writes only its own ratings: ``next_item()``, ``submit()``, ``skip()``,
  ``progress()``, ``my_ratings()``. A rater is identified by name within the campaign; joining
  again with the same name resumes.
- :func:`open_owner` (admin password) → :class:`OwnerSession`: create campaigns (from a
  dataset directory or uploaded media), follow progress, agreement, soft labels, export.

Errors: :class:`~affectlab.annotate.access.AccessDenied` for a bad password or token or a closed
campaign; ValueError / TypeError naming the argument for malformed input (value outside the
scale, NaN, unknown item or scale); :class:`DuplicateRatingError` when a rater re-submits a
different value for a scale they already rated (re-submitting the same value is a no-op).
"""

from __future__ import annotations

import math
import os
import random
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.engine import Connection, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from affectlab.annotate import aggregate
from affectlab.annotate.access import (
    AccessDenied,
    check_admin_password,
    hash_token,
    invite_link,
    new_token,
)
from affectlab.annotate.assign import CampaignRules, pick_next, release
from affectlab.annotate.store import (
    Assignment,
    Campaign,
    GoldAnswer,
    Item,
    Rater,
    Rating,
    Store,
    utcnow,
)
from affectlab.data.contract import MODALITIES, SCALE_TYPES, DatasetDir, load_dataset
from affectlab.data.schema import default_label_set
from affectlab.paths import data_dir
from affectlab.scales import as_scale

__all__ = [
    "CampaignProgress",
    "DuplicateRatingError",
    "Invite",
    "ItemView",
    "OwnerSession",
    "RaterProgress",
    "RaterSession",
    "check_value",
    "join_campaign",
    "open_owner",
]

MEDIA_EXTENSIONS = {"face": (".png", ".jpg", ".jpeg", ".bmp", ".webp"),
                    "speech": (".wav", ".flac", ".ogg", ".mp3")}
MAX_NAME_LEN = 64


class DuplicateRatingError(ValueError):
    """The rater already rated this item on this scale with a different value."""


# --------------------------------------------------------------------------- value checks


def check_scales(scales: Any, name: str = "scales") -> dict[str, dict[str, Any]]:
    """Validate scale definitions (typed scales or the contract's dicts, checked by
    :func:`affectlab.scales.as_scale`); return them as plain dicts, as the store keeps them.
    A campaign's nominal / ordinal scale needs at least two classes (one button is no choice)."""
    if not isinstance(scales, Mapping) or not scales:
        raise ValueError(f"{name} must be a non-empty dict {{scale: definition}}, got {scales!r}")
    out = {}
    for s, meta in scales.items():
        if not isinstance(s, str) or not s or len(s) > 64:
            raise ValueError(f"{name}: scale names must be non-empty strings ≤ 64 chars, got {s!r}")
        try:
            typed = as_scale(meta, f"{name}[{s!r}]")
        except TypeError as exc:  # not a dict: still a bad value, not a bad type of argument
            raise ValueError(f"{exc}; expected a 'type' in {SCALE_TYPES}") from exc
        if typed.categorical and typed.num_classes < 2:
            raise ValueError(f"{name}[{s!r}]: {typed.type} needs a 'names' list of ≥ 2 classes")
        out[s] = typed.to_json()
    return out


def check_value(scales: Mapping[str, Any], scale: str, value: Any) -> float:
    """A rating value as stored: a float in the scale's range.

    nominal / ordinal: a class index 0..K−1 (int, or a float with an integer value) or the class
    name; likert: a number in [low, high]. Raises ValueError / TypeError naming the problem.
    """
    if scale not in scales:
        raise ValueError(f"scale must be one of {sorted(scales)}, got {scale!r}")
    typed = as_scale(scales[scale], f"scales[{scale!r}]")
    if typed.categorical and isinstance(value, str):
        names = typed.class_names
        if value not in names:
            raise ValueError(f"value for scale {scale!r} must be one of {names}, got {value!r}")
        return float(names.index(value))
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"value for scale {scale!r} must be a number, got {type(value).__name__}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"value for scale {scale!r} must be finite, got {v}")
    lo, hi = typed.value_range()
    if not lo <= v <= hi:
        raise ValueError(f"value for scale {scale!r} must lie in [{lo:g}, {hi:g}], got {v:g}")
    if typed.categorical and v != round(v):
        raise ValueError(f"value for scale {scale!r} must be a class index, got {v:g}")
    return v


def _check_name(name: Any) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    clean = " ".join(name.split())
    if not clean:
        raise ValueError("name must not be empty")
    if len(clean) > MAX_NAME_LEN or not clean.isprintable():
        raise ValueError(f"name must be ≤ {MAX_NAME_LEN} printable characters, got {name!r}")
    return clean


def _check_time_spent(t: Any) -> float | None:
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, int | float | np.integer | np.floating):
        raise TypeError(f"time_spent must be seconds (a number) or None, got {type(t).__name__}")
    t = float(t)
    if not math.isfinite(t) or t < 0:
        raise ValueError(f"time_spent must be a finite number of seconds >= 0, got {t}")
    return t


# --------------------------------------------------------------------------- rater side


@dataclass(frozen=True)
class ItemView:
    """What the rating page shows: the item's id and media file, the scales still to rate."""

    item_id: str
    media_path: Path
    modality: str
    scales: dict[str, dict[str, Any]]
    pending: tuple[str, ...]
    instructions: str


@dataclass(frozen=True)
class RaterProgress:
    done: int          # items finished (all scales rated), gold included
    skipped: int
    gold_done: int
    remaining: int     # regular items this rater could still get for coverage (upper bound)


class RaterSession:
    """One rater in one campaign. Obtain it from :func:`join_campaign`; it never exposes other
    raters' ratings or other campaigns.

    Its methods run fixed Core statements (built once, see the module's ``_R_*``) on one
    connection per call: a submit is one lookup, one insert and one conditional update; a
    next item is one status read, the pick and one insert and update.
    """

    def __init__(self, store: Store, campaign: Campaign, rater_id: int, name: str, *,
                 _key: object = None):
        if _key is not _JOIN_KEY:
            raise TypeError("use join_campaign(store, token, name) to get a RaterSession")
        self._store, self._campaign_id, self._rater_id = store, campaign.id, rater_id
        # fixed when the campaign was created: read once, not on every call
        self._rules = CampaignRules.of(campaign)
        self._scales = dict(campaign.scales)
        self._modality, self._instructions = campaign.modality, campaign.instructions
        self._media_root = Path(campaign.media_root)
        self.name = name
        self._rng = random.Random()

    def __repr__(self) -> str:
        return f"RaterSession(name={self.name!r})"

    def _check_open(self, conn: Connection) -> None:
        if not conn.execute(_R_ACTIVE, {"cid": self._campaign_id}).scalar():
            raise AccessDenied("this campaign is closed")

    def _view(self, conn: Connection, item: Row, resumed: bool) -> ItemView:
        rated: set[str] = set()
        if resumed:  # a new assignment has no ratings yet (the rater never saw the item)
            rated = set(conn.execute(_R_RATED, {"rid": self._rater_id,
                                                "iid": item.id}).scalars())
        return ItemView(item.item_key, self._media_root / item.media, self._modality,
                        dict(self._scales), tuple(s for s in self._scales if s not in rated),
                        self._instructions)

    def next_item(self) -> ItemView | None:
        """The item to rate now (the unfinished one first), or None when nothing is left."""
        for _ in range(3):  # a concurrent call for this same rater may win the unique slot
            try:
                with self._store.write_conn() as conn:
                    self._check_open(conn)
                    picked = pick_next(conn, self._rules, self._rater_id, self._rng)
                    return None if picked is None else self._view(conn, *picked)
            except IntegrityError:
                continue
        raise RuntimeError("could not assign an item (concurrent requests for this rater)")

    def _lookup(self, conn: Connection, item_id: str, scale: str) -> Row:
        """(active, item pk, assignment id, assignment status, existing value on ``scale``)
        for ``item_id``, after the access checks."""
        if not isinstance(item_id, str):
            raise TypeError(f"item_id must be a str, got {type(item_id).__name__}")
        row = conn.execute(_R_LOOKUP, {"cid": self._campaign_id, "key": item_id,
                                       "rid": self._rater_id, "scale": scale}).first()
        if row is None or not row.active:
            raise AccessDenied("this campaign is closed")
        if row.item_pk is None:
            raise ValueError(f"item_id {item_id!r} is not an item of this campaign")
        if row.assignment_id is None:
            raise ValueError(f"item_id {item_id!r} was not given to you; call next_item()")
        return row

    def submit(self, item_id: str, scale: str, value: Any, time_spent: float | None = None
               ) -> bool:
        """Store one rating in its own transaction. Returns True when stored, False when the
        same value was already stored (idempotent re-submit); raises
        :class:`DuplicateRatingError` for a different value, ValueError for a skipped item."""
        time_spent = _check_time_spent(time_spent)
        try:
            with self._store.write_conn() as conn:
                row = self._lookup(conn, item_id, scale if isinstance(scale, str) else "")
                v = check_value(self._scales, scale, value)
                if row.status == "skipped":
                    raise ValueError(f"item_id {item_id!r} was skipped; it cannot be rated now")
                if row.existing is not None:
                    return self._same(row.existing, v, item_id, scale)
                now = utcnow()
                conn.execute(_R_INSERT, {"campaign_id": self._campaign_id,
                                         "rater_id": self._rater_id, "item_id": row.item_pk,
                                         "scale": scale, "value": v, "created_at": now,
                                         "time_spent": time_spent})
                conn.execute(_R_FINISH, {"aid": row.assignment_id, "now": now,
                                         "rid": self._rater_id, "iid": row.item_pk,
                                         "n_scales": len(self._scales)})
            return True
        except IntegrityError:
            # another submit of the same rating committed first: decide as for a re-submit
            with self._store.read_conn() as conn:
                row = self._lookup(conn, item_id, scale)
            if row.existing is None:
                raise
            return self._same(row.existing, v, item_id, scale)

    def submit_all(self, item_id: str, values: Mapping[str, Any],
                   time_spent: float | None = None) -> int:
        """Submit several scales of one item (one transaction each); returns how many were new."""
        if not isinstance(values, Mapping) or not values:
            raise ValueError("values must be a non-empty dict {scale: value}")
        return sum(self.submit(item_id, s, v, time_spent) for s, v in values.items())

    @staticmethod
    def _same(existing: float, v: float, item_id: str, scale: str) -> bool:
        if existing == v:
            return False
        raise DuplicateRatingError(f"you already rated item {item_id!r} on scale {scale!r} "
                                   f"({existing:g}); a rating cannot be changed")

    def skip(self, item_id: str) -> None:
        """Skip an item given to you: it is not shown to you again. Ratings already given for
        some of its scales stay."""
        with self._store.write_conn() as conn:
            row = self._lookup(conn, item_id, "")
            if row.status == "open":
                conn.execute(_R_SKIP, {"aid": row.assignment_id, "now": utcnow()})
                release(conn, row.item_pk)

    def progress(self) -> RaterProgress:
        params = {"cid": self._campaign_id, "rid": self._rater_id,
                  "n_per": self._rules.ratings_per_item}
        with self._store.read_conn() as conn:
            self._check_open(conn)
            rows = conn.execute(_R_STATUS, params).all()
            done = sum(n for s, _, n in rows if s == "done")
            skipped = sum(n for s, _, n in rows if s == "skipped")
            gold = sum(n for s, g, n in rows if s == "done" and g)
            remaining = conn.execute(_R_REMAINING, params).scalar_one()
        return RaterProgress(done=done, skipped=skipped, gold_done=gold, remaining=remaining)

    def my_ratings(self) -> pd.DataFrame:
        """This rater's own ratings: item_id, scale, value, timestamp, time_spent."""
        with self._store.read() as session:
            rows = session.execute(
                select(Item.item_key, Rating.scale, Rating.value, Rating.created_at,
                       Rating.time_spent)
                .join(Item, Item.id == Rating.item_id)
                .where(Rating.rater_id == self._rater_id).order_by(Rating.id)).all()
        return pd.DataFrame(rows, columns=["item_id", "scale", "value", "timestamp",
                                           "time_spent"])


# The raters' statements, built once (bound parameters: cid campaign, rid rater, iid item pk).
_c, _i, _a, _r = Campaign.__table__, Item.__table__, Assignment.__table__, Rating.__table__
_R_ACTIVE = select(_c.c.active).where(_c.c.id == bindparam("cid"))
_R_RATED = select(_r.c.scale).where(_r.c.rater_id == bindparam("rid"),
                                    _r.c.item_id == bindparam("iid"))
_R_EXISTING = (select(_r.c.value).where(_r.c.rater_id == bindparam("rid"),
                                        _r.c.item_id == _i.c.id,
                                        _r.c.scale == bindparam("scale"))
               .scalar_subquery())
_R_LOOKUP = (select(_c.c.active, _i.c.id.label("item_pk"), _a.c.id.label("assignment_id"),
                    _a.c.status, _R_EXISTING.label("existing"))
             .select_from(_c.outerjoin(_i, and_(_i.c.campaign_id == _c.c.id,
                                                _i.c.item_key == bindparam("key")))
                          .outerjoin(_a, and_(_a.c.item_id == _i.c.id,
                                              _a.c.rater_id == bindparam("rid"))))
             .where(_c.c.id == bindparam("cid")))
_R_INSERT = insert(_r)
# the assignment is done once every scale of the item is rated (counted in the same statement)
_R_FINISH = (update(_a).where(_a.c.id == bindparam("aid"),
                              select(func.count()).select_from(_r)
                              .where(_r.c.rater_id == bindparam("rid"),
                                     _r.c.item_id == bindparam("iid")).scalar_subquery()
                              >= bindparam("n_scales"))
             .values(status="done", finished_at=bindparam("now")))
_R_SKIP = (update(_a).where(_a.c.id == bindparam("aid"))
           .values(status="skipped", finished_at=bindparam("now")))
_R_STATUS = (select(_a.c.status, _i.c.is_gold, func.count())
             .join(_i, _i.c.id == _a.c.item_id)
             .where(_a.c.rater_id == bindparam("rid"))
             .group_by(_a.c.status, _i.c.is_gold))
# regular items this rater has not seen whose live assignments (open or done, the n_live
# counter) are still below N
_R_REMAINING = (select(func.count()).select_from(_i)
                .where(_i.c.campaign_id == bindparam("cid"), _i.c.is_gold.is_(False),
                       _i.c.n_live < bindparam("n_per"),
                       _i.c.id.not_in(select(_a.c.item_id)
                                      .where(_a.c.rater_id == bindparam("rid")))))


_JOIN_KEY = object()


def join_campaign(store: Store, token: str, name: str) -> RaterSession:
    """A rater joins the campaign of ``token`` (from the invite link) under ``name``; the same
    name later resumes. Raises AccessDenied for an unknown token or a closed campaign."""
    if not isinstance(token, str):
        raise AccessDenied("campaign token must be a string")
    name = _check_name(name)
    digest = hash_token(token)
    for _ in range(2):
        try:
            with store.write() as session:
                campaign = session.execute(select(Campaign).where(
                    Campaign.token_hash == digest)).scalar_one_or_none()
                if campaign is None:
                    raise AccessDenied("unknown campaign token: ask the campaign owner for a "
                                       "new invite link")
                if not campaign.active:
                    raise AccessDenied(f"campaign {campaign.name!r} is closed")
                rater = session.execute(select(Rater).where(
                    Rater.campaign_id == campaign.id, Rater.name == name)).scalar_one_or_none()
                if rater is None:
                    rater = Rater(campaign_id=campaign.id, name=name)
                    session.add(rater)
                    session.flush()
                return RaterSession(store, campaign, rater.id, name, _key=_JOIN_KEY)
        except IntegrityError:  # the same name joined concurrently: the second pass finds it
            continue
    raise RuntimeError(f"could not join as {name!r}")


# --------------------------------------------------------------------------- owner side


@dataclass(frozen=True)
class Invite:
    """A new campaign's id and token (shown once: only its hash is stored)."""

    campaign_id: int
    name: str
    token: str

    def link(self, base_url: str = "http://localhost:8501/annotate") -> str:
        return invite_link(self.token, base_url)


@dataclass(frozen=True)
class CampaignProgress:
    """items: one row per item (item_id, is_gold, n_ratings (finished), n_skipped, complete);
    raters: one row per rater (rater_id, done, skipped, open)."""

    n_items: int
    n_complete: int
    n_ratings: int
    n_raters: int
    items: pd.DataFrame
    raters: pd.DataFrame

    @property
    def fraction_complete(self) -> float:
        return self.n_complete / self.n_items if self.n_items else 0.0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "campaign"


class OwnerSession:
    """Campaign owner operations. Obtain it from :func:`open_owner`."""

    def __init__(self, store: Store, *, _key: object = None):
        if _key is not _OWNER_KEY:
            raise TypeError("use open_owner(store, password) to get an OwnerSession")
        self._store = store

    # ------------------------------------------------------------------ create
    def create_campaign(self, name: str, dataset: str | os.PathLike | DatasetDir, *,
                        scales: Sequence[str] | Mapping[str, Any] | None = None,
                        ratings_per_item: int = 3, max_ratings: int | None = None,
                        min_disagreement: float = 0.3, gold_rate: float = 0.0,
                        gold: Mapping[str, Mapping[str, Any]] | None = None,
                        instructions: str = "", item_ids: Sequence[str] | None = None
                        ) -> Invite:
        """A campaign over a dataset directory's items (media stay where they are).

        scales: names of the dataset's scales to rate (default all), or full definitions.
        ratings_per_item: N ratings each item collects; max_ratings: adaptive cap (default N,
        i.e. no extra ratings); gold: {item_id: {scale: answer}} known answers, mixed in at
        ``gold_rate`` (fraction of each rater's items, in [0, 1)); item_ids: a subset.
        """
        ds = dataset if isinstance(dataset, DatasetDir) else load_dataset(dataset)
        declared = ds.schema.scales
        if scales is None:
            chosen = dict(declared)
        elif isinstance(scales, Mapping):
            chosen = dict(scales)
        else:
            unknown = [s for s in scales if s not in declared]
            if unknown:
                raise ValueError(f"scales {unknown} are not in the dataset "
                                 f"(known: {sorted(declared)})")
            chosen = {s: declared[s] for s in scales}
        items = ds.items
        if item_ids is not None:
            wanted = pd.Index(item_ids)
            missing = wanted.difference(items["item_id"])
            if len(missing):
                raise ValueError(f"item_ids {list(missing[:5])} are not in the dataset")
            items = items[items["item_id"].isin(wanted)]
        keep = [c for c in items.columns if c not in ("item_id", "media", "modality")]
        extra = items[keep].to_dict(orient="records")
        rows = [(str(i), str(m), e) for i, m, e in zip(items["item_id"], items["media"], extra,
                                                      strict=True)]
        return self._create(name, modality=ds.modality, source=str(ds.root),
                            media_root=str(ds.root), scales=chosen,
                            label_set=ds.schema.label_set.model_dump(), rows=rows,
                            ratings_per_item=ratings_per_item, max_ratings=max_ratings,
                            min_disagreement=min_disagreement, gold_rate=gold_rate, gold=gold,
                            instructions=instructions)

    def create_campaign_from_files(self, name: str,
                                   files: Sequence[str | os.PathLike | tuple[str, bytes]], *,
                                   modality: str, scales: Mapping[str, Any],
                                   label_set: Mapping[str, Any] | None = None,
                                   ratings_per_item: int = 3, max_ratings: int | None = None,
                                   min_disagreement: float = 0.3, gold_rate: float = 0.0,
                                   gold: Mapping[str, Mapping[str, Any]] | None = None,
                                   instructions: str = "") -> Invite:
        """A campaign over uploaded media: paths, or (filename, bytes) pairs as a file uploader
        gives them. Files are copied to ``data_dir()/annotate/<name>/media``; the item id is
        the file name without extension."""
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        scales = check_scales(scales)
        if not files:
            raise ValueError("files must name at least one media file")
        if label_set is None:
            label_set = default_label_set(scales).model_dump()
        root = data_dir() / "annotate" / _slug(name)
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"{root} already exists; choose another campaign name")
        media = root / "media"
        media.mkdir(parents=True, exist_ok=True)
        rows, seen = [], set()
        try:
            for f in files:
                fname, data = (f if isinstance(f, tuple) else (Path(f).name, None))
                fname = _slug(Path(str(fname)).name)
                ext = Path(fname).suffix.lower()
                if ext not in MEDIA_EXTENSIONS[modality]:
                    raise ValueError(f"files: {fname!r} is not a {modality} file "
                                     f"(expected {MEDIA_EXTENSIONS[modality]})")
                item_id = Path(fname).stem
                if item_id in seen:
                    raise ValueError(f"files: two files give item id {item_id!r}")
                seen.add(item_id)
                if data is None:
                    shutil.copyfile(f, media / fname)
                else:
                    if not isinstance(data, bytes | bytearray):
                        raise TypeError(f"files: content of {fname!r} must be bytes")
                    (media / fname).write_bytes(bytes(data))
                rows.append((item_id, f"media/{fname}", {"split": "train", "domain": "upload"}))
            return self._create(name, modality=modality, source="upload", media_root=str(root),
                                scales=scales, label_set=dict(label_set), rows=rows,
                                ratings_per_item=ratings_per_item, max_ratings=max_ratings,
                                min_disagreement=min_disagreement, gold_rate=gold_rate,
                                gold=gold, instructions=instructions)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _create(self, name: str, *, modality: str, source: str, media_root: str,
                scales: Mapping[str, Any], label_set: dict, rows: list,
                ratings_per_item: int, max_ratings: int | None, min_disagreement: float,
                gold_rate: float, gold: Mapping[str, Mapping[str, Any]] | None,
                instructions: str) -> Invite:
        name = _check_name(name)
        scales = check_scales(scales)
        for arg, v in (("ratings_per_item", ratings_per_item), ("max_ratings", max_ratings)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{arg} must be a positive integer, got {v!r}")
        max_ratings = ratings_per_item if max_ratings is None else max_ratings
        if max_ratings < ratings_per_item:
            raise ValueError(f"max_ratings ({max_ratings}) must be >= ratings_per_item "
                             f"({ratings_per_item})")
        if not (isinstance(gold_rate, int | float) and 0.0 <= gold_rate < 1.0):
            raise ValueError(f"gold_rate must be in [0, 1), got {gold_rate!r}")
        if not (isinstance(min_disagreement, int | float) and 0.0 <= min_disagreement <= 1.0):
            raise ValueError(f"min_disagreement must be in [0, 1], got {min_disagreement!r}")
        if not rows:
            raise ValueError("a campaign needs at least one item")
        gold = dict(gold or {})
        keys = {r[0] for r in rows}
        unknown = [k for k in gold if k not in keys]
        if unknown:
            raise ValueError(f"gold names items not in the campaign: {unknown[:5]}")
        gold_values = {k: {s: check_value(scales, s, v) for s, v in answers.items()}
                       for k, answers in gold.items()}
        if gold_rate > 0 and not gold:
            raise ValueError("gold_rate > 0 needs gold answers (gold={item_id: {scale: value}})")
        token = new_token()
        with self._store.write() as session:
            if session.execute(select(Campaign.id).where(Campaign.name == name)).first():
                raise ValueError(f"a campaign named {name!r} already exists")
            campaign = Campaign(name=name, modality=modality, source=source,
                                media_root=media_root, scales=scales, label_set=label_set,
                                ratings_per_item=ratings_per_item, max_ratings=max_ratings,
                                min_disagreement=float(min_disagreement),
                                gold_rate=float(gold_rate), instructions=str(instructions),
                                token_hash=hash_token(token))
            session.add(campaign)
            session.flush()
            items = [Item(campaign_id=campaign.id, item_key=k, media=m, position=p,
                          is_gold=k in gold_values, extra=_jsonable(e))
                     for p, (k, m, e) in enumerate(rows)]
            session.add_all(items)
            session.flush()
            session.add_all([GoldAnswer(item_id=it.id, scale=s, value=v)
                             for it in items if it.item_key in gold_values
                             for s, v in gold_values[it.item_key].items()])
            cid = campaign.id
        return Invite(cid, name, token)

    # ------------------------------------------------------------------ manage
    def _get(self, session: Session, campaign: int | str) -> Campaign:
        if isinstance(campaign, bool) or not isinstance(campaign, int | str):
            raise TypeError(f"campaign must be a campaign id (int) or name (str), "
                            f"got {type(campaign).__name__}")
        found = (session.get(Campaign, campaign) if isinstance(campaign, int) else
                 session.execute(select(Campaign).where(Campaign.name == campaign)
                                 ).scalar_one_or_none())
        if found is None:
            raise ValueError(f"campaign {campaign!r} does not exist")
        return found

    def campaigns(self) -> pd.DataFrame:
        """All campaigns: id, name, modality, n_items, ratings_per_item, active, created_at."""
        with self._store.read() as session:
            n = (select(Item.campaign_id, func.count().label("n")).group_by(Item.campaign_id)
                 .subquery())
            rows = session.execute(
                select(Campaign.id, Campaign.name, Campaign.modality,
                       func.coalesce(n.c.n, 0), Campaign.ratings_per_item, Campaign.active,
                       Campaign.created_at)
                .outerjoin(n, n.c.campaign_id == Campaign.id).order_by(Campaign.id)).all()
        return pd.DataFrame(rows, columns=["id", "name", "modality", "n_items",
                                           "ratings_per_item", "active", "created_at"])

    def settings(self, campaign: int | str) -> dict[str, Any]:
        """A campaign's settings (scales, N, cap, gold rate, instructions, …)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            return {"id": c.id, "name": c.name, "modality": c.modality, "source": c.source,
                    "media_root": c.media_root, "scales": dict(c.scales),
                    "label_set": dict(c.label_set), "ratings_per_item": c.ratings_per_item,
                    "max_ratings": c.max_ratings, "min_disagreement": c.min_disagreement,
                    "gold_rate": c.gold_rate, "instructions": c.instructions,
                    "active": c.active}

    def rotate_token(self, campaign: int | str) -> str:
        """A new invite token; the old link stops working (joined raters are not affected
        until they join again)."""
        token = new_token()
        with self._store.write() as session:
            self._get(session, campaign).token_hash = hash_token(token)
        return token

    def set_active(self, campaign: int | str, active: bool) -> None:
        """Close (False) or reopen (True) a campaign; a closed one accepts no ratings."""
        with self._store.write() as session:
            self._get(session, campaign).active = bool(active)

    # ------------------------------------------------------------------ read
    def ratings(self, campaign: int | str) -> pd.DataFrame:
        """The long table: item_id, rater_id (the rater's name), scale, value, timestamp,
        time_spent, is_gold."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(
                select(Item.item_key, Rater.name, Rating.scale, Rating.value,
                       Rating.created_at, Rating.time_spent, Item.is_gold)
                .join(Item, Item.id == Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
                .where(Rating.campaign_id == c.id).order_by(Rating.id)).all()
        return pd.DataFrame(rows, columns=["item_id", "rater_id", "scale", "value", "timestamp",
                                           "time_spent", "is_gold"])

    def items(self, campaign: int | str) -> pd.DataFrame:
        """The campaign's items: item_id, media (relative to media_root), is_gold, then the
        dataset's other columns (split, domain, truth, …)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(select(Item.item_key, Item.media, Item.is_gold, Item.extra)
                                   .where(Item.campaign_id == c.id).order_by(Item.position)
                                   ).all()
        base = pd.DataFrame([(k, m, g) for k, m, g, _ in rows],
                            columns=["item_id", "media", "is_gold"])
        extra = pd.DataFrame([e or {} for *_, e in rows], index=base.index)
        return pd.concat([base, extra.drop(columns=[c for c in extra.columns
                                                    if c in base.columns])], axis=1)

    def gold(self, campaign: int | str) -> pd.DataFrame:
        """Gold answers: item_id, scale, value."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(select(Item.item_key, GoldAnswer.scale, GoldAnswer.value)
                                   .join(Item, Item.id == GoldAnswer.item_id)
                                   .where(Item.campaign_id == c.id)).all()
        return pd.DataFrame(rows, columns=["item_id", "scale", "value"])

    def progress(self, campaign: int | str) -> CampaignProgress:
        with self._store.read() as session:
            c = self._get(session, campaign)
            items = session.execute(select(Item.id, Item.item_key, Item.is_gold)
                                    .where(Item.campaign_id == c.id).order_by(Item.position)
                                    ).all()
            status = session.execute(
                select(Assignment.item_id, Assignment.rater_id, Assignment.status)
                .where(Assignment.campaign_id == c.id)).all()
            raters = session.execute(select(Rater.id, Rater.name)
                                     .where(Rater.campaign_id == c.id)).all()
            n_ratings = session.execute(select(func.count()).select_from(Rating)
                                        .where(Rating.campaign_id == c.id)).scalar_one()
            n_per = c.ratings_per_item
        st = pd.DataFrame(status, columns=["item", "rater", "status"])
        it = pd.DataFrame(items, columns=["item", "item_id", "is_gold"]).set_index("item")
        counts = st.groupby(["item", "status"]).size().unstack(fill_value=0)
        it["n_ratings"] = counts.get("done", pd.Series(dtype=int)).reindex(it.index).fillna(0)
        it["n_skipped"] = counts.get("skipped", pd.Series(dtype=int)).reindex(it.index).fillna(0)
        it[["n_ratings", "n_skipped"]] = it[["n_ratings", "n_skipped"]].astype(np.int64)
        it["complete"] = it["n_ratings"] >= n_per
        per_rater = st.groupby(["rater", "status"]).size().unstack(fill_value=0)
        rt = pd.DataFrame(raters, columns=["rater", "rater_id"]).set_index("rater")
        for s in ("done", "skipped", "open"):
            rt[s] = per_rater.get(s, pd.Series(dtype=int)).reindex(rt.index).fillna(0)
            rt[s] = rt[s].astype(np.int64)
        regular = ~it["is_gold"]
        return CampaignProgress(n_items=int(regular.sum()),
                                n_complete=int(it.loc[regular, "complete"].sum()),
                                n_ratings=int(n_ratings), n_raters=len(rt),
                                items=it.reset_index(drop=True), raters=rt.reset_index(drop=True))

    def agreement(self, campaign: int | str, *, min_items: int = 3
                  ) -> aggregate.AgreementReport:
        """Krippendorff's α per scale and campaign mean, each rater's leave-one-out agreement
        and gold score, computed now from the store."""
        ratings = self.ratings(campaign)
        scales = self.settings(campaign)["scales"]
        return aggregate.agreement_report(ratings, scales, self.gold(campaign),
                                          min_items=min_items)

    def soft_labels(self, campaign: int | str, scale: str, *, method: str = "mean"
                    ) -> pd.DataFrame:
        """One soft label per item (rows in item order, NaN where unrated).

        method "mean": SPEC §1 (vote fractions / mean Likert soft label); "weighted":
        Dawid–Skene posterior (categories) or bias-corrected mean (Likert).
        Columns: the scale's class names (likert: "low", "high").
        """
        if method not in ("mean", "weighted"):
            raise ValueError(f"method must be 'mean' or 'weighted', got {method!r}")
        scales = self.settings(campaign)["scales"]
        if scale not in scales:
            raise ValueError(f"scale must be one of {sorted(scales)}, got {scale!r}")
        ids = self.items(campaign)["item_id"].tolist()
        ratings = self.ratings(campaign)
        meta = as_scale(scales[scale], f"scales[{scale!r}]")
        y = (aggregate.soft_labels(ratings, ids, {scale: meta})[scale] if method == "mean"
             else aggregate.weighted_soft_labels(ratings, ids, scale, meta))
        cols = meta.class_names
        if y.shape[1] != len(cols):  # FER+ rule dropped unknown / not-a-face
            cols = cols[: y.shape[1]]
        return pd.DataFrame(y, index=pd.Index(ids, name="item_id"), columns=cols)

    def export(self, campaign: int | str, out: str | os.PathLike, *, format: str = "dataset",
               overwrite: bool = False, link: bool = True) -> Path:
        """Write the campaign's result: "dataset" (SPEC §7 directory that ``affectlab train``
        reads; media hard-linked when possible, else copied), "csv" (ratings long table) or
        "jsonl" (one line per item with its ratings and soft labels)."""
        from affectlab.annotate import export as _export
        return _export.export_campaign(self, campaign, out, format=format, overwrite=overwrite,
                                       link=link)


_OWNER_KEY = object()


def open_owner(store: Store, password: str, *, secrets_file: str | os.PathLike | None = None
               ) -> OwnerSession:
    """The owner's session, after checking the admin password (raises AccessDenied)."""
    check_admin_password(store, password, secrets_file=secrets_file)
    return OwnerSession(store, _key=_OWNER_KEY)


def _jsonable(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, float) and not math.isfinite(v):
            v = None
        out[str(k)] = v
    return out
