"""The app's roles under streamlit.testing.v1.AppTest: a visitor has only the sign-in page, the
owner signs in by password or the one-time link, sets the password on the Account page, signs
out; owner actions check the grant again when they run; typed names stay inside the data
directory (the Data page's dataset name with Overwrite, the export name)."""

from __future__ import annotations

import pytest
from app_support import APP, TIMEOUT, open_home, open_page, signed_in
from explore_fakes import make_dataset, make_fake_run
from streamlit.testing.v1 import AppTest

from affectlab import auth
from affectlab.annotate import signin
from affectlab.paths import data_dir

PASSWORD = "owner-secret-123"


@pytest.fixture
def world(monkeypatch):
    monkeypatch.setenv("AFFECTLAB_ADMIN_PASSWORD", PASSWORD)
    root = data_dir()
    ds = make_dataset(root, n=24)
    return root, ds, make_fake_run(root, ds)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def _click(at: AppTest, button) -> AppTest:
    button.click()
    return _run(at)


def test_a_visitor_has_only_the_sign_in_page(world):
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    assert [t.value for t in at.title] == ["Sign in"]
    assert [b.label for b in at.button] == ["Sign in"] and not at.tabs
    for page in ("data", "train", "runs", "explore", "live", "home", "annotate", "account"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"views/{page}.py")


def test_password_sign_in_then_sign_out(world):
    at = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    at.text_input(key="signin_password").input("wrong")
    _click(at, at.button[0])
    assert [e.value for e in at.error] == ["Wrong owner password."]
    at.text_input(key="signin_password").input(PASSWORD)
    _click(at, at.button[0])
    assert at.title[0].value == "affectlab"                   # Home, the workbench
    assert at.session_state["signin_password"] == ""          # the password is not kept
    _run(at.switch_page("views/train.py"))
    assert any(b.label == "Launch" for b in at.button)
    _click(at, at.button(key="signin_sign_out"))
    assert [t.value for t in at.title] == ["Sign in"]


def test_the_link_signs_in_once_and_leaves_the_address(world):
    at = open_home()
    assert at.title[0].value == "affectlab" and "token" not in at.query_params
    token = signin.issue_link_token()
    first = AppTest.from_file(APP, default_timeout=TIMEOUT)
    first.query_params["token"] = token
    assert _run(first).title[0].value == "affectlab"
    again = AppTest.from_file(APP, default_timeout=TIMEOUT)
    again.query_params["token"] = token
    _run(again)
    assert again.title[0].value == "Sign in" and "already used" in again.error[0].value


def test_owner_sets_a_password_on_the_account_page(world, monkeypatch):
    monkeypatch.delenv("AFFECTLAB_ADMIN_PASSWORD")
    at = open_page("account")
    assert at.title[0].value == "Account" and "one-time sign-in link" in at.caption[0].value
    at.text_input(key="account_new").input("a new owner password")
    at.text_input(key="account_again").input("a new owner password")
    _click(at, at.button[0])
    assert "Password set" in at.success[0].value
    fresh = _run(AppTest.from_file(APP, default_timeout=TIMEOUT))
    fresh.text_input(key="signin_password").input("a new owner password")
    _click(fresh, fresh.button[0])
    assert fresh.title[0].value == "affectlab"


def test_an_owner_action_checks_the_grant_again_when_it_runs(world):
    _, _, run = world
    at = open_page("runs")
    _click(at, at.button(key="runs_delete"))
    assert any(b.key == "runs_delete_yes" for b in at.button)
    signin.sign_out(at.session_state[auth.OWNER_GRANT])  # ended elsewhere (another tab)
    _click(at, at.button(key="runs_delete_yes"))
    assert run.is_dir()                                    # nothing deleted
    assert [t.value for t in at.title] == ["Sign in"]
    assert "Sign in as the owner to do this." in [e.value for e in at.error]


def test_a_page_run_without_home_shows_only_the_sign_in(world):
    for page in ("data", "train", "runs", "explore", "live", "home", "account"):
        at = _run(AppTest.from_file(APP.replace("Home.py", f"views/{page}.py"),
                                    default_timeout=TIMEOUT))
        assert [t.value for t in at.title] == ["Sign in"], page
        assert [b.label for b in at.button] == ["Sign in"], page


@pytest.mark.parametrize("name", ["../../victim", "..", "a/b", "x<y>", "CON", ".hidden"])
def test_data_page_refuses_a_name_outside_the_datasets(world, name):
    root, _, _ = world
    victim = root.parent / "victim"
    victim.mkdir(exist_ok=True)
    (victim / "precious.txt").write_text("keep")
    at = open_page("data")
    at.text_input(key="gen_name").input(name)
    at.checkbox(key="gen_overwrite").check()
    form_submit = next(b for b in at.button if b.label == "Generate")
    _click(at, form_submit)
    assert any("is not allowed" in e.value for e in at.error), [e.value for e in at.error]
    assert (victim / "precious.txt").read_text() == "keep"
    assert "data_job" not in at.session_state
    assert sorted(p.name for p in (root / "datasets").iterdir()) == ["tiny-faces"]


def test_data_page_refuses_an_import_output_name_outside(world, tmp_path):
    import fixtures_importers as fx

    src = fx.write_ravdess(tmp_path / "ravdess")
    at = open_page("data")
    at.selectbox(key="imp_format").select("ravdess")
    at.text_input(key="imp_src").input(str(src))
    at.text_input(key="imp_name").input("../../elsewhere")
    _click(at, next(b for b in at.button if b.label == "Import"))
    assert any("is not allowed" in e.value for e in at.error)
    assert "data_job" not in at.session_state


def test_signed_in_helper_gives_a_page_the_owner(world):
    at = signed_in(AppTest.from_file(APP.replace("Home.py", "views/home.py"),
                                     default_timeout=TIMEOUT))
    assert _run(at).title[0].value == "affectlab"
