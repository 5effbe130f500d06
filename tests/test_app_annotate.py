"""The Annotate page under streamlit.testing.v1.AppTest: owner sign-in, campaign creation from a
generated dataset, two raters through the invite link, live progress and agreement, bad
passwords and tokens, export to a dataset the engine trains on. Plus the page's core helpers
and the server-side latency of one submit → next item (reported, not asserted)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from affectlab.annotate import AccessDenied, Store, join_campaign, limits, open_owner
from affectlab.annotate.service import CampaignProgress, RaterProgress
from affectlab.app import client
from affectlab.data.contract import load_dataset
from affectlab.data.synth.corpus import generate_corpus
from affectlab.pages.annotate_flow import CLOSED_NOTICE, SLOW_DOWN_NOTICE
from affectlab.pages.annotate_view import (
    INVALID_LINK,
    campaign_by_token,
    coverage_histogram,
    default_scales,
    elapsed_seconds,
    invite_base_url,
    rater_fraction,
    scale_options,
    shortcut_script,
)

ROOT = Path(__file__).resolve().parents[1]
PAGE = str(ROOT / "app" / "views" / "annotate.py")
HOME = str(ROOT / "app" / "Home.py")
PASSWORD = "annotate-page-secret"
PAGE_FAILED = ("Something went wrong on our side; your ratings so far are saved. Skip this "
               "item, or reload the page.")
TIMEOUT = 60


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """One generated 30-item face corpus per module, in the datasets directory."""
    root = tmp_path_factory.mktemp("annotate-page") / "affectlab-data"
    generate_corpus(modality="face", n=30, seed=0, n_domains=2, flip_rate=0.1,
                    out=root / "datasets" / "faces", overwrite=False, progress=False)
    return root


@pytest.fixture
def env(data_root, tmp_path, monkeypatch) -> Path:
    """A fresh store per test (its own SQLite file) over the shared corpus."""
    monkeypatch.setenv("AFFECTLAB_DATA", str(data_root))
    monkeypatch.setenv("AFFECTLAB_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    return data_root


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _act(at: AppTest, _widget) -> AppTest:
    """Run ``at`` after an interaction (click / select) queued on one of its widgets."""
    return _run(at)


def _owner_app() -> AppTest:
    at = _run(AppTest.from_file(PAGE, default_timeout=TIMEOUT))  # the owner's sign-in form
    at.text_input(key="signin_password").input(PASSWORD)
    return _act(at, at.button[0].click())


def _create(at: AppTest, name: str = "faces-1", n: int = 2) -> str:
    at.text_input(key="annotate_new_name").input(name)
    at.multiselect(key="annotate_scales_ds").set_value(["category", "valence"])
    at.number_input(key="ds_n").set_value(n)
    _act(at, at.button(key="annotate_create_ds").click())
    assert any("created" in s.value for s in at.success), [e.value for e in at.error]
    link = next(c.value for c in at.code if "campaign=" in c.value)
    return link.split("campaign=")[1]


def _rater_app(token: str, name: str, code: str | None = None) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["campaign"] = token
    _run(at)
    at.text_input(key="annotate_name").input(name)
    if code is not None:
        at.text_input(key="annotate_code").input(code)
    return _act(at, at.button[0].click())


def _reloaded(at: AppTest) -> AppTest:
    """A reload of ``at``'s page: a new browser session on the same address."""
    again = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in at.query_params.items():
        again.query_params[k] = v
    return _run(again)


def _resume_code(at: AppTest) -> str:
    box = next(i.value for i in at.info if "resume code" in i.value)
    return re.search(r"\*\*([A-Z0-9]{4}(?:-[A-Z0-9]{4}){3})\*\*", box).group(1)


def _texts(at: AppTest) -> list[str]:
    """Every text a rater can read on the page."""
    kinds = ("error", "warning", "info", "success", "markdown", "caption", "title", "code")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)] + [
        str(b.label) for b in at.button]


def _rate_current(at: AppTest, category: int, valence: int) -> None:
    _act(at, at.button(key=f"pick_category_{category}").click())
    _act(at, at.button(key=f"pick_valence_{valence - 1}").click())
    _act(at, at.button(key="annotate_submit").click())


