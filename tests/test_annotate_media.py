"""Undecodable media: the decode check, a corrupt image in an uploaded-media campaign (skipped for
everyone, flagged to the owner, left out of the export), the page's own reports."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from annotate_support import owner_for, rate_item, tiny_dataset
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)
from PIL import Image
from sqlalchemy import select

from affectlab.annotate import join_campaign
from affectlab.annotate import media as media_mod
from affectlab.annotate.media import media_problem
from affectlab.annotate.store import Assignment, Item
from affectlab.data.contract import load_dataset

SCALES = {"category": {"type": "nominal", "names": ["calm", "glad", "cross"]}}


def _png(shade: int, size: int = 8) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (size, size), color=shade).save(buf, format="PNG")
    return buf.getvalue()


def test_media_problem_finds_what_the_page_could_not_show(tmp_path, monkeypatch):
    good = tmp_path / "good.png"
    good.write_bytes(_png(10, size=32))
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good.read_bytes()[:60])
    text = tmp_path / "text.png"
    text.write_bytes(b"not an image at all")
    assert media_problem(good, "face") is None
    for bad in (truncated, text):
        reason = media_problem(bad, "face")
        assert reason.startswith(str(bad)) and "cannot decode" in reason
    assert "cannot read" in media_problem(tmp_path / "missing.png", "face")
    assert "not a file" in media_problem(tmp_path, "face")
    monkeypatch.setattr(media_mod, "MAX_PIXELS", 32 * 32 - 1)
    assert "pixels" in media_problem(good, "face")
    monkeypatch.setattr(media_mod, "MAX_MEDIA_BYTES", 10)
    assert "bytes" in media_problem(good, "face")


def test_media_problem_for_audio(tmp_path):
    wav = tmp_path / "a.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    assert media_problem(wav, "speech") is None
    junk = tmp_path / "b.wav"
    junk.write_bytes(b"RIFF....WAVEjunk")
    assert "cannot decode" in media_problem(junk, "speech")


def test_corrupt_image_in_an_upload_campaign_is_skipped_for_everyone(db_url, tmp_path, monkeypatch):  # noqa: F811
    """Before the decode check the corrupt file was served like any other: the rater got a
    page that could not show it (a traceback with server paths), with no way on."""
    monkeypatch.setenv("AFFECTLAB_DATA", str(tmp_path / "data"))
    store, owner = owner_for(db_url, monkeypatch)
    files = [("ok-1.png", _png(40)), ("broken.png", _png(80)[:50]), ("ok-2.png", _png(120))]
    invite = owner.create_campaign_from_files("uploads", files, modality="face", scales=SCALES,
                                              ratings_per_item=2)
    alice = join_campaign(store, invite.token, "alice")
    served, skipped = [], 0
    while (item := alice.next_item()) is not None:
        served.append(item.item_id)
        skipped += item.n_broken_skipped
        rate_item(alice, item, {"category": 1})
    assert sorted(served) == ["ok-1", "ok-2"]
    # alice met it on the way (a later item says so) or last (next_item() then said None);
    # either way it is broken now, for everyone
    assert skipped <= 1
    items = owner.items("uploads").set_index("item_id")
    reason = items.loc["broken", "broken"]
    assert "broken.png" in reason and "cannot decode" in reason
    assert items.loc[["ok-1", "ok-2"], "broken"].isna().all()
    bob = join_campaign(store, invite.token, "bob")
    got = []
    while (item := bob.next_item()) is not None:
        got.append(item.item_id)
        rate_item(bob, item, {"category": 2})
    assert sorted(got) == ["ok-1", "ok-2"]
    # the owner sees it: progress leaves it out, problems say why (once)
    progress = owner.progress("uploads")
    assert (progress.n_items, progress.n_broken, progress.n_complete) == (2, 1, 2)
    problems = owner.problems("uploads")
    assert problems["kind"].tolist() == ["media"] and problems["item_id"].tolist() == ["broken"]
    assert problems["rater_id"].tolist() == ["alice"] and "cannot decode" in problems["detail"][0]
    with store.read() as s:
        n_live = s.execute(select(Item.n_live).where(Item.item_key == "broken")).scalar_one()
        statuses = s.execute(select(Assignment.status).join(Item, Item.id == Assignment.item_id)
                             .where(Item.item_key == "broken")).scalars().all()
    assert n_live == 0 and statuses == ["broken"]                # not counted against the cap
    # the export leaves it out and says so
    ds = load_dataset(owner.export("uploads", tmp_path / "out"))
    assert sorted(ds.items["item_id"]) == ["ok-1", "ok-2"]
    assert ds.meta["provenance"]["left_out"]["n_broken_items"] == 1
    store.dispose()


def test_page_reports_mark_the_item_broken_and_record_problems(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=3), ratings_per_item=2)
    alice, bob = (join_campaign(store, invite.token, n) for n in ("alice", "bob"))
    a_item = alice.next_item()
    # bob holds the same item open (N=2) when the page fails to show it to alice
    while (b_item := bob.next_item()).item_id != a_item.item_id:
        rate_item(bob, b_item)
    alice.report_broken(a_item.item_id, "st.image raised ValueError")
    assert alice.next_item().item_id != a_item.item_id
    after = bob.next_item()                         # bob's open assignment of it is gone
    assert after is None or after.item_id != a_item.item_id
    with pytest.raises(ValueError, match="not an item of this campaign"):
        bob.report_broken("it-none", "x")
    alice.report_problem(None, "Traceback (most recent call last): …")
    problems = owner.problems("c")
    assert sorted(problems["kind"]) == ["media", "page"]
    assert problems.set_index("kind").loc["media", "detail"] == "st.image raised ValueError"
    store.dispose()


def test_the_item_after_a_broken_one_says_so(tmp_path, monkeypatch):
    """The least-covered item is picked first: with alice's item at 1 rating, bob's pick meets
    the (0-rating) item whose file broke meanwhile, passes it and says so on the next one."""
    store, owner = owner_for(f"sqlite:///{tmp_path / 'a.db'}", monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=2), ratings_per_item=2)
    alice = join_campaign(store, invite.token, "alice")
    first = alice.next_item()
    assert first.n_broken_skipped == 0
    rate_item(alice, first)
    other = next(i for i in owner.items("c")["item_id"] if i != first.item_id)
    (tmp_path / "tiny" / "media" / f"{other}.png").write_bytes(b"\x89PNG broken")
    got = join_campaign(store, invite.token, "bob").next_item()
    assert (got.item_id, got.n_broken_skipped) == (first.item_id, 1)
    assert owner.progress("c").n_broken == 1
    store.dispose()
