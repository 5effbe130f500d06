"""Annotate: the rating page for raters (invite link ``?campaign=<token>``, then ``&r=<rater>``
so a reload resumes) and, without a token, the campaign owner's page (signed in: see
affectlab.app.signin): create campaigns, watch progress and agreement, see and revoke raters,
see problems, preview soft labels, export.

A rater's browser only ever holds a RatingFlow over a RaterSession: no owner call is reachable
in rater mode. Its sessions carry the server's rate limits (affectlab.annotate.limits): new
names per client address (affectlab.app.client) and invite link, and a human's submit pace
(a refused submit keeps the item, with a "slow down" notice). Rater-facing code is
:func:`rater_page` and what it calls (a page guard can call it). The rating widgets live in
a fragment, so a click reruns only them; no exception's details ever reach a rater (a generic
message with Skip; details in the owner's Problems and the server log).
"""

import logging
import tempfile
import traceback
from pathlib import Path

import streamlit as st

from affectlab.aggregators import AGGREGATORS, describe_aggregator
from affectlab.annotate import (
    AccessDenied,
    RateLimited,
    RaterRevoked,
    ResumeCodeRequired,
    Store,
    invite_link,
    join_campaign,
    resume_rater,
)
from affectlab.annotate.export import train_command
from affectlab.annotate.limits import SUBMIT_LIMIT
from affectlab.app import signin
from affectlab.app.client import client_key
from affectlab.data.catalog import list_datasets
from affectlab.pages.annotate_flow import CLOSED_NOTICE, RatingFlow
from affectlab.pages.annotate_view import (
    INVALID_LINK,
    campaign_by_token,
    coverage_histogram,
    default_scales,
    invite_base_url,
    rater_fraction,
    scale_options,
    shortcut_script,
)
from affectlab.paths import NAME_RULE, child_path, datasets_dir

logger = logging.getLogger("affectlab.app.annotate")

FLOW = "annotate_flow"          # the rater's RatingFlow
NEW_CODE = "annotate_new_code"  # the resume code issued at this session's join (shown once)
PAGE_RUNS = "annotate_page_runs"  # full runs of the rating page (not fragment reruns)
INVITE = "annotate_invite"      # (campaign name, token) shown once after create / rotate
RATER_LINK = "r"                # the query parameter holding the rater's link token
LINK_ENDED = ("This rating link no longer works (the rater was revoked or the campaign "
              "closed).")
PAGE_FAILED = ("Something went wrong on our side; your ratings so far are saved. Skip this "
               "item, or reload the page.")


def _store() -> Store:
    """One Store (engine and connection pool) per database URL for the whole server."""
    return signin.store()


def _pick_key(scale: str, i: int) -> str:
    return f"pick_{scale}_{i}"


# ------------------------------------------------------------------------------ rater view
def _join(token: str) -> None:
    name = st.session_state.get("annotate_name", "")
    code = (st.session_state.get("annotate_code") or "").strip() or None
    try:
        rater = join_campaign(_store(), token, name, code, client=client_key(),
                              submit_limit=SUBMIT_LIMIT)
    except (ResumeCodeRequired, RaterRevoked, RateLimited) as exc:
        st.session_state["annotate_msg"] = str(exc).capitalize() + "."
        return
    except AccessDenied:
        st.session_state["annotate_msg"] = INVALID_LINK
        return
    except (ValueError, TypeError) as exc:
        st.session_state["annotate_msg"] = f"Please check your name: {exc}"
        return
    flow = RatingFlow(rater)
    flow.start()
    st.session_state[FLOW] = flow
    st.session_state[NEW_CODE] = rater.resume_code
    st.query_params[RATER_LINK] = rater.link_token  # a reload resumes from the address


def _held_flow(link: str | None) -> RatingFlow | None:
    """The rater of this browser session: held, or resumed from the address's link token."""
    held = st.session_state.get(FLOW)
    if held is not None and link in (None, held.rater.link_token):
        return held
    if link is None:
        return None
    try:
        rater = resume_rater(_store(), link, submit_limit=SUBMIT_LIMIT)
    except AccessDenied:
        st.session_state["annotate_msg"] = LINK_ENDED
        del st.query_params[RATER_LINK]
        return None
    flow = RatingFlow(rater)
    flow.start()
    st.session_state[FLOW] = flow
    return flow