def _metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


# ------------------------------------------------------------------------------- the page
def test_page_is_in_the_navigation(env):
    from app_support import open_home

    at = open_home(TIMEOUT)                               # the owner: every page
    _act(at, at.switch_page("views/annotate.py"))
    assert at.tabs and at.title[0].value == "Annotate"
    rater = AppTest.from_file(HOME, default_timeout=TIMEOUT)
    rater.query_params["campaign"] = "no-such-token"      # an invite link: /annotate?campaign=
    _run(rater)                                           # the rating page is all there is
    assert [e.value for e in rater.error] == [INVALID_LINK]
    assert not rater.text_input and not rater.tabs


def test_wrong_password_is_refused(env):
    at = _run(AppTest.from_file(PAGE, default_timeout=TIMEOUT))
    assert any("AFFECTLAB_ADMIN_PASSWORD" in i.value for i in at.info)  # says where it is
    at.text_input(key="signin_password").input("not it")
    _act(at, at.button[0].click())
    assert [e.value for e in at.error] == ["Wrong owner password."]
    assert not at.tabs


@pytest.mark.parametrize("token", ["nope", "x" * 43, "", "a b<script>"])
def test_bad_token_gets_a_clear_message_and_no_owner_view(env, token):
    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    at.query_params["campaign"] = token
    _run(at)
    assert [e.value for e in at.error] == [INVALID_LINK]
    assert not at.text_input and not at.tabs and not at.button


def test_owner_creates_raters_rate_owner_watches(env):
    owner = _owner_app()
    token = _create(owner)
    assert owner.text_input(key="annotate_base_url").value.endswith("/annotate")

    alice, bob = _rater_app(token, "alice"), _rater_app(token, "bob")
    for at in (alice, bob):
        assert at.title[0].value == "Rate: faces-1"
        assert "0 of 30" in at.get("progress")[0].proto.text
    first_a = alice.caption[0].value
    _rate_current(alice, 1, 4)
    assert "1 of 30" in alice.get("progress")[0].proto.text
    assert alice.caption[0].value != first_a                # the next item is on screen
    _rate_current(alice, 2, 2)
    _rate_current(bob, 1, 5)
    _act(bob, bob.button(key="annotate_skip").click())
    _rate_current(bob, 0, 1)
    assert "2 of" in bob.get("progress")[0].proto.text and "1 skipped" in \
        bob.get("progress")[0].proto.text
    # Submit is highlighted only once every scale is chosen; an early one names what is missing
    # and stores nothing
    assert bob.button(key="annotate_submit").proto.type == "secondary"
    _act(bob, bob.button(key="pick_category_0").click())
    assert bob.button(key="annotate_submit").proto.type == "secondary"
    _act(bob, bob.button(key="annotate_submit").click())
    assert any("Choose a value for: valence" in w.value for w in bob.warning)
    assert "2 of" in bob.get("progress")[0].proto.text

    # the owner's view: 4 ratings × 2 scales stored, 2 raters, α computed
    store = Store()
    ratings = open_owner(store, PASSWORD).ratings("faces-1")
    assert len(ratings) == 8 and set(ratings["rater_id"]) == {"alice", "bob"}
    assert (ratings["time_spent"] >= 0).all()
    _run(owner)
    assert _metric(owner, "Raters") == "2" and _metric(owner, "Ratings") == "8"
    assert any(m.label.startswith("α category") for m in owner.metric)
    raters = next(d.value for d in owner.dataframe if "done" in d.value.columns)
    assert dict(zip(raters["rater_id"], raters["done"], strict=True)) == {"alice": 2, "bob": 2}
    # raters never see another rater's ratings: their pages show only their own progress
    assert not alice.dataframe and not bob.dataframe
    store.dispose()


