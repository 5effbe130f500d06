"""Access: the admin password, invite tokens, and what a rater session can and cannot do."""

from __future__ import annotations

import math

import numpy as np
import pytest
from annotate_support import owner_for, rate_item, tiny_dataset
from pg_server import db_url, pg_server  # noqa: F401  (fixtures)
from sqlalchemy import select, text, update

from affectlab.annotate import (
    AccessDenied,
    OwnerSession,
    RaterRevoked,
    RaterSession,
    ResumeCodeRequired,
    Store,
    ensure_admin_password,
    invite_link,
    join_campaign,
    open_owner,
    resume_rater,
)
from affectlab.annotate.access import (
    configured_admin_password,
    hash_resume_code,
    hash_token,
    new_resume_code,
)
from affectlab.annotate.limits import (
    JOIN_LIMIT,
    SUBMIT_LIMIT,
    JoinLimiter,
    RateLimited,
    SubmitLimiter,
)
from affectlab.annotate.store import Assignment, Item, Rater


@pytest.fixture
def sqlite_url(tmp_path):
    return f"sqlite:///{tmp_path / 'a.db'}"


@pytest.fixture
def setup(db_url, tmp_path, monkeypatch):  # noqa: F811
    store, owner = owner_for(db_url, monkeypatch)
    invite = owner.create_campaign("c1", tiny_dataset(tmp_path, n=8), ratings_per_item=2)
    yield store, owner, invite
    store.dispose()


def test_generated_password_returned_never_printed_and_stored_hashed(sqlite_url, monkeypatch, capsys):
    monkeypatch.delenv("AFFECTLAB_ADMIN_PASSWORD", raising=False)
    monkeypatch.chdir(sqlite_url.split("///")[1].rsplit("/", 1)[0])  # no secrets.toml here
    store = Store(sqlite_url)
    password = ensure_admin_password(store)
    captured = capsys.readouterr()
    assert password and password not in captured.out + captured.err  # returned, never printed
    assert ensure_admin_password(store) is None          # never generated or shown again
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT value FROM settings")).scalar()
    assert password not in stored and stored.startswith("pbkdf2_sha256$")
    assert isinstance(open_owner(store, password), OwnerSession)
    with pytest.raises(AccessDenied, match="wrong admin password"):
        open_owner(store, password + "x")


def test_password_from_env_then_secrets_toml(sqlite_url, tmp_path, monkeypatch):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('admin_password = "from-toml"\n')
    monkeypatch.delenv("AFFECTLAB_ADMIN_PASSWORD", raising=False)
    assert configured_admin_password(secrets) == "from-toml"
    store = Store(sqlite_url)
    assert ensure_admin_password(store, secrets_file=secrets) is None  # nothing generated
    open_owner(store, "from-toml", secrets_file=secrets)
    with pytest.raises(AccessDenied):
        open_owner(store, "from-env", secrets_file=secrets)
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", "from-env")
    open_owner(store, "from-env", secrets_file=secrets)           # env wins
    with pytest.raises(AccessDenied):
        open_owner(store, "from-toml", secrets_file=secrets)
    with pytest.raises(TypeError, match="password"):
        open_owner(store, None, secrets_file=secrets)


def test_no_password_yet_is_denied(sqlite_url, tmp_path, monkeypatch):
    monkeypatch.delenv("AFFECTLAB_ADMIN_PASSWORD", raising=False)
    with pytest.raises(AccessDenied, match="one-time link"):
        open_owner(Store(sqlite_url), "anything", secrets_file=tmp_path / "none.toml")


def test_sessions_cannot_be_built_directly(sqlite_url):
    store = Store(sqlite_url)
    with pytest.raises(TypeError, match="open_owner"):
        OwnerSession(store)
    with pytest.raises(TypeError, match="join_campaign"):
        RaterSession(store, 1, 1, "eve")


def test_token_is_stored_only_as_hash(setup):
    store, _, invite = setup
    with store.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM campaigns"))
                        for v in row)
    assert invite.token not in dump and hash_token(invite.token) in dump
    assert len(invite.token) >= 40
    assert invite.link("https://lab.example/annotate").endswith(f"?campaign={invite.token}")
    assert invite_link("a b", "http://x/p?lang=en") == "http://x/p?lang=en&campaign=a+b"