def _join_form(token: str) -> None:
    try:
        info = campaign_by_token(_store(), token)
    except AccessDenied:
        st.error(INVALID_LINK)
        return
    st.title(f"Rate: {info.name}")
    msg = st.session_state.pop("annotate_msg", None)
    if msg:
        st.error(msg)
    with st.form("annotate_join"):
        st.text_input("Your name (used to resume later)", key="annotate_name", max_chars=64)
        st.text_input("Resume code (only if you rated here before)", key="annotate_code",
                      max_chars=40, help="Given to you when you first joined.")
        st.form_submit_button("Start rating", on_click=_join, args=(token,))


def _code_box() -> None:
    code = st.session_state.get(NEW_CODE)
    if code:
        st.info(f"Your resume code: **{code}**. Keep it: with your name it lets you continue "
                "on another device or browser (nobody else can rate under your name). "
                "Reloading this page resumes without it.")


def rater_page(token: str) -> None:
    """The rating page for the invite ``token`` (and the ``r`` link in the address). Raters
    see only this; every error shows a generic message (details go to the owner and the log)."""
    st.session_state[PAGE_RUNS] = st.session_state.get(PAGE_RUNS, 0) + 1
    try:
        flow = _held_flow(st.query_params.get(RATER_LINK))
        if flow is None:
            _join_form(token)
            return
        st.title(f"Rate: {flow.rater.campaign}")
        if flow.rater.instructions:
            with st.expander("Instructions", expanded=False):
                st.markdown(flow.rater.instructions)
        _code_box()
        # a value that only a full page run changes: the browser test reads it to show that a
        # click reran the fragment alone
        st.html(f'<span class="affectlab-page-run" data-run="{st.session_state[PAGE_RUNS]}">'
                '</span>')
        _rating_fragment(flow)
    except Exception as exc:  # noqa: BLE001  (a rater never sees a traceback)
        _rater_failure(exc)


def _rater_failure(exc: BaseException) -> None:
    """Log the error with its traceback, record it for the owner, show the generic message and
    a Skip button."""
    logger.exception("rating page failed: %s", exc)
    flow = st.session_state.get(FLOW)
    item = getattr(flow, "item", None) if flow is not None else None
    if flow is not None:
        try:
            flow.rater.report_problem(getattr(item, "item_id", None), traceback.format_exc())
        except Exception:  # noqa: BLE001  (recording is best effort; the log has it)
            logger.exception("could not record the rating page's failure")
    st.error(PAGE_FAILED)
    if item is not None:
        st.button("Skip (S)", key="annotate_skip_after_error", on_click=flow.skip)


@st.fragment
def _rating_fragment(flow: RatingFlow) -> None:
    try:
        _rating_widgets(flow)
    except Exception as exc:  # noqa: BLE001
        _rater_failure(exc)


def _rating_widgets(flow: RatingFlow) -> None:
    notice = flow.take_notice()
    if flow.closed:
        st.error(CLOSED_NOTICE)
        return
    if notice is not None:
        {"info": st.info, "warning": st.warning}.get(notice.level, st.error)(notice.text)
    progress, item = flow.progress, flow.item
    if progress is not None:
        rated, available = rater_fraction(progress, item is not None)
        st.progress(rated / available if available else 1.0,
                    text=f"{rated} of {available} items rated · {progress.skipped} skipped")
    if item is None:
        st.success("Nothing left to rate in this campaign. Thank you!")
        if flow.can_undo:
            st.button("Undo last (U)", key="annotate_undo", on_click=flow.undo)
        return
    what = "correcting your last item" if flow.correcting else f"item {item.item_id}"
    st.caption(f"{what} · signed in as {flow.rater.name} · keys: 1–9 choose, Enter submits, "
               "S skips, U undoes the last item")
    active = flow.active_scale
    pick_keys = ([] if active is None else
                 [_pick_key(active, i) for i in range(len(scale_options(item.scales[active])))])
    # keyboard shortcuts: a script that clicks the keyed buttons (see pages.annotate_view); sent first, so
    # it listens by the time the buttons appear
    st.html(shortcut_script(pick_keys, "annotate_submit", "annotate_skip", "annotate_undo"),
            unsafe_allow_javascript=True)
    left, right = st.columns([2, 3])
    with left:
        _media(flow, item)
    with right:
        _value_buttons(flow, item, active)
        c1, c2, c3 = st.columns(3)
        # never disabled: a quick digit-then-Enter reaches the browser before the rerun that
        # would enable it, and a disabled button swallows the click; submit names what is missing
        c1.button("Submit (Enter)", key="annotate_submit", on_click=flow.submit,
                  type="primary" if flow.ready else "secondary", width="stretch")
        c2.button("Back (S)" if flow.correcting else "Skip (S)", key="annotate_skip",
                  on_click=flow.skip, width="stretch")
        if flow.can_undo and not flow.correcting:
            c3.button("Undo last (U)", key="annotate_undo", on_click=flow.undo, width="stretch")


