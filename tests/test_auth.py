"""Owner sign-in (affectlab.annotate.signin) and session roles (affectlab.auth): the one-time
link, the password with its throttle, the browser-session cookie, sign-out, setting the
password, which pages each role gets; and ``affectlab app``'s start-up link."""

from __future__ import annotations

import io
import os

import pytest

from affectlab import auth
from affectlab.annotate import AccessDenied, OwnerSession, Store, owner_session, signin
from affectlab.annotate.access import admin_password_source
from affectlab.appserver import announce_signin, signin_url
from affectlab.auth import Role, pages_for, session_role

PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def fresh_signin(monkeypatch):
    """No grant, failure or used link leaks between tests; no password from the environment."""
    signin._reset_for_tests()
    monkeypatch.delenv("AFFECTLAB_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv(signin.ENV_LINK_SHA256, raising=False)
    yield
    signin._reset_for_tests()


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    s = Store(f"sqlite:///{tmp_path / 'a.db'}")
    yield s
    s.dispose()


# ------------------------------------------------------------------------ the one-time link
def test_link_token_works_once(monkeypatch):
    env: dict[str, str] = {}
    token = signin.issue_link_token(env)
    assert len(token) >= 43 and token not in env.values()  # only its hash is handed on
    monkeypatch.setenv(signin.ENV_LINK_SHA256, env[signin.ENV_LINK_SHA256])
    with pytest.raises(AccessDenied):
        signin.sign_in_with_link(token[:-1] + ("A" if token[-1] != "A" else "B"))
    grant = signin.sign_in_with_link(token)
    assert grant.method == "link" and grant.valid()
    with pytest.raises(AccessDenied, match="already used"):
        signin.sign_in_with_link(token)
    assert token not in repr(grant) and grant.session_token not in repr(grant)


def test_link_is_refused_when_the_server_started_without_one():
    with pytest.raises(AccessDenied, match="not valid"):
        signin.sign_in_with_link("anything")
    for bad in (None, 3, "", "x" * 300):
        with pytest.raises(AccessDenied):
            signin.sign_in_with_link(bad)


def test_a_new_start_gets_a_new_link():
    first = signin.issue_link_token()
    second = signin.issue_link_token()
    with pytest.raises(AccessDenied):
        signin.sign_in_with_link(first)  # the old server's link died with it
    assert signin.sign_in_with_link(second).valid()


def test_announce_prints_the_link_and_hands_on_only_its_hash():
    out = io.StringIO()
    link = announce_signin(8600, "0.0.0.0", out=out)
    assert link in out.getvalue() and link.startswith("http://localhost:8600/?token=")
    token = link.split("token=")[1]
    assert token not in os.environ.values()
    assert signin.sign_in_with_link(token).valid()


def test_signin_url():
    assert signin_url("t", 8501, None) == "http://localhost:8501/?token=t"
    assert signin_url("t", 80, "10.0.0.5") == "http://10.0.0.5:80/?token=t"
    assert signin_url("t", 8501, "::") == "http://localhost:8501/?token=t"
    assert signin_url("t", 8501, "::1") == "http://[::1]:8501/?token=t"
    assert signin_url("a+b/c", 8501, None).endswith("token=a%2Bb%2Fc")


# ------------------------------------------------------------------------ the password
def test_password_sign_in(store, monkeypatch):
    with pytest.raises(AccessDenied, match="no owner password is set yet"):
        signin.sign_in_with_password(store, PASSWORD)
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    grant = signin.sign_in_with_password(store, PASSWORD)
    assert grant.method == "password" and grant.valid()
    with pytest.raises(AccessDenied, match="wrong owner password"):
        signin.sign_in_with_password(store, "nope")
    for bad in (None, "", 5):
        with pytest.raises(AccessDenied):
            signin.sign_in_with_password(store, bad)


def test_failed_sign_ins_without_a_client_share_one_throttle(store, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    t0 = 1_000_000.0
    for i in range(signin.MAX_FAILURES):
        with pytest.raises(AccessDenied, match="wrong"):
            signin.sign_in_with_password(store, f"guess{i}", now=t0 + i)
    with pytest.raises(AccessDenied, match="too many failed sign-ins; try again in 51 s"):
        signin.sign_in_with_password(store, PASSWORD, now=t0 + 9)  # even the right one
    later = t0 + signin.FAILURE_WINDOW_S + 1
    assert signin.sign_in_with_password(store, PASSWORD, now=later).method == "password"


ATTACKER, OWNER = "ip:203.0.113.9", "ip:198.51.100.7"


def _guess(store, client: str, now: float, password: str = "guess") -> str:
    """One attempt: "ok", "wrong" or "throttled"."""
    try:
        signin.sign_in_with_password(store, password, now=now, client=client)
    except AccessDenied as exc:
        return "throttled" if "too many" in str(exc) else "wrong"
    return "ok"


def test_a_strangers_failures_do_not_lock_the_owner_out(store, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    t0 = 1_000_000.0
    for i in range(signin.MAX_FAILURES):
        assert _guess(store, ATTACKER, t0 + i) == "wrong"
    # the attacker's address is throttled, even with the right password ...
    assert _guess(store, ATTACKER, t0 + 10) == "throttled"
    assert _guess(store, ATTACKER, t0 + 11, PASSWORD) == "throttled"
    # ... and the owner, from another address, signs in at once
    grant = signin.sign_in_with_password(store, PASSWORD, now=t0 + 11, client=OWNER)
    assert grant.method == "password"
    assert _guess(store, ATTACKER, t0 + signin.FAILURE_WINDOW_S + 1) == "wrong"  # window over


def test_repeated_lockouts_of_one_address_double(store, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    now, lockouts, locked_since = 1_000_000.0, [], None
    while len(lockouts) < 3:                     # a script guessing once a second, for ever
        if _guess(store, ATTACKER, now) == "wrong":
            if locked_since is not None:
                lockouts.append(now - locked_since)
                locked_since = None
        elif locked_since is None:
            locked_since = now
        now += 1.0
    window = signin.FAILURE_WINDOW_S            # 10 guesses, then 60 s, 120 s, 240 s from the first
    assert lockouts == [window - 10, 2 * window - 10, 4 * window - 10]
    # the owner's success from that address clears its record
    assert _guess(store, ATTACKER, now + 4 * window, PASSWORD) == "ok"
    assert _guess(store, ATTACKER, now + 4 * window) == "wrong"


def test_the_global_ceiling_bounds_guesses_from_many_addresses(store, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    t0 = 1_000_000.0
    signin.sign_in_with_password(store, PASSWORD, now=t0, client=OWNER)  # the owner, earlier
    # a botnet: every address guesses a few times, far below its own limit
    results = [_guess(store, f"ip:10.0.{k // 250}.{k % 250}", t0 + 1 + k * 0.01)
               for k in range(3 * signin.GLOBAL_MAX_FAILURES)]
    assert results.count("wrong") == signin.GLOBAL_MAX_FAILURES   # passwords checked: bounded
    assert set(results[signin.GLOBAL_MAX_FAILURES:]) == {"throttled"}
    with pytest.raises(AccessDenied, match="on this server just now; try again in"):
        signin.sign_in_with_password(store, PASSWORD, now=t0 + 5, client="ip:10.9.9.9")
    # slowed, not locked: the owner's address (signed in before) still gets in, and once the
    # window has passed new addresses are checked again
    assert _guess(store, OWNER, t0 + 5, PASSWORD) == "ok"
    assert _guess(store, "ip:10.9.9.9", t0 + 2 + signin.FAILURE_WINDOW_S, PASSWORD) == "ok"


def test_grants_cannot_be_made_outside_signin():
    with pytest.raises(TypeError, match="only from"):
        signin.OwnerGrant("password", "token", 0.0)
    with pytest.raises(AccessDenied):
        signin.require_grant("a string")


# ------------------------------------------------------------------------ sessions
def test_roles_and_their_pages():
    state: dict = {}
    assert session_role({}, state) is Role.VISITOR
    assert session_role({"campaign": "tok"}, state) is Role.RATER
    assert session_role({"campaign": ""}, state) is Role.VISITOR
    auth.sign_in(state, signin.sign_in_with_link(signin.issue_link_token()))
    assert session_role({}, state) is Role.OWNER
    assert session_role({"campaign": "tok"}, state) is Role.OWNER  # the owner tries a link
    assert pages_for(Role.RATER) == ("annotate",)
    assert pages_for(Role.VISITOR) == ("signin",)
    assert {"data", "train", "runs", "explore", "live", "home", "annotate"} <= set(
        pages_for(Role.OWNER))


def test_a_forged_grant_in_the_state_is_no_owner():
    state = {auth.OWNER_GRANT: "owner"}
    assert session_role({}, state) is Role.VISITOR and auth.OWNER_GRANT not in state


def test_cookie_brings_the_browser_back_until_sign_out():
    tab1: dict = {}
    grant = signin.sign_in_with_link(signin.issue_link_token())
    auth.sign_in(tab1, grant)
    cookies = {auth.COOKIE: grant.session_token}
    tab2: dict = {}                                   # a reload or second tab, same browser
    assert session_role({}, tab2, cookies) is Role.OWNER
    assert tab2[auth.OWNER_GRANT].method == "link"
    assert session_role({}, {}, {auth.COOKIE: "forged"}) is Role.VISITOR
    auth.sign_out(tab1)
    assert tab1 == {}                                 # sign-out clears the session
    assert session_role({}, tab2, cookies) is Role.VISITOR  # and ends the other tab's too
    assert session_role({}, {}, cookies) is Role.VISITOR


def test_a_cookie_signed_in_from_an_address_comes_back_only_to_it(store):
    """The audit's attack: the owner's cookie is readable by any page of the same host (cookies
    do not tell ports apart) and was a bearer token anywhere. A grant signed in from a known
    address (the app's client key, ``ip:…``) now comes back by its cookie only to that
    address; one from a browser on the server's own machine (a per-session key) binds
    nothing, and a session that holds its grant keeps it."""
    owner = "ip:203.0.113.7"
    grant = signin.sign_in_with_link(signin.issue_link_token(), client=owner)
    cookies = {auth.COOKIE: grant.session_token}
    assert session_role({}, {}, cookies, owner) is Role.OWNER  # a reload of the owner's tab
    for thief in ("ip:198.51.100.9", "session:abc", None):
        assert session_role({}, {}, cookies, thief) is Role.VISITOR, thief
        assert signin.resume(grant.session_token, client=thief) is None
    assert grant.valid()  # the owner's own session is untouched
    signin.change_password(store, grant, "a long password 123")
    by_password = signin.sign_in_with_password(store, "a long password 123", client=owner)
    assert signin.resume(by_password.session_token, client="ip:198.51.100.9") is None
    assert signin.resume(by_password.session_token, client=owner) is not None
    local = signin.sign_in_with_link(signin.issue_link_token(), client="session:x")
    assert signin.resume(local.session_token, client="session:y") is not None


def test_the_forwarded_address_is_the_last_hop():
    pytest.importorskip("streamlit")
    from affectlab.app.client import address_key, forwarded_for

    assert forwarded_for("198.51.100.9") == "198.51.100.9"
    assert forwarded_for("10.0.0.1, 203.0.113.7") == "203.0.113.7"  # the proxy's own entry
    assert forwarded_for("") is None and forwarded_for(None) is None
    assert address_key(forwarded_for("1.2.3.4, not-an-ip")) is None


def test_grants_expire():
    grant = signin.sign_in_with_link(signin.issue_link_token(), now=0.0)
    assert grant.valid(now=signin.SESSION_HOURS * 3600 - 1)
    assert not grant.valid(now=signin.SESSION_HOURS * 3600 + 1)
    assert signin.resume(grant.session_token) is None


def test_owner_session_needs_a_live_grant(store):
    grant = signin.sign_in_with_link(signin.issue_link_token())
    assert isinstance(owner_session(store, grant), OwnerSession)
    signin.sign_out(grant)
    with pytest.raises(AccessDenied, match="sign in"):
        owner_session(store, grant)
    with pytest.raises(AccessDenied):
        owner_session(store, None)


# ------------------------------------------------------------------------ setting the password
def test_owner_sets_the_password_after_the_link(store, capsys):
    by_link = signin.sign_in_with_link(signin.issue_link_token())
    signin.change_password(store, by_link, PASSWORD)  # the way in for a new or lost password
    assert admin_password_source(store) == "store"
    by_password = signin.sign_in_with_password(store, PASSWORD)
    with pytest.raises(AccessDenied, match="current password is wrong"):
        signin.change_password(store, by_password, "another password")
    signin.change_password(store, by_password, "another password", current=PASSWORD)
    assert not by_link.valid()           # every other browser is signed out
    assert by_password.valid()
    assert signin.sign_in_with_password(store, "another password").valid()
    with pytest.raises(ValueError, match="10..1024 characters"):
        signin.change_password(store, by_password, "short", current="another password")
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err  # never printed


def test_password_from_the_environment_is_changed_there(store, monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    grant = signin.sign_in_with_password(store, PASSWORD)
    with pytest.raises(ValueError, match="AFFECTLAB_ADMIN_PASSWORD; change it there"):
        signin.change_password(store, grant, "a new password!", current=PASSWORD)


def test_changing_the_password_needs_a_grant(store):
    with pytest.raises(AccessDenied, match="sign in"):
        signin.change_password(store, None, PASSWORD)