def test_bad_token_closed_campaign_and_rotation(setup):
    store, owner, invite = setup
    for bad in ("nope", "", invite.token[:-1], None):
        with pytest.raises(AccessDenied):
            join_campaign(store, bad, "alice")
    rater = join_campaign(store, invite.token, "alice")
    owner.set_active("c1", False)
    with pytest.raises(AccessDenied, match="closed"):
        join_campaign(store, invite.token, "bob")
    with pytest.raises(AccessDenied, match="closed"):
        rater.next_item()
    owner.set_active("c1", True)
    new = owner.rotate_token("c1")
    with pytest.raises(AccessDenied, match="unknown campaign token"):
        join_campaign(store, invite.token, "bob")
    assert join_campaign(store, new, "bob").name == "bob"


@pytest.mark.parametrize("name,err", [("", ValueError), ("   ", ValueError),
                                      ("x" * 65, ValueError), ("a\x00b", ValueError),
                                      (42, TypeError)])
def test_bad_rater_names(setup, name, err):
    store, _, invite = setup
    with pytest.raises(err, match="name"):
        join_campaign(store, invite.token, name)


@pytest.mark.parametrize("scale,value,err,match", [
    ("category", 3, ValueError, r"\[0, 2\]"),
    ("category", -1, ValueError, r"\[0, 2\]"),
    ("category", 1.5, ValueError, "class index"),
    ("category", "happy", ValueError, "must be one of"),
    ("category", True, TypeError, "number"),
    ("valence", 0, ValueError, r"\[1, 5\]"),
    ("valence", 5.5, ValueError, r"\[1, 5\]"),
    ("valence", math.nan, ValueError, "finite"),
    ("valence", np.inf, ValueError, "finite"),
    ("valence", "4", TypeError, "number"),
    ("arousal", 3, ValueError, "scale must be one of"),
])
def test_malformed_values_rejected(setup, scale, value, err, match):
    store, owner, invite = setup
    rater = join_campaign(store, invite.token, "alice")
    item = rater.next_item()
    with pytest.raises(err, match=match):
        rater.submit(item.item_id, scale, value)
    assert owner.ratings("c1").empty


def test_class_names_and_numpy_values_accepted(setup):
    store, owner, invite = setup
    rater = join_campaign(store, invite.token, "alice")
    item = rater.next_item()
    assert rater.submit(item.item_id, "category", "glad")
    assert rater.submit(item.item_id, "valence", np.float32(4.0))
    assert sorted(owner.ratings("c1")["value"]) == [1.0, 4.0]


def test_unknown_and_unassigned_items_rejected(setup, tmp_path):
    store, owner, invite = setup
    other = owner.create_campaign("c2", tiny_dataset(tmp_path / "o", n=3, seed=1))
    alice = join_campaign(store, invite.token, "alice")
    bob = join_campaign(store, invite.token, "bob")
    a_item = alice.next_item()
    with pytest.raises(ValueError, match="not an item of this campaign"):
        alice.submit("no-such-item", "category", 0)
    with pytest.raises(ValueError, match="not given to you"):
        bob.submit(a_item.item_id, "category", 0)           # alice's item, not bob's
    with pytest.raises(TypeError, match="item_id"):
        alice.submit(3, "category", 0)
    with pytest.raises(ValueError, match="time_spent"):
        alice.submit(a_item.item_id, "category", 0, time_spent=-1)
    carol = join_campaign(store, other.token, "carol")
    c_item = carol.next_item()
    # alice's session is bound to c1: it cannot touch c2's items, even with a known id
    with pytest.raises(ValueError):
        alice.submit(c_item.item_id + "-x", "category", 0)
    assert owner.ratings("c2").empty and owner.ratings("c1").empty


def test_rater_sees_only_own_ratings(setup):
    store, owner, invite = setup
    alice = join_campaign(store, invite.token, "alice")
    bob = join_campaign(store, invite.token, "bob")
    for session, v in ((alice, 0), (bob, 2), (alice, 1)):
        rate_item(session, session.next_item(), {"category": v, "valence": 2})
    mine = alice.my_ratings()
    assert len(mine) == 4 and set(mine["value"]) == {0.0, 1.0, 2.0}
    assert "rater_id" not in mine.columns
    assert len(bob.my_ratings()) == 2 and set(bob.my_ratings()["value"]) == {2.0}
    public = {n for n in dir(alice) if not n.startswith("_")}
    assert public == {"name", "campaign", "instructions", "link_token", "resume_code",
                      "next_item", "submit", "submit_all", "skip", "progress", "my_ratings",
                      "last_done", "correct_last", "report_broken", "report_problem"}
    assert len(owner.ratings("c1")) == 6