def _media(flow: RatingFlow, item) -> None:
    try:
        if item.modality == "speech":
            st.audio(str(item.media_path))
        else:
            st.image(str(item.media_path), width=320)
    except Exception as exc:  # noqa: BLE001  (served items passed a decode check; still)
        logger.exception("item %s: media failed on the page", item.item_id)
        flow.media_failed(f"{item.media_path}: the page could not show it ({exc!r})")
        st.rerun(scope="fragment")


def _value_buttons(flow: RatingFlow, item, active: str | None) -> None:
    for scale in item.pending:
        marker = " ← keys 1–9" if scale == active else ""
        st.markdown(f"**{scale}**{marker}")
        options = scale_options(item.scales[scale])
        per_row = len(options) if len(options) <= 5 else 4  # class names need room to show
        for i, (value, label) in enumerate(options):
            if i % per_row == 0:
                cols = st.columns(per_row)
            chosen = flow.picks.get(scale) == value
            cols[i % per_row].button(label, key=_pick_key(scale, i), on_click=flow.choose,
                                     args=(scale, value),
                                     type="primary" if chosen else "secondary", width="stretch")


# ------------------------------------------------------------------------------ owner view
def _settings_form(key: str) -> dict:
    c1, c2, c3, c4 = st.columns(4)
    n = c1.number_input("Ratings per item", 1, 50, 3, key=f"{key}_n")
    cap = c2.number_input("Adaptive cap (max ratings)", 1, 100, int(n), key=f"{key}_cap",
                          help="Disputed items get extra ratings up to this many.")
    gold = c3.slider("Gold rate", 0.0, 0.5, 0.0, 0.05, key=f"{key}_gold",
                     help="Needs items with known answers; leave at 0 otherwise.")
    dis = c4.slider("Min. disagreement for extra ratings", 0.0, 1.0, 0.3, 0.05,
                    key=f"{key}_dis")
    text = st.text_area("Instructions for raters", key=f"{key}_instr",
                        value="Rate the emotion you perceive. Use the keys 1–9, Enter, S.")
    return {"ratings_per_item": int(n), "max_ratings": max(int(cap), int(n)),
            "gold_rate": float(gold), "min_disagreement": float(dis), "instructions": text}


def _create_tab(owner) -> None:
    source = st.radio("Items from", ["A dataset in the catalog", "Uploaded files"],
                      horizontal=True, key="annotate_source")
    name = st.text_input("Campaign name", key="annotate_new_name")
    if source == "A dataset in the catalog":
        datasets = list_datasets()
        if not datasets:
            st.info(f"No dataset under {datasets_dir()}: generate one on the Data page or "
                    "upload files.")
            return
        labels = {f"{d.name} ({d.modality}, {d.n_items or '?'} items)": d for d in datasets}
        chosen = labels[st.selectbox("Dataset", list(labels), key="annotate_dataset")]
        scales = st.multiselect("Scales", ["category", "valence", "activation"],
                                default=["category"], key="annotate_scales_ds")
        settings = _settings_form("ds")
        if st.button("Create campaign", key="annotate_create_ds", type="primary"):
            _create_campaign(lambda: owner.create_campaign(name, chosen.path, scales=scales,
                                                           **settings))
    else:
        modality = st.radio("Modality", ["face", "speech"], horizontal=True,
                            key="annotate_up_modality")
        files = st.file_uploader("Media files (the file name is the item id)",
                                 accept_multiple_files=True, key="annotate_files")
        scales = st.multiselect("Scales", ["category", "valence", "activation"],
                                default=["category"], key="annotate_scales_up")
        settings = _settings_form("up")
        if st.button("Create campaign", key="annotate_create_up", type="primary"):
            _create_campaign(lambda: owner.create_campaign_from_files(
                name, [(f.name, f.getvalue()) for f in files or []], modality=modality,
                scales=default_scales(scales), **settings))


