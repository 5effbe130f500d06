"""Assignment: N ratings per item, no repeats, resume, skip, adaptive extras, gold items."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest
from annotate_support import SCALES, owner_for, rate_item, tiny_dataset
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)

from affectlab.annotate import join_campaign
from affectlab.annotate.aggregate import item_disagreement


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'a.db'}"


def drain(session, values=None, limit=1000):
    """Rate everything offered; return the item ids in order."""
    seen = []
    for _ in range(limit):
        item = session.next_item()
        if item is None:
            return seen
        rate_item(session, item, values(item) if callable(values) else values)
        seen.append(item.item_id)
    raise AssertionError("rater never ran out of items")


def test_each_item_gets_n_ratings_and_no_repeats(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    owner.create_campaign("c", tiny_dataset(tmp_path, n=10), ratings_per_item=3)
    token = owner.rotate_token("c")
    per_rater = {name: drain(join_campaign(store, token, name)) for name in "abcde"}
    for seen in per_rater.values():
        assert len(seen) == len(set(seen))                  # never the same item twice
    progress = owner.progress("c")
    assert (progress.items["n_ratings"] == 3).all()
    assert progress.n_complete == 10 and progress.fraction_complete == 1.0
    ratings = owner.ratings("c")
    assert len(ratings) == 10 * 3 * 2                        # items × N × scales
    assert not ratings.duplicated(["item_id", "rater_id", "scale"]).any()
    # the first raters take items evenly: everyone got work, nobody more than all items
    assert sum(len(s) for s in per_rater.values()) == 30
    store.dispose()


def test_resume_where_stopped(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=6), ratings_per_item=2)
    rater = join_campaign(store, invite.token, "alice")
    first = rater.next_item()
    assert rater.next_item().item_id == first.item_id         # unfinished item comes back
    rater.submit(first.item_id, "category", 1)
    again = join_campaign(store, invite.token, "alice").next_item()  # a new browser session
    assert again.item_id == first.item_id and again.pending == ("valence",)
    rater.submit(first.item_id, "valence", 5)
    nxt = rater.next_item()
    assert nxt.item_id != first.item_id and nxt.pending == ("category", "valence")
    p = rater.progress()
    assert (p.done, p.skipped, p.gold_done) == (1, 0, 0)
    assert p.remaining == 4                                    # 6 items, 1 done, 1 open
    store.dispose()


def test_skip_is_not_shown_again_and_does_not_count(sqlite_url, tmp_path, monkeypatch):
    store, owner = owner_for(sqlite_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=3), ratings_per_item=1)
    alice = join_campaign(store, invite.token, "alice")
    skipped = alice.next_item().item_id
    alice.skip(skipped)
    with pytest.raises(ValueError, match="skipped"):
        alice.submit(skipped, "category", 0)
    assert skipped not in drain(alice)
    assert alice.progress().skipped == 1
    assert drain(join_campaign(store, invite.token, "bob")) == [skipped]
    assert owner.progress("c").n_complete == 3


def _disagreeing_values(disputed, k):
    """Rater k's answers: disputed items get a rater-dependent answer, the others agree."""
    def values(item):
        if item.item_id in disputed:
            return {"category": k % 3, "valence": 1 if k % 2 else 5}
        return {"category": 0, "valence": 3}
    return values


def test_adaptive_extra_ratings_go_to_disputed_items(sqlite_url, tmp_path, monkeypatch):
    store, owner = owner_for(sqlite_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=8), ratings_per_item=2,
                                   max_ratings=5, min_disagreement=0.3)
    disputed = {"it001", "it004"}
    for k, name in enumerate("abcdefgh"):
        drain(join_campaign(store, invite.token, name), _disagreeing_values(disputed, k))
    n = owner.progress("c").items.set_index("item_id")["n_ratings"]
    assert (n[sorted(disputed)] == 5).all()                    # raised to the cap
    assert (n.drop(sorted(disputed)) == 2).all()               # agreed items stay at N
    store.dispose()