def test_create_campaign_validates_settings(sqlite_url, tmp_path, monkeypatch):
    _, owner = owner_for(sqlite_url, monkeypatch)
    ds = tiny_dataset(tmp_path)
    with pytest.raises(ValueError, match="ratings_per_item"):
        owner.create_campaign("x", ds, ratings_per_item=0)
    with pytest.raises(ValueError, match="max_ratings"):
        owner.create_campaign("x", ds, ratings_per_item=3, max_ratings=2)
    with pytest.raises(ValueError, match="gold_rate"):
        owner.create_campaign("x", ds, gold_rate=1.0)
    with pytest.raises(ValueError, match="needs gold answers"):
        owner.create_campaign("x", ds, gold_rate=0.2)
    with pytest.raises(ValueError, match="not in the campaign"):
        owner.create_campaign("x", ds, gold={"zzz": {"category": 0}})
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        owner.create_campaign("x", ds, gold={"it000": {"category": 7}})
    with pytest.raises(ValueError, match="not in the dataset"):
        owner.create_campaign("x", ds, scales=["arousal"])
    owner.create_campaign("x", ds)
    with pytest.raises(ValueError, match="already exists"):
        owner.create_campaign("x", ds)
    with pytest.raises(ValueError, match="does not exist"):
        owner.progress("nope")


# ------------------------------------------------------------------ rater identities
def test_rejoining_under_a_taken_name_needs_the_resume_code(setup):
    store, owner, invite = setup
    alice = join_campaign(store, invite.token, "alice")
    code = alice.resume_code
    assert code and len(code.replace("-", "")) == 16
    first = alice.next_item()
    for bad in (None, "", "AAAA-AAAA-AAAA-AAAA", code[:-1]):
        with pytest.raises(ResumeCodeRequired, match="taken"):
            join_campaign(store, invite.token, "alice", bad)
    # case, spaces and dashes do not matter; the session resumes the same rater and item
    again = join_campaign(store, invite.token, "  alice ", code.lower().replace("-", " "))
    assert again.resume_code is None and again.next_item().item_id == first.item_id
    # only the hash is stored
    with store.engine.connect() as conn:
        dump = " ".join(str(v) for row in conn.execute(text("SELECT * FROM raters")) for v in row)
    assert code not in dump and hash_resume_code(code) in dump
    # another name is another rater with its own code
    bob = join_campaign(store, invite.token, "bob", code)
    assert bob.resume_code not in (None, code)
    assert set(owner.raters("c1")["rater_id"]) == {"alice", "bob"}


def test_link_token_resumes_and_forgeries_are_refused(setup):
    store, _, invite = setup
    alice = join_campaign(store, invite.token, "alice")
    bob = join_campaign(store, invite.token, "bob")
    shown = alice.next_item()
    back = resume_rater(store, alice.link_token)
    assert (back.name, back.campaign) == ("alice", "c1")
    assert back.next_item().item_id == shown.item_id        # a reload resumes the same item
    rid, sig = alice.link_token.split(".")
    bob_id = bob.link_token.split(".")[0]
    flipped = sig[:-1] + ("A" if sig[-1] != "A" else "B")
    for bad in (f"{rid}.{flipped}", f"{bob_id}.{sig}", f"{rid}", "x.y", "", None, 7,
                f"999999.{sig}", "1." + "a" * 200):
        with pytest.raises(AccessDenied, match="not valid"):
            resume_rater(store, bad)


def test_revoked_rater_is_locked_out_and_their_ratings_stay_flagged(setup):
    store, owner, invite = setup
    alice = join_campaign(store, invite.token, "alice")
    bob = join_campaign(store, invite.token, "bob")
    rate_item(alice, alice.next_item(), {"category": 2, "valence": 5})
    rate_item(bob, bob.next_item(), {"category": 0, "valence": 1})
    held = alice.next_item()                                   # open when revoked
    assert owner.revoke_rater("c1", "alice") is True
    assert owner.revoke_rater("c1", "alice") is False          # already revoked
    with pytest.raises(ValueError, match="no rater named"):
        owner.revoke_rater("c1", "nobody")
    for call in (alice.next_item, alice.progress,
                 lambda: alice.submit(held.item_id, "category", 0),
                 lambda: alice.skip(held.item_id)):
        with pytest.raises(RaterRevoked, match="revoked"):
            call()
    with pytest.raises(RaterRevoked):
        resume_rater(store, alice.link_token)
    with pytest.raises(RaterRevoked):
        join_campaign(store, invite.token, "alice", alice.resume_code)
    # the ratings stay, flagged; labels and agreement leave them out
    ratings = owner.ratings("c1")
    assert len(ratings) == 4
    assert ratings.groupby("rater_id")["rater_revoked"].all().to_dict() == {"alice": True,
                                                                            "bob": False}
    assert set(owner.label_ratings("c1")["rater_id"]) == {"bob"}
    soft = owner.soft_labels("c1", "category")
    assert soft.notna().all(axis=1).sum() == 1                 # bob's item only
    table = owner.raters("c1").set_index("rater_id")
    assert table.loc["alice", "status"] == "revoked" and table.loc["bob", "status"] == "active"
    assert table.loc["alice", "ratings"] == 2 and table.loc["alice", "done"] == 1
    # alice's open item went back to the pool
    with store.read() as s:
        item = s.execute(select(Item).where(Item.item_key == held.item_id)).scalar_one()
        status = s.execute(select(Assignment.status).where(Assignment.item_id == item.id)
                           ).scalars().all()
    assert item.n_live == 0 and status == ["expired"]