@signin.owner_only
def _create_campaign(create) -> None:
    """Run ``create()`` (→ Invite); on success keep its invite for the Campaigns tab and say so,
    else show why nothing was created."""
    try:
        invite = create()
    except (ValueError, TypeError, OSError) as exc:
        st.error(f"Campaign not created: {exc}")
        return
    st.session_state[INVITE] = (invite.name, invite.token)
    st.success(f"Campaign {invite.name!r} created: its invite link is in the Campaigns tab.")


def _invite_box(campaign: str) -> None:
    held = st.session_state.get(INVITE)
    try:
        default = invite_base_url(st.context.url)
    except (ValueError, AttributeError):
        default = invite_base_url(None)
    base = st.text_input("Page address for invite links", value=default,
                         key="annotate_base_url",
                         help="Change it when raters reach this server under another address.")
    if held and held[0] == campaign:
        st.markdown("**Invite link** (shown now only; only its hash is stored):")
        st.code(invite_link(held[1], base), language=None)
    else:
        st.caption("The invite link is shown once, when a campaign is created or its link "
                   "renewed. Renewing disables the old link.")


@st.fragment(run_every=5)
def _monitor(owner, campaign: str) -> None:
    progress = owner.progress(campaign)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Items complete", f"{progress.n_complete}/{progress.n_items}")
    c2.metric("Ratings", progress.n_ratings)
    c3.metric("Raters", progress.n_raters)
    c4.metric("Done", f"{100 * progress.fraction_complete:.0f}%")
    left, right = st.columns(2)
    with left:
        st.markdown("**Coverage**: items by number of finished ratings")
        st.bar_chart(coverage_histogram(progress), x="n_ratings", y="n_items")
    with right:
        st.markdown("**Raters**: items done / skipped, ratings, last seen")
        st.dataframe(owner.raters(campaign), hide_index=True, key="annotate_raters_table")
    if progress.n_broken:
        st.warning(f"{progress.n_broken} item(s) cannot be shown (undecodable media) and are "
                   "skipped for everyone: see Problems below.")
    report = owner.agreement(campaign)
    st.markdown("**Agreement** (Krippendorff's α)")
    cols = st.columns(max(1, len(report.alpha)) + 1)
    for col, (scale, alpha) in zip(cols, report.alpha.items(), strict=False):
        col.metric(f"α {scale} ({report.levels[scale]})",
                   "n/a" if alpha != alpha else f"{alpha:.3f}")
    cols[-1].metric("α mean", "n/a" if report.alpha_mean != report.alpha_mean
                    else f"{report.alpha_mean:.3f}")
    st.markdown("Per rater, leave-one-out agreement (and gold score)")
    st.dataframe(report.raters, hide_index=True, key="annotate_loo_table")


_AGGREGATOR_HELP = ("votes (the default) measured closest to the true distributions on the "
                    "generated corpus; MACE / one-coin DS recover the dominant class better "
                    "when many raters spam (README, Crowd aggregation).")


def _aggregator_label(name: str) -> str:
    return f"{name}: {describe_aggregator(name)}"


def _export_box(owner, campaign: str, scales: list[str]) -> None:
    st.markdown("**Soft labels**")
    c1, c2 = st.columns(2)
    scale = c1.selectbox("Scale", scales, key="annotate_soft_scale")
    method = c2.selectbox("Aggregator", AGGREGATORS, key="annotate_soft_method",
                          format_func=_aggregator_label, help=_AGGREGATOR_HELP)
    st.dataframe(owner.soft_labels(campaign, scale, method=method).head(50),
                 key="annotate_soft_table")
    st.markdown("**Export**")
    e1, e2 = st.columns(2)
    target = e1.text_input("Dataset name", value=f"{campaign}-ratings",
                           key="annotate_export_name", help=f"the dataset's folder: {NAME_RULE}")
    aggregator = e2.selectbox("Soft labels of the exported dataset", AGGREGATORS,
                              key="annotate_export_aggregator", format_func=_aggregator_label,
                              help="written to its meta.json: training and the Data page "
                                   "derive its soft labels this way. " + _AGGREGATOR_HELP)
    if st.button("Export to the datasets directory", key="annotate_export"):
        _export(owner, campaign, target, aggregator)
    if st.button("Prepare CSV / JSON-lines downloads", key="annotate_prepare"):
        with tempfile.TemporaryDirectory() as tmp:
            st.session_state["annotate_files_ready"] = (campaign, {
                fmt: Path(owner.export(campaign, Path(tmp) / f"ratings.{fmt}",
                                       format=fmt)).read_bytes()
                for fmt in ("csv", "jsonl")})
    ready = st.session_state.get("annotate_files_ready")
    if ready and ready[0] == campaign:
        d1, d2 = st.columns(2)
        d1.download_button("ratings.csv", ready[1]["csv"], f"{campaign}.csv", "text/csv",
                           key="annotate_dl_csv")
        d2.download_button("items.jsonl", ready[1]["jsonl"], f"{campaign}.jsonl",
                           "application/jsonl", key="annotate_dl_jsonl")


