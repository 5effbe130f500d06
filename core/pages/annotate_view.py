"""What the Annotate page shows, computed without Streamlit: button options per scale, the
keyboard-shortcut script, progress fractions, the coverage histogram, the invite base URL.

The page (``app/views/annotate.py``) only lays these out as widgets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pandas as pd
from sqlalchemy import func, select

from affectlab.annotate.access import AccessDenied, hash_token
from affectlab.annotate.service import CampaignProgress, RaterProgress
from affectlab.annotate.store import Campaign, Item, Store
from affectlab.data.synth.truth import CATEGORIES
from affectlab.scales import IntervalScale, NominalScale, as_scale

__all__ = [
    "DEFAULT_BASE_URL",
    "INVALID_LINK",
    "CampaignInfo",
    "campaign_by_token",
    "coverage_histogram",
    "default_scales",
    "elapsed_seconds",
    "invite_base_url",
    "rater_fraction",
    "scale_options",
    "shortcut_script",
]

INVALID_LINK = "This invite link is not valid or the campaign is closed."
DEFAULT_BASE_URL = "http://localhost:8501"
PAGE_PATH = "annotate"
MAX_SHORTCUT_OPTIONS = 9  # digits 1..9


@dataclass(frozen=True)
class CampaignInfo:
    """What a rater may learn from an invite token before joining: the campaign's name, modality,
    instructions and item count (nothing about other campaigns or raters)."""

    name: str
    modality: str
    instructions: str
    n_items: int


def campaign_by_token(store: Store, token: Any) -> CampaignInfo:
    """The open campaign behind ``token``; raises AccessDenied (message :data:`INVALID_LINK`)
    for an unknown, malformed or revoked token or a closed campaign."""
    if not isinstance(token, str) or not token.strip() or len(token) > 256:
        raise AccessDenied(INVALID_LINK)
    digest = hash_token(token.strip())
    with store.read() as session:
        row = session.execute(select(Campaign.id, Campaign.name, Campaign.modality,
                                     Campaign.instructions, Campaign.active)
                              .where(Campaign.token_hash == digest)).first()
        if row is None or not row.active:
            raise AccessDenied(INVALID_LINK)
        n = session.execute(select(func.count()).select_from(Item)
                            .where(Item.campaign_id == row.id, Item.is_gold.is_(False))
                            ).scalar_one()
    return CampaignInfo(row.name, row.modality, row.instructions or "", int(n))


def scale_options(meta: Mapping[str, Any]) -> list[tuple[float, str]]:
    """The buttons of one scale as (stored value, label): Likert low..high as "1".."5",
    nominal / ordinal classes as (index, class name). Raises ValueError for a Likert scale with
    non-integer ends (it has no button row) or more than 11 points."""
    try:
        scale = as_scale(meta, "meta")
    except TypeError as exc:
        raise ValueError(f"meta must be a scale definition with a 'type', got {meta!r}") from exc
    if scale.categorical:
        return [(float(i), n) for i, n in enumerate(scale.class_names)]
    lo, hi = scale.value_range()
    if not (lo.is_integer() and hi.is_integer()) or not 0 < hi - lo <= 10:
        raise ValueError(f"meta: a likert scale needs integer ends at most 10 apart for "
                         f"buttons, got low={lo:g}, high={hi:g}")
    return [(float(v), str(v)) for v in range(int(lo), int(hi) + 1)]


def default_scales(chosen: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Scale definitions for an upload campaign: "category" (the 7 categories), "valence" and
    "activation" (Likert 1..5). ``chosen``: a non-empty subset of those names."""
    likert = IntervalScale(type="likert", low=1, high=5).to_json()
    known = {"category": NominalScale(names=list(CATEGORIES)).to_json(),
             "valence": likert, "activation": dict(likert)}
    unknown = [c for c in chosen if c not in known]
    if not chosen or unknown:
        raise ValueError(f"chosen must be a non-empty subset of {sorted(known)}, got {chosen!r}")
    return {c: known[c] for c in chosen}