def test_rater_from_before_resume_codes_claims_the_name_once(setup):
    store, _, invite = setup
    join_campaign(store, invite.token, "old-timer")
    with store.write() as s:  # as a database written before resume codes existed
        s.execute(update(Rater).where(Rater.name == "old-timer").values(code_hash=None))
    claimed = join_campaign(store, invite.token, "old-timer")
    assert claimed.resume_code
    with pytest.raises(ResumeCodeRequired):
        join_campaign(store, invite.token, "old-timer")
    assert join_campaign(store, invite.token, "old-timer", claimed.resume_code).name == \
        "old-timer"


def test_resume_codes_are_random_and_readable():
    codes = {new_resume_code() for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert len(code) == 19 and code.count("-") == 3
        assert not set(code.replace("-", "")) & set("01ILOU")
    with pytest.raises(AccessDenied):
        hash_resume_code("   ")


# ------------------------------------------------------------------ an attacker's names
# look-alikes of "alice" an attacker types to appear to the owner as a second "alice"
LOOKALIKES = {
    "cyrillic a": "\u0430lice",
    "cyrillic e": "alic\u0435",
    "greek capital alpha": "\u0391lice",
    "capitals": "ALICE",
    "zero-width joiner inside": "al\u200dice",
    "zero-width space inside": "ali\u200bce",
    "combining acute": "ali\u0301ce",
    "precomposed accent": "al\u00edce",
    "fullwidth with a cyrillic i": "\uff41l\u0456ce",
    "latin alpha": "\u0251lice",
}


@pytest.mark.parametrize("attack", LOOKALIKES.values(), ids=LOOKALIKES.keys())
def test_a_lookalike_of_a_taken_name_is_refused(setup, attack):
    store, owner, invite = setup
    join_campaign(store, invite.token, "alice")
    with pytest.raises(ValueError, match="a rater named 'alice' already exists; choose another "
                                         "name or use your resume code"):
        join_campaign(store, invite.token, attack)
    assert owner.raters("c1")["rater_id"].tolist() == ["alice"]


def test_greek_omicron_and_fullwidth_names(setup):
    store, owner, invite = setup
    oscar = join_campaign(store, invite.token, "oscar")
    with pytest.raises(ValueError, match="'oscar' already exists"):
        join_campaign(store, invite.token, "\u03bfscar")            # Greek omicron
    # fullwidth letters are the same name once normalised: the resume-code path, not a new one
    with pytest.raises(ResumeCodeRequired, match="'oscar' is taken"):
        join_campaign(store, invite.token, "\uff4f\uff53\uff43\uff41\uff52")
    again = join_campaign(store, invite.token, "\uff4f\uff53\uff43\uff41\uff52",
                          oscar.resume_code)
    assert again.name == "oscar" and again.resume_code is None
    assert owner.raters("c1")["rater_id"].tolist() == ["oscar"]
    # a name that merely looks different is another rater
    assert join_campaign(store, invite.token, "oskar").resume_code


@pytest.mark.parametrize("attack,match", [
    ("\u202eecila", "text-direction"),                 # right-to-left override
    ("alice\u202e", "text-direction"),
    ("bob\u2066x\u2069", "text-direction"),           # isolates
    ("\u202aalice\u202c", "text-direction"),          # embedding
    ("\u200d", "visible"),                             # only a zero-width joiner
    ("\u200b\u200c\u2060\ufeff", "visible"),           # only zero-width characters
    ("\u0301\u0301", "visible"),                       # only combining marks
])
def test_bidi_controls_and_invisible_names_are_refused(setup, attack, match):
    store, owner, invite = setup
    with pytest.raises(ValueError, match=match):
        join_campaign(store, invite.token, attack)
    assert owner.raters("c1").empty


def test_a_name_stored_before_normalising_still_resumes(setup):
    store, owner, invite = setup
    old = join_campaign(store, invite.token, "zoe")
    with store.engine.begin() as conn:               # as a fullwidth name was stored before
        conn.execute(update(Rater).values(name="\uff5a\uff4f\uff45"))
    again = join_campaign(store, invite.token, "zoe", old.resume_code)
    assert again.resume_code is None and len(owner.raters("c1")) == 1


# ------------------------------------------------------------------ an attacker's script
class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_one_address_creates_at_most_five_names_an_hour(setup):
    store, owner, invite = setup
    clock = FakeClock()
    limit = JoinLimiter(clock=clock)
    bots = [join_campaign(store, invite.token, f"bot{i}", client="ip:203.0.113.9",
                          join_limit=limit) for i in range(5)]
    with pytest.raises(RateLimited, match="too many new names from your address"):
        join_campaign(store, invite.token, "bot5", client="ip:203.0.113.9", join_limit=limit)
    assert len(owner.raters("c1")) == 5                        # the refused name was not made
    # resuming an identity is not limited; another address is not affected
    again = join_campaign(store, invite.token, "bot0", bots[0].resume_code,
                          client="ip:203.0.113.9", join_limit=limit)
    assert again.resume_code is None
    assert join_campaign(store, invite.token, "carol", client="ip:198.51.100.7",
                         join_limit=limit).resume_code
    clock.now += 3601                                          # an hour later: allowed again
    assert join_campaign(store, invite.token, "bot5", client="ip:203.0.113.9",
                         join_limit=limit).resume_code


def test_the_join_limit_is_per_invite_link(setup, tmp_path):
    store, owner, invite = setup
    other = owner.create_campaign("c2", tiny_dataset(tmp_path / "two"), ratings_per_item=1)
    limit = JoinLimiter(max_new=1, clock=FakeClock())
    join_campaign(store, invite.token, "a", client="ip:203.0.113.9", join_limit=limit)
    with pytest.raises(RateLimited):
        join_campaign(store, invite.token, "b", client="ip:203.0.113.9", join_limit=limit)
    join_campaign(store, other.token, "b", client="ip:203.0.113.9", join_limit=limit)


def test_a_script_cannot_submit_faster_than_a_human(setup):
    store, owner, invite = setup                       # 8 items, 2 scales, 2 ratings each
    clock = FakeClock()
    limit = SubmitLimiter(burst=3, per_second=1.0, clock=clock)
    bot = join_campaign(store, invite.token, "bot", submit_limit=limit)
    for _ in range(3):                                 # the burst
        rate_item(bot, bot.next_item())
    item = bot.next_item()
    with pytest.raises(RateLimited, match="slow down"):
        bot.submit_all(item.item_id, {"category": 0, "valence": 3})
    with pytest.raises(RateLimited):
        bot.submit(item.item_id, "category", 0)
    # nothing of the refused item was stored, and it is still the rater's
    assert len(bot.my_ratings()) == 6 and bot.next_item().item_id == item.item_id
    # a reload (a new session of the same rater) shares the bucket
    reloaded = resume_rater(store, bot.link_token, submit_limit=limit)
    with pytest.raises(RateLimited):
        reloaded.submit(item.item_id, "category", 0)
    clock.now += 0.5                                   # half a token: one of the two scales
    assert reloaded.submit(item.item_id, "category", 0)
    with pytest.raises(RateLimited):
        reloaded.submit(item.item_id, "valence", 3)
    clock.now += 0.5
    assert reloaded.submit(item.item_id, "valence", 3)
    assert len(owner.ratings("c1")) == 8
    # without a limit (the bench, the CLI) submits are not paced
    free = join_campaign(store, invite.token, "bench")
    for _ in range(4):
        rate_item(free, free.next_item())
    assert len(free.my_ratings()) == 8


def test_the_servers_limits_are_a_humans_pace():
    clock = FakeClock()
    limit = SubmitLimiter(clock=clock)
    assert (SUBMIT_LIMIT.burst, SUBMIT_LIMIT.per_second) == (10, 1.0)
    assert (JOIN_LIMIT.max_new, JOIN_LIMIT.window_s) == (5, 3600)
    for _ in range(10):
        limit.take("r")
    with pytest.raises(RateLimited) as refused:
        limit.take("r")
    assert refused.value.retry_after == pytest.approx(1.0)
    for _ in range(30):                                # then one a second, sustained
        clock.now += 1.0
        limit.take("r")
    limit.take("another rater")
