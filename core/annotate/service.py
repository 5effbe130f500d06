"""The annotation service: what the rating page and the owner page may call.

Two kinds of session, each bound to who opened it, so a page cannot act beyond its rights:

- :func:`join_campaign` (token, name, resume code) or :func:`resume_rater` (the rater's link
  token) → :class:`RaterSession`: one rater in one campaign (module :mod:`.rater`). It reads
  and writes only its own ratings: ``next_item()``, ``submit()``, ``skip()``,
  ``correct_last()``, ``progress()``, ``my_ratings()``. A name is taken by its first join;
  joining again under it needs the resume code given then.
- :func:`open_owner` (admin password) → :class:`OwnerSession`: create campaigns (from a
  dataset directory or uploaded media), follow progress, raters (and revoke them), problems
  (undecodable media, page errors), agreement, soft labels, export.

Ratings of a revoked rater stay in the store and in :meth:`OwnerSession.ratings` (column
``rater_revoked``); soft labels, agreement and the dataset / JSON-lines exports leave them out.
Broken items (media that cannot be decoded) are left out of the exported dataset.

Errors: :class:`~affectlab.annotate.access.AccessDenied` for a bad password, token or resume
code, a closed campaign or a revoked rater; ValueError / TypeError naming the argument for
malformed input (value outside the scale, NaN, unknown item or scale);
:class:`DuplicateRatingError` when a rater re-submits a different value for a scale they already
rated (re-submitting the same value is a no-op; a correction goes through ``correct_last``);
:class:`RateLimited` when a client joins under too many new names or a rater submits faster
than a human (see :mod:`.rater`).
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from affectlab.aggregators import AGGREGATORS, DEFAULT_AGGREGATOR, aggregate_soft_labels
from affectlab.annotate import aggregate
from affectlab.annotate.access import (
    check_admin_password,
    hash_token,
    invite_link,
    new_token,
)
from affectlab.annotate.assign import release
from affectlab.annotate.checks import (
    DuplicateRatingError,
    check_scales,
    check_value,
)
from affectlab.annotate.export import CampaignData, check_format, export_campaign
from affectlab.annotate.rater import (
    ItemUnavailable,
    ItemView,
    RateLimited,
    RaterProgress,
    RaterSession,
    join_campaign,
    resume_rater,
)
from affectlab.annotate.signin import OwnerGrant, require_grant
from affectlab.annotate.store import (
    Assignment,
    Campaign,
    GoldAnswer,
    Incident,
    Item,
    Rater,
    Rating,
    Store,
    utcnow,
)
from affectlab.data.contract import MODALITIES, DatasetDir, load_dataset
from affectlab.data.schema import default_label_set
from affectlab.paths import child_path, data_dir, make_product_dir, safe_name
from affectlab.scales import as_scale

__all__ = [
    "CampaignProgress",
    "DuplicateRatingError",
    "Invite",
    "ItemUnavailable",
    "ItemView",
    "OwnerSession",
    "RateLimited",
    "RaterProgress",
    "RaterSession",
    "check_scales",
    "check_value",
    "join_campaign",
    "open_owner",
    "owner_session",
    "resume_rater",
]

MEDIA_EXTENSIONS = {"face": (".png", ".jpg", ".jpeg", ".bmp", ".webp"),
                    "speech": (".wav", ".flac", ".ogg", ".mp3")}


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
    """items: one row per item (item_id, is_gold, n_ratings (finished), n_skipped, complete,
    broken); raters: one row per rater (rater_id, done, skipped, open). ``n_items`` counts the
    regular items that can be rated (gold and broken ones are not), ``n_broken`` the broken."""

    n_items: int
    n_complete: int
    n_ratings: int
    n_raters: int
    items: pd.DataFrame
    raters: pd.DataFrame
    n_broken: int = 0

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
        root = child_path(data_dir() / "annotate", name, "campaign name")  # one contained folder
        if root.exists() and any(root.iterdir()):
            raise FileExistsError(f"{root} already exists; choose another campaign name")
        media = make_product_dir(root) / "media"
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
        name = safe_name(name, "campaign name")  # it names folders and exports too
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

    # ------------------------------------------------------------------ raters
    def raters(self, campaign: int | str) -> pd.DataFrame:
        """One row per rater: rater_id (the name), status ("active" / "revoked"), done (items
        finished), skipped, ratings (stored values), joined, last_seen (the latest join,
        assignment or rating)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            raters = session.execute(select(Rater.id, Rater.name, Rater.revoked_at,
                                            Rater.created_at)
                                     .where(Rater.campaign_id == c.id).order_by(Rater.id)).all()
            asg = session.execute(select(Assignment.rater_id, Assignment.status, func.count(),
                                         func.max(Assignment.assigned_at))
                                  .where(Assignment.campaign_id == c.id)
                                  .group_by(Assignment.rater_id, Assignment.status)).all()
            rated = dict(session.execute(select(Rating.rater_id, func.max(Rating.created_at))
                                         .where(Rating.campaign_id == c.id)
                                         .group_by(Rating.rater_id)).all())
            n_rated = dict(session.execute(select(Rating.rater_id, func.count())
                                           .where(Rating.campaign_id == c.id)
                                           .group_by(Rating.rater_id)).all())
        counts = {(r, s): n for r, s, n, _ in asg}
        seen: dict[int, Any] = {}
        for r, _, _, last in asg:
            seen[r] = max(seen.get(r, last), last)
        rows = [{"rater_id": name, "status": "revoked" if revoked is not None else "active",
                 "done": counts.get((rid, "done"), 0), "skipped": counts.get((rid, "skipped"), 0),
                 "ratings": n_rated.get(rid, 0), "joined": joined,
                 "last_seen": max(x for x in (joined, seen.get(rid), rated.get(rid)) if x)}
                for rid, name, revoked, joined in raters]
        return pd.DataFrame(rows, columns=["rater_id", "status", "done", "skipped", "ratings",
                                           "joined", "last_seen"])

    def revoke_rater(self, campaign: int | str, name: str) -> bool:
        """Revoke the rater ``name``: their link and resume code stop working at once (every
        rater call checks), their open items go back to the pool, their ratings stay (flagged,
        left out of labels). Returns False when they were revoked already."""
        now = utcnow()
        with self._store.write() as session:
            c = self._get(session, campaign)
            rater = session.execute(select(Rater).where(Rater.campaign_id == c.id,
                                                        Rater.name == name)
                                    ).scalar_one_or_none()
            if rater is None:
                raise ValueError(f"campaign {c.name!r} has no rater named {name!r}")
            if rater.revoked_at is not None:
                return False
            rater.revoked_at = now
            opened = session.execute(
                update(Assignment).where(Assignment.rater_id == rater.id,
                                         Assignment.status == "open")
                .values(status="expired", finished_at=now)
                .returning(Assignment.item_id)).scalars().all()
            conn = session.connection()
            for item_id in opened:
                release(conn, item_id)
        return True

    def problems(self, campaign: int | str) -> pd.DataFrame:
        """What raters ran into, newest first: at, kind ("media": an item's media cannot be
        decoded, the item is skipped for everyone; "page": the rating page failed), item_id,
        rater_id (name), detail (the error; raters saw a generic message only)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(
                select(Incident.at, Incident.kind, Incident.item_key, Rater.name, Incident.detail)
                .outerjoin(Rater, Rater.id == Incident.rater_id)
                .where(Incident.campaign_id == c.id)
                .order_by(Incident.at.desc(), Incident.id.desc())).all()
        return pd.DataFrame(rows, columns=["at", "kind", "item_id", "rater_id", "detail"])

    # ------------------------------------------------------------------ read
    def ratings(self, campaign: int | str) -> pd.DataFrame:
        """The long table: item_id, rater_id (the rater's name), scale, value (the current one:
        a correction replaces it), timestamp, time_spent, is_gold, rater_revoked (the owner
        revoked the rater: kept here, left out of labels)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(
                select(Item.item_key, Rater.name, Rating.scale, Rating.value,
                       Rating.created_at, Rating.time_spent, Item.is_gold,
                       Rater.revoked_at.is_not(None))
                .join(Item, Item.id == Rating.item_id).join(Rater, Rater.id == Rating.rater_id)
                .where(Rating.campaign_id == c.id).order_by(Rating.id)).all()
        table = pd.DataFrame(rows, columns=["item_id", "rater_id", "scale", "value", "timestamp",
                                            "time_spent", "is_gold", "rater_revoked"])
        table["rater_revoked"] = table["rater_revoked"].astype(bool)
        return table

    def label_ratings(self, campaign: int | str) -> pd.DataFrame:
        """:meth:`ratings` without those of revoked raters (and without the flag): what soft
        labels, agreement and the exports use."""
        table = self.ratings(campaign)
        return table[~table["rater_revoked"]].drop(columns="rater_revoked").reset_index(drop=True)

    def items(self, campaign: int | str) -> pd.DataFrame:
        """The campaign's items: item_id, media (relative to media_root), is_gold, broken (why
        the media cannot be decoded, None when fine), then the dataset's other columns (split,
        domain, truth, …)."""
        with self._store.read() as session:
            c = self._get(session, campaign)
            rows = session.execute(select(Item.item_key, Item.media, Item.is_gold, Item.broken,
                                          Item.extra)
                                   .where(Item.campaign_id == c.id).order_by(Item.position)
                                   ).all()
        base = pd.DataFrame([(k, m, g, b) for k, m, g, b, _ in rows],
                            columns=["item_id", "media", "is_gold", "broken"])
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
            items = session.execute(select(Item.id, Item.item_key, Item.is_gold,
                                           Item.broken.is_not(None))
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
        it = pd.DataFrame(items, columns=["item", "item_id", "is_gold", "broken"]
                          ).set_index("item")
        it["broken"] = it["broken"].astype(bool)
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
        regular = ~it["is_gold"].astype(bool) & ~it["broken"]
        return CampaignProgress(n_items=int(regular.sum()),
                                n_complete=int(it.loc[regular, "complete"].sum()),
                                n_ratings=int(n_ratings), n_raters=len(rt),
                                items=it.reset_index(drop=True), raters=rt.reset_index(drop=True),
                                n_broken=int(it["broken"].sum()))

    def agreement(self, campaign: int | str, *, min_items: int = 3
                  ) -> aggregate.AgreementReport:
        """Krippendorff's α per scale and campaign mean, each rater's leave-one-out agreement
        and gold score, computed now from the store."""
        ratings = self.label_ratings(campaign)
        scales = self.settings(campaign)["scales"]
        return aggregate.agreement_report(ratings, scales, self.gold(campaign),
                                          min_items=min_items)

    def soft_labels(self, campaign: int | str, scale: str, *, method: str = "votes"
                    ) -> pd.DataFrame:
        """One soft label per item (rows in item order, NaN where unrated).

        method: an aggregator of :data:`affectlab.aggregators.AGGREGATORS` ("votes": SPEC §1
        vote fractions / mean Likert soft label; "ds", "one-coin", "glad", "mace": the model's
        posterior, Likert scales their bias-corrected mean), or the older names "mean"
        (= votes) and "weighted" (= ds). Columns: the scale's class names (likert: "low",
        "high").
        """
        aggregator = _METHOD_ALIASES.get(method, method)
        if aggregator not in AGGREGATORS:
            raise ValueError(f"method must be one of {', '.join(AGGREGATORS)} (or 'mean', "
                             f"'weighted'), got {method!r}")
        scales = self.settings(campaign)["scales"]
        if scale not in scales:
            raise ValueError(f"scale must be one of {sorted(scales)}, got {scale!r}")
        ids = self.items(campaign)["item_id"].tolist()
        ratings = self.label_ratings(campaign)
        meta = as_scale(scales[scale], f"scales[{scale!r}]")
        y = aggregate_soft_labels(ratings, ids, scale, meta, aggregator)
        cols = meta.class_names
        if y.shape[1] != len(cols):  # FER+ rule dropped unknown / not-a-face
            cols = cols[: y.shape[1]]
        return pd.DataFrame(y, index=pd.Index(ids, name="item_id"), columns=cols)

    def export(self, campaign: int | str, out: str | os.PathLike, *, format: str = "dataset",
               overwrite: bool = False, link: bool = True,
               aggregator: str = DEFAULT_AGGREGATOR) -> Path:
        """Write the campaign's result: "dataset" (SPEC §7 directory that ``affectlab train``
        reads; media hard-linked when possible, else copied; ``aggregator`` is written to its
        meta.json and decides the soft labels it trains on), "csv" (ratings long table) or
        "jsonl" (one line per item with its ratings and soft labels)."""
        check_format(format)  # before reading the campaign
        data = CampaignData(settings=self.settings(campaign), items=self.items(campaign),
                            ratings=self.ratings(campaign),
                            label_ratings=self.label_ratings(campaign))
        return export_campaign(data, out, format=format, overwrite=overwrite, link=link,
                               aggregator=aggregator)


_OWNER_KEY = object()
_METHOD_ALIASES = {"mean": "votes", "weighted": "ds"}


def open_owner(store: Store, password: str, *, secrets_file: str | os.PathLike | None = None
               ) -> OwnerSession:
    """The owner's session, after checking the admin password (raises AccessDenied)."""
    check_admin_password(store, password, secrets_file=secrets_file)
    return OwnerSession(store, _key=_OWNER_KEY)


def owner_session(store: Store, grant: OwnerGrant) -> OwnerSession:
    """The owner's session for a browser that signed in (:mod:`affectlab.annotate.signin`:
    password, one-time link or its session cookie); AccessDenied unless ``grant`` is live."""
    require_grant(grant)
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