def rater_fraction(progress: RaterProgress, has_current: bool) -> tuple[int, int]:
    """(items rated, items available to this rater): the rated ones, the one on screen and the
    unseen ones that still need ratings."""
    available = progress.done + progress.remaining + (1 if has_current else 0)
    return progress.done, max(available, progress.done)


def coverage_histogram(progress: CampaignProgress) -> pd.DataFrame:
    """How many regular items hold 0, 1, 2, … finished ratings: columns n_ratings, n_items
    (every count from 0 to the maximum present, zeros included)."""
    items = progress.items[~progress.items["is_gold"].astype(bool)]
    top = int(items["n_ratings"].max()) if len(items) else 0
    counts = items["n_ratings"].value_counts().reindex(range(top + 1), fill_value=0)
    return pd.DataFrame({"n_ratings": counts.index.astype(int), "n_items": counts.to_numpy()})


def invite_base_url(page_url: str | None, default: str = DEFAULT_BASE_URL) -> str:
    """The rating page's address for invite links: the page's own URL without query or
    fragment, ending in ``/annotate``; ``default`` (the server root) when the URL is unknown."""
    url = (page_url or "").strip() or default
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"page_url must be an http(s) URL, got {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/" + PAGE_PATH):
        path = f"{path}/{PAGE_PATH}"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def shortcut_script(pick_keys: Sequence[str], submit_key: str, skip_key: str,
                    undo_key: str | None = None) -> str:
    """An HTML snippet for ``st.html(..., unsafe_allow_javascript=True)``: digits 1..9 click
    the buttons whose widget keys are ``pick_keys`` (in order), Enter clicks ``submit_key``, S
    clicks ``skip_key``, U clicks ``undo_key`` (when given and on screen).

    It listens on the page's document (``window.parent`` is the page itself outside an iframe,
    and the same-origin page inside a components iframe) and finds buttons by
    the ``st-key-<key>`` class Streamlit puts on keyed elements. Keys typed into a text field
    are ignored; the listener installed by the previous rerun is removed first.
    """
    if len(pick_keys) > MAX_SHORTCUT_OPTIONS:
        pick_keys = list(pick_keys)[:MAX_SHORTCUT_OPTIONS]
    config = json.dumps({"picks": list(pick_keys), "submit": submit_key, "skip": skip_key,
                         "undo": undo_key})
    return f"""<script>
(function() {{
  const cfg = {config};
  const doc = window.parent.document;
  const win = window.parent;
  if (win.__affectlabKeys) doc.removeEventListener("keydown", win.__affectlabKeys, true);
  function press(key) {{
    const el = doc.querySelector(".st-key-" + key + " button");
    if (el && !el.disabled) {{ el.click(); return true; }}
    return false;
  }}
  win.__affectlabKeys = function(ev) {{
    const t = ev.target;
    const tag = t && t.tagName ? t.tagName.toLowerCase() : "";
    if (tag === "input" || tag === "textarea" || (t && t.isContentEditable)) return;
    if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
    let done = false;
    if (/^[1-9]$/.test(ev.key)) {{
      const k = cfg.picks[parseInt(ev.key, 10) - 1];
      if (k) done = press(k);
    }} else if (ev.key === "Enter") {{
      done = press(cfg.submit);
    }} else if (ev.key === "s" || ev.key === "S") {{
      done = press(cfg.skip);
    }} else if ((ev.key === "u" || ev.key === "U") && cfg.undo) {{
      done = press(cfg.undo);
    }}
    if (done) ev.preventDefault();
  }};
  doc.addEventListener("keydown", win.__affectlabKeys, true);
}})();
</script>"""


def elapsed_seconds(shown_at: float | None, now: float) -> float | None:
    """Seconds between showing an item and submitting it (None when unknown, never negative)."""
    if shown_at is None or not math.isfinite(shown_at):
        return None
    return max(0.0, float(now) - float(shown_at))