def test_rater_identity_reload_and_closed_campaign(env):
    owner = _owner_app()
    token = _create(owner, "faces-2")
    at = _rater_app(token, "carol")
    shown = at.caption[0].value
    code = _resume_code(at)                            # shown once, at the first join
    assert at.query_params.get("r")                    # the address now identifies carol
    reload = _reloaded(at)                             # a reload resumes: no name to type
    assert reload.caption[0].value == shown and not reload.text_input
    assert not any("resume code" in i.value for i in reload.info)
    # someone else types carol's name: refused, nothing to rate
    impostor = _rater_app(token, "carol")
    assert any("taken" in e.value and "resume code" in e.value for e in impostor.error)
    assert all(b.key != "annotate_submit" for b in impostor.button)
    assert all(b.key != "annotate_submit" for b in _rater_app(token, "carol", "WRONG").button)
    again = _rater_app(token, "carol", code.lower())   # carol on another device, with her code
    assert again.caption[0].value == shown             # the unfinished item comes back
    _act(owner, owner.selectbox(key="annotate_campaign").select("faces-2"))
    _act(owner, owner.button(key="annotate_rotate").click())   # renew: the old link dies
    fresh = next(c.value for c in owner.code if "campaign=" in c.value).split("campaign=")[1]
    assert fresh != token
    stale = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    stale.query_params["campaign"] = token
    assert [e.value for e in _run(stale).error] == [INVALID_LINK]
    assert _rater_app(fresh, "dave").title[0].value == "Rate: faces-2"
    assert _reloaded(at).caption[0].value == shown     # carol's own link still works
    _act(again, again.button(key="pick_valence_2").click())  # carol, already in, goes on
    assert not again.error
    _act(owner, owner.button(key="annotate_toggle").click())  # close it
    _act(again, again.button(key="pick_category_0").click())    # a pick writes nothing
    _act(again, again.button(key="annotate_submit").click())    # the submit is refused
    assert CLOSED_NOTICE in [e.value for e in again.error]
    assert all(b.key != "annotate_submit" for b in again.button)
    late = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    late.query_params["campaign"] = token
    _run(late)
    assert [e.value for e in late.error] == [INVALID_LINK]


def test_owner_revokes_a_rater(env):
    owner = _owner_app()
    token = _create(owner, "faces-rev")
    mallory = _rater_app(token, "mallory")
    _rate_current(mallory, 1, 4)
    _run(owner)
    _act(owner, owner.selectbox(key="annotate_campaign").select("faces-rev"))
    _act(owner, owner.selectbox(key="annotate_revoke_name").select("mallory"))
    _act(owner, owner.button(key="annotate_revoke").click())
    table = next(d.value for d in owner.dataframe if "status" in d.value.columns)
    assert table.set_index("rater_id").loc["mallory", "status"] == "revoked"
    _act(mallory, mallory.button(key="pick_category_0").click())
    _act(mallory, mallory.button(key="pick_valence_0").click())
    _act(mallory, mallory.button(key="annotate_submit").click())
    assert CLOSED_NOTICE in [e.value for e in mallory.error]
    reload = _reloaded(mallory)                        # the link stopped working too
    assert not any(b.key == "annotate_submit" for b in reload.button)
    store = Store()
    ratings = open_owner(store, PASSWORD).ratings("faces-rev")
    assert len(ratings) == 2 and ratings["rater_revoked"].all()   # kept, flagged
    store.dispose()


def test_corrupt_image_never_reaches_the_rater(env):
    """An uploaded-media campaign with one corrupt image: the rater rates the others and never
    sees a traceback or a server path; the owner sees the problem. Before the decode check the
    corrupt file was served (the page failed with a traceback, and had no Skip)."""
    import io

    from PIL import Image

    def png(shade: int) -> bytes:
        buf = io.BytesIO()
        Image.new("L", (16, 16), color=shade).save(buf, format="PNG")
        return buf.getvalue()

    store = Store()
    token = open_owner(store, PASSWORD).create_campaign_from_files(
        "uploads", [("good-a.png", png(30)), ("bad.png", png(60)[:40]), ("good-b.png", png(90))],
        modality="face", scales=default_scales(["category"]), ratings_per_item=1).token
    store.dispose()
    at = _rater_app(token, "uma")
    seen, texts = [], []
    for _ in range(3):
        texts += _texts(at)
        if not any(b.key == "annotate_submit" for b in at.button):
            break
        seen.append(at.caption[0].value.split(" · ")[0])
        assert any(b.key == "annotate_skip" for b in at.button)    # Skip is always there
        _act(at, at.button(key="pick_category_1").click())
        _act(at, at.button(key="annotate_submit").click())
    texts += _texts(at)
    assert sorted(seen) == ["item good-a", "item good-b"]
    assert any("Nothing left" in t for t in texts)
    assert not any("Traceback" in t or str(env) in t or "bad.png" in t for t in texts)
    owner = _owner_app()
    _act(owner, owner.selectbox(key="annotate_campaign").select("uploads"))
    problems = next(d.value for d in owner.dataframe if "detail" in d.value.columns)
    assert problems["item_id"].tolist() == ["bad"] and "cannot decode" in problems["detail"][0]
    assert any("cannot be shown" in w.value for w in owner.warning)


