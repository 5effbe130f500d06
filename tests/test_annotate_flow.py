"""The rating page's flow (what each click does, without Streamlit) and the undo: a correction of
the last finished item that keeps every value ever saved."""

from __future__ import annotations

import pytest
from annotate_support import at_once, owner_for, rate_item, tiny_dataset
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)
from sqlalchemy import func, select, update

from affectlab.annotate import join_campaign
from affectlab.annotate.assign import OPEN_LEASE
from affectlab.annotate.limits import SubmitLimiter
from affectlab.annotate.store import Assignment, RatingCorrection, utcnow
from affectlab.pages.annotate_flow import (
    BROKEN_NOTICE,
    CLOSED_NOTICE,
    CORRECTING_NOTICE,
    SLOW_DOWN_NOTICE,
    TAKEN_NOTICE,
    RatingFlow,
)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def campaign(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=4), ratings_per_item=1)
    yield store, owner, invite
    store.dispose()


def test_a_click_does_what_the_page_shows(campaign):
    store, owner, invite = campaign
    clock = Clock()
    flow = RatingFlow(join_campaign(store, invite.token, "alice"), clock=clock)
    flow.start()
    first = flow.item
    assert first is not None and flow.progress.done == 0 and flow.active_scale == "category"
    flow.choose("category", 2)
    flow.choose("arousal", 1)                                   # not a scale of the item
    assert flow.picks == {"category": 2.0} and flow.active_scale == "valence"
    flow.submit()                                                # valence missing
    assert flow.take_notice().text == "Choose a value for: valence"
    assert flow.take_notice() is None and owner.ratings("c").empty
    flow.choose("valence", 4)
    assert flow.ready
    clock.now += 2.5
    flow.submit()
    table = owner.ratings("c")
    assert sorted(zip(table["scale"], table["value"], strict=True)) == [("category", 2.0),
                                                                        ("valence", 4.0)]
    assert (table["time_spent"] == 2.5).all()
    assert flow.item.item_id != first.item_id and flow.picks == {}
    assert flow.progress.done == 1 and flow.can_undo and not flow.correcting
    flow.skip()
    assert flow.progress.skipped == 1 and not flow.can_undo      # undo ends with the next item


def test_undo_corrects_the_last_item_and_keeps_the_old_values(campaign):
    store, owner, invite = campaign
    flow = RatingFlow(join_campaign(store, invite.token, "alice"))
    flow.start()
    done = flow.item.item_id
    flow.choose("category", 0)
    flow.choose("valence", 2)
    flow.submit()
    waiting = flow.item.item_id
    flow.undo()
    assert flow.correcting and flow.item.item_id == done
    assert flow.picks == {"category": 0.0, "valence": 2.0}      # the stored values, chosen
    assert flow.take_notice().text == CORRECTING_NOTICE
    flow.choose("valence", 5)
    flow.submit()
    assert flow.take_notice().text == "Corrected."
    assert not flow.correcting and flow.item.item_id == waiting  # back where the rater was
    table = owner.ratings("c").set_index("scale")
    assert table.loc["valence", "value"] == 5.0 and table.loc["category", "value"] == 0.0
    assert len(table) == 2                                       # one current rating per scale
    with store.read() as s:
        kept = s.execute(select(RatingCorrection)).scalars().all()
    assert [(k.value, k.time_spent is None or k.time_spent >= 0) for k in kept] == [(2.0, True)]
    assert owner.soft_labels("c", "valence").loc[done].tolist() == [0.0, 1.0]
    # undo again, then go back without changes: nothing is written
    flow.undo()
    flow.skip()
    assert flow.item.item_id == waiting and not flow.correcting
    with store.read() as s:
        assert s.execute(select(func.count()).select_from(RatingCorrection)).scalar_one() == 1