def test_adaptive_order_most_disputed_first(sqlite_url, tmp_path, monkeypatch):
    store, owner = owner_for(sqlite_url, monkeypatch)
    invite = owner.create_campaign("c", tiny_dataset(tmp_path, n=3), ratings_per_item=2,
                                   max_ratings=3, min_disagreement=0.1)
    answers = {"it000": [(0, 3), (0, 3)], "it001": [(0, 1), (2, 5)], "it002": [(0, 2), (1, 3)]}
    for k, name in enumerate("ab"):
        s = join_campaign(store, invite.token, name)
        for _ in range(3):
            item = s.next_item()
            c, v = answers[item.item_id][k]
            rate_item(s, item, {"category": c, "valence": v})
    offered = join_campaign(store, invite.token, "c").next_item()
    assert offered.item_id == "it001"                          # the most disputed
    store.dispose()


def test_gold_items_mixed_at_rate_and_scored(sqlite_url, tmp_path, monkeypatch):
    store, owner = owner_for(sqlite_url, monkeypatch)
    ds = tiny_dataset(tmp_path, n=24)
    gold = {f"it{i:03d}": {"category": i % 3, "valence": 1 + i % 5} for i in range(4)}
    invite = owner.create_campaign("c", ds, ratings_per_item=2, gold_rate=0.25, gold=gold)
    good, bad = join_campaign(store, invite.token, "good"), join_campaign(store, invite.token,
                                                                          "bad")
    def honest(item):
        return ({"category": gold[item.item_id]["category"],
                 "valence": gold[item.item_id]["valence"]} if item.item_id in gold
                else {"category": 1, "valence": 3})

    def wrong(item):
        if item.item_id in gold:
            return {"category": (gold[item.item_id]["category"] + 1) % 3,
                    "valence": 5 if gold[item.item_id]["valence"] < 3 else 1}
        return {"category": 1, "valence": 3}
    seen_good = drain(good, honest)
    drain(bad, wrong)
    gold_seen = [i for i in seen_good if i in gold]
    assert len(gold_seen) == 4
    # gold is spread through the session at about the rate, not bunched at the end
    positions = [seen_good.index(g) for g in gold_seen]
    assert positions[0] == 0 and max(np.diff(positions)) <= 5
    report = owner.agreement("c", min_items=1)
    r = report.raters.set_index(["rater_id", "scale"])
    assert r.loc[("good", "category"), "gold_score"] == 1.0
    assert r.loc[("bad", "category"), "gold_score"] == 0.0
    assert r.loc[("good", "valence"), "gold_score"] == 1.0
    assert r.loc[("bad", "valence"), "gold_score"] < 0.5
    assert r.loc[("good", "category"), "gold_n"] == 4
    prog = owner.progress("c")
    assert prog.n_items == 20                                  # gold is outside the pool
    assert good.progress().gold_done == 4
    store.dispose()


def test_item_disagreement_known_values():
    ratings = pd.DataFrame({
        "item_id": ["a", "a", "b", "b", "c", "c", "c", "c", "d"],
        "scale": ["category", "category", "valence", "valence", "category", "category",
                  "category", "category", "valence"],
        "value": [0, 1, 1, 5, 2, 2, 2, 2, 3],
    })
    got = item_disagreement(ratings, ["a", "b", "c", "d", "e"], SCALES)
    # a: two votes split over 3 classes → log 2 / log 3; b: var of {1, 5} = 4, / ((5-1)/2)² = 1;
    # c: unanimous → 0; d: one rating → 0; e: none → 0
    np.testing.assert_allclose(got, [np.log(2) / np.log(3), 1.0, 0.0, 0.0, 0.0])


def test_item_disagreement_bounds_property():
    rng = random.Random(0)
    for _ in range(50):
        n = rng.randint(2, 12)
        r = pd.DataFrame({"item_id": ["x"] * n, "scale": ["category"] * n,
                          "value": [rng.randrange(3) for _ in range(n)]})
        h = item_disagreement(r, ["x"], SCALES)[0]
        assert 0.0 <= h <= 1.0 + 1e-12