@signin.owner_only
def _export(owner, campaign: str, target: str, aggregator: str) -> None:
    try:  # a name, never a path: one folder under the datasets directory
        path = owner.export(campaign, child_path(datasets_dir(), target, "dataset name"),
                            overwrite=False, aggregator=aggregator)
    except (ValueError, FileExistsError, OSError) as exc:
        st.error(f"Not exported: {exc}")
    else:
        command = train_command(path, owner.settings(campaign)["modality"])
        st.success(f"Exported to {path}: pick it on the Train page, or run `{command}`.")


@signin.owner_only
def _rotate(owner, campaign: str) -> None:
    st.session_state[INVITE] = (campaign, owner.rotate_token(campaign))


@signin.owner_only
def _toggle(owner, campaign: str, active: bool) -> None:
    owner.set_active(campaign, active)


def _campaign_tab(owner) -> None:
    table = owner.campaigns()
    if table.empty:
        st.info("No campaign yet: create one in the first tab.")
        return
    st.dataframe(table, hide_index=True, key="annotate_campaigns_table")
    names = table["name"].tolist()
    held = st.session_state.get(INVITE)
    index = names.index(held[0]) if held and held[0] in names else len(names) - 1
    campaign = st.selectbox("Campaign", names, index=index, key="annotate_campaign")
    settings = owner.settings(campaign)
    _invite_box(campaign)
    c1, c2 = st.columns(2)
    if c1.button("Renew invite link", key="annotate_rotate"):
        _rotate(owner, campaign)
        st.rerun()
    label = "Close campaign" if settings["active"] else "Reopen campaign"
    if c2.button(label, key="annotate_toggle"):
        _toggle(owner, campaign, not settings["active"])
        st.rerun()
    _monitor(owner, campaign)
    _raters_box(owner, campaign)
    _problems_box(owner, campaign)
    _export_box(owner, campaign, list(settings["scales"]))


def _raters_box(owner, campaign: str) -> None:
    raters = owner.raters(campaign)
    active = raters.loc[raters["status"] == "active", "rater_id"].tolist()
    if not active:
        return
    st.markdown("**Revoke a rater**: their link and resume code stop working at once; their "
                "ratings stay, flagged, and are left out of soft labels, agreement and export.")
    c1, c2 = st.columns([3, 1])
    name = c1.selectbox("Rater", active, key="annotate_revoke_name",
                        label_visibility="collapsed")
    if c2.button("Revoke", key="annotate_revoke"):
        _revoke(owner, campaign, name)
        st.rerun()


@signin.owner_only
def _revoke(owner, campaign: str, name: str) -> None:
    owner.revoke_rater(campaign, name)


def _problems_box(owner, campaign: str) -> None:
    problems = owner.problems(campaign)
    if problems.empty:
        return
    st.markdown(f"**Problems** ({len(problems)}): media that cannot be decoded (the item is "
                "skipped for everyone) and rating-page errors. Raters saw a generic message.")
    st.dataframe(problems, hide_index=True, key="annotate_problems_table")


def owner_view() -> None:
    owner = signin.owner_annotate_session()  # the sign-in form and a stop for anyone else
    st.title("Annotate")
    create, manage = st.tabs(["New campaign", "Campaigns"])
    with create:
        _create_tab(owner)
    with manage:
        _campaign_tab(owner)


token = st.query_params.get("campaign")
if token is not None:
    rater_page(token)
else:
    owner_view()