def test_only_the_last_finished_item_can_be_corrected(campaign):
    store, owner, invite = campaign
    alice = join_campaign(store, invite.token, "alice")
    bob = join_campaign(store, invite.token, "bob")
    assert alice.last_done() is None
    first = alice.next_item()
    rate_item(alice, first)
    second = alice.next_item()
    rate_item(alice, second, {"category": 1, "valence": 1})
    view, values = alice.last_done()
    assert view.item_id == second.item_id and values == {"category": 1.0, "valence": 1.0}
    assert view.pending == ("category", "valence")
    with pytest.raises(ValueError, match="finished last"):
        alice.correct_last(first.item_id, {"category": 2})
    with pytest.raises(ValueError, match="finished last"):
        bob.correct_last(second.item_id, {"category": 2})           # not bob's
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        alice.correct_last(second.item_id, {"category": 9})
    assert alice.correct_last(second.item_id, {"category": 1}) == 0  # same value: no change
    assert alice.correct_last(second.item_id, {"category": 2, "valence": 1}) == 1
    assert sorted(owner.ratings("c")["value"]) == [0.0, 1.0, 2.0, 3.0]


def test_concurrent_corrections_keep_the_old_value_once(campaign):
    store, _, invite = campaign
    alice = join_campaign(store, invite.token, "alice")
    item = alice.next_item()
    rate_item(alice, item, {"category": 0, "valence": 3})
    changed, errors = at_once(lambda: alice.correct_last(item.item_id, {"valence": 5}), 5)
    assert not errors and sorted(changed) == [0, 0, 0, 0, 1]
    with store.read() as s:
        assert [c.value for c in s.execute(select(RatingCorrection)).scalars()] == [3.0]


def test_flow_says_when_access_ends_or_an_item_was_taken(campaign):
    store, owner, invite = campaign
    flow = RatingFlow(join_campaign(store, invite.token, "alice"))
    flow.start()
    flow.choose("category", 1)
    with store.write() as s:  # alice left the item open past the lease; bob takes it
        s.execute(update(Assignment).values(assigned_at=utcnow() - OPEN_LEASE * 2))
    others = [join_campaign(store, invite.token, f"r{k}") for k in range(4)]
    for rater in others:
        if (item := rater.next_item()) is not None:
            rate_item(rater, item)
    flow.choose("valence", 3)
    flow.submit()
    assert flow.take_notice().text == TAKEN_NOTICE and not flow.can_undo
    assert flow.item is None                                     # the others took the rest
    owner.set_active("c", False)
    flow.start()                                                 # e.g. the next page load
    assert flow.closed and flow.item is None and flow.take_notice().text == CLOSED_NOTICE
    flow.submit()                                                # nothing to do, no error
    assert flow.closed


def test_flow_reports_media_the_page_cannot_show(campaign):
    store, owner, invite = campaign
    flow = RatingFlow(join_campaign(store, invite.token, "alice"))
    flow.start()
    bad = flow.item.item_id
    flow.media_failed("the browser got no image")
    assert flow.take_notice().text == BROKEN_NOTICE and flow.item.item_id != bad
    assert owner.items("c").set_index("item_id").loc[bad, "broken"] == "the browser got no image"


def test_a_submit_refused_as_too_fast_keeps_the_item_and_says_slow_down(campaign):
    store, owner, invite = campaign
    clock = Clock()
    limit = SubmitLimiter(burst=1, per_second=1.0, clock=clock)
    flow = RatingFlow(join_campaign(store, invite.token, "bot", submit_limit=limit), clock=clock)
    flow.start()
    flow.choose("category", 1)
    flow.choose("valence", 2)
    flow.submit()                                        # the burst
    second = flow.item
    flow.choose("category", 2)
    flow.choose("valence", 5)
    flow.submit()                                        # at once: refused
    assert flow.take_notice().text == SLOW_DOWN_NOTICE
    assert flow.item == second and flow.picks == {"category": 2.0, "valence": 5.0}
    assert not flow.closed and len(owner.ratings("c")) == 2
    clock.now += 1.0
    flow.submit()                                        # the same picks, a second later
    assert flow.take_notice() is None and flow.item != second
    assert len(owner.ratings("c")) == 4