def test_a_page_error_shows_a_generic_message_and_skip(env, monkeypatch):
    from affectlab.pages.annotate_flow import RatingFlow

    token = _create(_owner_app(), "faces-err")
    at = _rater_app(token, "ian")
    first = at.caption[0].value

    def broken(self):
        raise RuntimeError(f"boom in {env}/secret.py")

    with monkeypatch.context() as patched:
        patched.setattr(RatingFlow, "take_notice", broken)
        _act(at, at.button(key="pick_category_0").click())
    assert [e.value for e in at.error] == [PAGE_FAILED]
    assert not any("boom" in t or str(env) in t for t in _texts(at))
    skip = next(b for b in at.button if b.key and b.key.startswith("annotate_skip"))
    _act(at, skip.click())
    assert at.caption[0].value != first and not at.error      # on to the next item
    store = Store()
    problems = open_owner(store, PASSWORD).problems("faces-err")
    store.dispose()
    assert problems["kind"].tolist() == ["page"] and "boom" in problems["detail"][0]


def test_malformed_name_gets_a_clear_message(env):
    token = _create(_owner_app(), "faces-3")
    at = _rater_app(token, "   ")
    assert any("name" in e.value for e in at.error)
    assert all(b.key != "annotate_submit" for b in at.button)


def test_the_rating_page_paces_a_script_and_keeps_its_item(env, monkeypatch):
    monkeypatch.setattr(limits, "SUBMIT_LIMIT", limits.SubmitLimiter(burst=1, per_second=1e-3))
    bot = _rater_app(_create(_owner_app(), "faces-4"), "bot")
    _rate_current(bot, 1, 4)                             # the burst
    shown = bot.caption[0].value
    _rate_current(bot, 2, 2)                             # at once: refused
    assert SLOW_DOWN_NOTICE in [w.value for w in bot.warning]
    assert bot.caption[0].value == shown and "1 of 30" in bot.get("progress")[0].proto.text
    assert bot.button(key="annotate_submit").proto.type == "primary"  # the picks are kept
    assert len(open_owner(Store(), PASSWORD).ratings("faces-4")) == 2


def test_the_rating_page_limits_new_names_per_address(env, monkeypatch):
    monkeypatch.setattr(client, "_address", lambda: "203.0.113.9")
    token = _create(_owner_app(), "faces-5")
    for i in range(limits.JOIN_LIMIT.max_new):
        assert _rater_app(token, f"bot{i}").button(key="annotate_submit")
    refused = _rater_app(token, "bot-extra")
    assert any("Too many new names from your address" in e.value for e in refused.error)
    assert all(b.key != "annotate_submit" for b in refused.button)
    monkeypatch.setattr(client, "_address", lambda: "198.51.100.7")
    assert _rater_app(token, "carol").button(key="annotate_submit")


def test_client_keys():
    assert client.address_key("203.0.113.9") == "ip:203.0.113.9"
    assert client.address_key("::ffff:203.0.113.9") == "ip:203.0.113.9"
    # one IPv6 subscriber holds a /64: its addresses count as one
    assert client.address_key("2001:db8:1:2::5") == client.address_key("2001:db8:1:2:ffff::1") \
        == "ip:2001:db8:1:2::/64"
    assert client.address_key("2001:db8:1:3::5") != client.address_key("2001:db8:1:2::5")
    assert client.address_key(None) is None and client.address_key("not an address") is None


def test_export_is_a_dataset_the_engine_trains_on(env, tmp_path):
    owner = _owner_app()
    token = _create(owner, "faces-4", n=1)
    raters = [join_campaign(Store(), token, f"r{k}") for k in range(2)]
    for k, rater in enumerate(raters):
        i = 0
        while (item := rater.next_item()) is not None:
            rater.submit_all(item.item_id, {"category": (i + k) % 7, "valence": 1 + i % 5},
                             time_spent=0.5)
            i += 1
    _act(owner, owner.selectbox(key="annotate_campaign").select("faces-4"))
    _act(owner, owner.selectbox(key="annotate_soft_method").select("glad"))
    assert not owner.exception and any(df.value.shape[1] == 7 for df in owner.dataframe)
    owner.text_input(key="annotate_export_name").input("faces-4-out")
    owner.selectbox(key="annotate_export_aggregator").select("one-coin")
    _act(owner, owner.button(key="annotate_export").click())
    exported = next(s.value for s in owner.success if "Exported" in s.value)
    assert "`affectlab train --dataset " in exported and "--model resnet18" in exported
    _act(owner, owner.button(key="annotate_prepare").click())
    assert len(owner.get("download_button")) == 2

    ds = load_dataset(env / "datasets" / "faces-4-out")
    assert len(ds.items) == 30 and set(ds.ratings["scale"]) == {"category", "valence"}
    assert ds.schema.aggregator == "one-coin"  # the engine's datasets read it from meta.json
    from engine_helpers import tiny_config

    from affectlab.engine.trainer import train

    result = train(tiny_config(ds.root, tmp_path / "run", method="ce", epochs=1),
                   progress=False)
    assert result is not None and (tmp_path / "run").is_dir()


# ------------------------------------------------------------------------- core helpers
def test_scale_options():
    assert scale_options({"type": "likert", "low": 1, "high": 5}) == [
        (1.0, "1"), (2.0, "2"), (3.0, "3"), (4.0, "4"), (5.0, "5")]
    assert scale_options({"type": "nominal", "names": ["a", "b"]}) == [(0.0, "a"), (1.0, "b")]
    with pytest.raises(ValueError, match="meta"):
        scale_options({"type": "likert", "low": 0.5, "high": 5})
    with pytest.raises(ValueError, match="meta"):
        scale_options({"names": ["a"]})


def test_default_scales():
    s = default_scales(["category", "activation"])
    assert list(s) == ["category", "activation"] and len(s["category"]["names"]) == 7
    with pytest.raises(ValueError, match="chosen"):
        default_scales([])
    with pytest.raises(ValueError, match="chosen"):
        default_scales(["arousal"])


def test_invite_base_url():
    assert invite_base_url("http://h:8501/annotate?campaign=x#y") == "http://h:8501/annotate"
    assert invite_base_url("https://lab.example/app/") == "https://lab.example/app/annotate"
    assert invite_base_url(None) == "http://localhost:8501/annotate"
    with pytest.raises(ValueError, match="page_url"):
        invite_base_url("ftp://h/annotate")


def test_rater_fraction_and_elapsed():
    p = RaterProgress(done=3, skipped=1, gold_done=0, remaining=6)
    assert rater_fraction(p, True) == (3, 10) and rater_fraction(p, False) == (3, 9)
    assert rater_fraction(RaterProgress(0, 0, 0, 0), False) == (0, 0)
    assert elapsed_seconds(10.0, 12.5) == 2.5 and elapsed_seconds(5.0, 4.0) == 0.0
    assert elapsed_seconds(None, 3.0) is None


def test_coverage_histogram_counts_regular_items():
    items = pd.DataFrame({"item_id": list("abcde"), "is_gold": [False] * 4 + [True],
                          "n_ratings": [0, 2, 2, 3, 9], "n_skipped": 0, "complete": False})
    prog = CampaignProgress(4, 0, 7, 2, items, pd.DataFrame())
    h = coverage_histogram(prog)
    assert h["n_ratings"].tolist() == [0, 1, 2, 3] and h["n_items"].tolist() == [1, 0, 2, 1]


def test_shortcut_script_targets_keyed_buttons():
    html = shortcut_script([f"pick_v_{i}" for i in range(12)], "sub", "skip")
    assert '"picks": ["pick_v_0"' in html and "pick_v_8" in html and "pick_v_9" not in html
    assert '"submit": "sub"' in html and ".st-key-" in html and "removeEventListener" in html


def test_campaign_by_token(tmp_path, monkeypatch):
    from annotate_support import owner_for, tiny_dataset

    store, owner = owner_for(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=4), instructions="Go")
    info = campaign_by_token(store, invite.token)
    assert (info.name, info.modality, info.instructions, info.n_items) == ("c", "face", "Go", 4)
    for bad in ("", None, 3, "x" * 300, invite.token[:-1]):
        with pytest.raises(AccessDenied, match="not valid"):
            campaign_by_token(store, bad)
    owner.set_active("c", False)
    with pytest.raises(AccessDenied, match="not valid"):
        campaign_by_token(store, invite.token)
    store.dispose()


# ------------------------------------------------------------- latency (reported, not asserted)
def test_submit_to_next_item_server_latency(tmp_path, monkeypatch, capsys):
    """What the page does between a click on Submit and the next item on screen: submit_all,
    next_item, progress (the page's calls), on the default SQLite store."""
    from annotate_support import owner_for, tiny_dataset

    store, owner = owner_for(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch)
    invite = owner.create_campaign("lat", tiny_dataset(tmp_path, n=120), ratings_per_item=2)
    rater = join_campaign(store, invite.token, "solo")
    item, times = rater.next_item(), []
    while item is not None:
        t0 = time.perf_counter()
        rater.submit_all(item.item_id, {"category": 1, "valence": 4}, time_spent=1.0)
        item = rater.next_item()
        rater.progress()
        times.append((time.perf_counter() - t0) * 1000)
    assert len(times) == 120 and rater.progress().done == 120
    p50, p95 = np.percentile(times, [50, 95])
    with capsys.disabled():
        print(f"\nsubmit→next (page calls, SQLite, 2 scales): p50 {p50:.1f} ms, "
              f"p95 {p95:.1f} ms")
    store.dispose()


# ------------------------------------------------------------- real browser
PAGE_RUN_JS = "() => document.querySelector('.affectlab-page-run').dataset.run"
PROGRESS_JS = "() => document.querySelector('[data-testid=stProgress]').innerText"


def _drive_rating_page(url: str, chromium: Path) -> dict:
    """Chromium through the rating page: join, keys, fragment reruns, undo, reload, an impostor;
    returns what the test checks afterwards."""
    sync_playwright = pytest.importorskip("playwright.sync_api").sync_playwright
    out: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(url, timeout=120_000)
        page.get_by_label("Your name (used to resume later)").fill("kim")
        page.get_by_role("button", name="Start rating").click()
        page.locator(".st-key-pick_category_0 button").wait_for(timeout=60_000)
        code_box = page.locator('[data-testid="stAlert"]').filter(has_text="resume code")
        out["code"] = re.search(r"[A-Z0-9]{4}(?:-[A-Z0-9]{4}){3}", code_box.inner_text()).group()
        runs_before = page.evaluate(PAGE_RUN_JS)
        first = page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
        page.mouse.click(5, 300)                       # focus the page, not a text field
        t0 = time.perf_counter()
        page.keyboard.press("2")
        page.wait_for_selector(".st-key-pick_category_1 button[kind=primary]")
        page.keyboard.press("4")
        page.wait_for_selector(".st-key-pick_valence_3 button[kind=primary]")
        page.keyboard.press("Enter")
        page.wait_for_function(f"() => ({PROGRESS_JS})().startsWith('1 of')")
        out["three_clicks_s"] = time.perf_counter() - t0
        second = page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
        # the item advanced, and no full page run happened: only the fragment reran
        out["advanced"] = second != first
        out["page_runs"] = (runs_before, page.evaluate(PAGE_RUN_JS))
        # undo: the first item comes back with its values; correct valence to 5
        page.locator(".st-key-annotate_undo button").wait_for()
        page.keyboard.press("u")
        page.locator('[data-testid="stCaptionContainer"]').filter(
            has_text="correcting your last item").wait_for()
        page.wait_for_selector(".st-key-pick_valence_3 button[kind=primary]")
        page.locator(".st-key-pick_valence_4 button").click()
        page.wait_for_selector(".st-key-pick_valence_4 button[kind=primary]")
        page.mouse.click(5, 300)
        page.keyboard.press("Enter")
        page.get_by_text("Corrected.").wait_for()
        page.locator(".st-key-annotate_undo button").wait_for()
        out["back_to"] = page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
        page.keyboard.press("s")
        page.wait_for_function(f"() => ({PROGRESS_JS})().includes('1 skipped')")
        out["after_skip"] = page.evaluate(PROGRESS_JS)
        out["third"] = page.locator('[data-testid="stCaptionContainer"]').first.inner_text()
        # a reload resumes from the address: no name asked, the same item and progress
        page.reload()
        page.locator(".st-key-pick_category_0 button").wait_for(timeout=60_000)
        out["reloaded"] = (page.evaluate(PROGRESS_JS),
                           page.locator('[data-testid="stCaptionContainer"]').first.inner_text(),
                           page.get_by_label("Your name (used to resume later)").count())
        # someone else, with the invite link, types kim's name: refused, nothing to rate
        other = browser.new_context().new_page()
        other.goto(url, timeout=120_000)
        other.get_by_label("Your name (used to resume later)").fill("kim")
        other.get_by_role("button", name="Start rating").click()
        refusal = other.locator('[data-testid="stAlert"]').filter(has_text="taken")
        refusal.wait_for(timeout=60_000)
        out["impostor"] = (refusal.inner_text(), other.locator(".st-key-pick_category_0").count())
        browser.close()
    return out


@pytest.mark.slow
@pytest.mark.browser
def test_rating_page_in_chromium(env, tmp_path):
    """In a real Chromium against `streamlit run`: digits pick, Enter submits, U undoes (a
    correction), S skips; a click reruns only the rating fragment (the page-run marker outside
    it stays put) while the item advances; a reload resumes; a second rater cannot rate under
    the first one's name."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    chromium = Path(os.environ.get("AFFECTLAB_CHROMIUM", "/usr/bin/chromium"))
    pytest.importorskip("playwright.sync_api")
    if not chromium.is_file():
        pytest.skip(f"no Chromium at {chromium}")
    store = Store()
    token = open_owner(store, PASSWORD).create_campaign(
        "kb", env / "datasets" / "faces", scales=["category", "valence"]).token
    store.dispose()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.headless", "true",
         "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        # in a fresh thread: AppTest runs earlier in this module can leave an asyncio loop
        # running in the main thread, where Playwright's sync API refuses to start
        with ThreadPoolExecutor(1) as pool:
            out = pool.submit(_drive_rating_page,
                              f"http://127.0.0.1:{port}/annotate?campaign={token}",
                              chromium).result()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    print(f"\nrating page in Chromium: pick, pick, submit → next item in "
          f"{out['three_clicks_s']:.2f} s (three key presses, browser round trips included)")
    assert out["advanced"]
    before, after = out["page_runs"]
    assert int(before) >= 2                  # the marker counts full runs: load, then join
    assert before == after, "a click reran the whole page, not just the rating fragment"
    assert out["after_skip"].startswith("1 of 29") and "1 skipped" in out["after_skip"]
    progress, caption, name_fields = out["reloaded"]
    assert progress == out["after_skip"] and caption == out["third"] and name_fields == 0
    refusal, pick_buttons = out["impostor"]
    assert "resume code" in refusal and pick_buttons == 0
    store = Store()
    owner = open_owner(store, PASSWORD)
    stored = owner.ratings("kb")
    assert sorted(zip(stored["scale"], stored["value"], strict=True)) == [
        ("category", 1.0), ("valence", 5.0)]                     # valence corrected from 4
    assert list(owner.raters("kb")["rater_id"]) == ["kim"]       # the impostor got no rater
    # kim on another device, with the code, continues where the reload was
    again = join_campaign(store, token, "kim", out["code"])
    assert again.next_item().item_id in out["third"]
    store.dispose()
