"""Real-browser harness: a Streamlit server over a tmp data directory and a headless Chromium.

No conftest: test modules import the fixtures they use by name
(``from harness import app_url, browser, page, ...``). Session fixtures live in ONE test module
(``test_browser_walk.py``): pytest keeps one cache per module that imports a fixture, so a second
importing module would start a second server.

- :class:`AppServer` starts ``streamlit run app/Home.py`` on a free port in its own process group
  with ``AFFECTLAB_DATA`` pointing at a tmp directory, waits for ``/_stcore/health`` and kills
  the group on exit; the owner's password is :data:`ADMIN_PASSWORD`. ``tests/test_app_server.py``
  uses it without a browser.
- ``owner_state`` signs in once (:func:`sign_in`); every ``page`` starts with its session
  cookie, so it is the owner's browser. A test that needs a stranger's browser makes its own
  context.
- ``app_data`` generates tiny default corpora (so Home and Data have something to show),
  ``seeded_runs`` trains two tiny face runs through core (so Runs, Explore and Live have runs
  without depending on the Train page's test), ``fake_media`` writes the fake camera/microphone
  files (``media.py``) and ``browser`` launches Debian's Chromium with them.
- Screenshots go to ``$AFFECTLAB_SCREENSHOTS`` (default ``test-artifacts/screenshots``);
  ``scripts/screenshots.sh`` copies a fresh set into ``docs/screenshots``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
APP_ENTRY = REPO / "app" / "Home.py"
CHROMIUM = Path(os.environ.get("AFFECTLAB_CHROMIUM", "/usr/bin/chromium"))
VIEWPORT = {"width": 1280, "height": 800}
# Tiny default corpora: large enough for every split to hold each class a few times.
N_FACES, N_SPEECH = 120, 40
SERVER_START_TIMEOUT = 90.0
ADMIN_PASSWORD = "browser-walk-admin"  # the owner's password on the test server


def screenshot_dir() -> Path:
    path = Path(os.environ.get("AFFECTLAB_SCREENSHOTS", REPO / "test-artifacts" / "screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the server -------------------------------------------------------------------------------

class AppServer:
    """``streamlit run app/Home.py`` as a subprocess (own process group), for a ``with`` block.

    data_dir: becomes ``AFFECTLAB_DATA`` of the server; log: where stdout/stderr go.
    ``url`` is ``http://127.0.0.1:<port>`` once started.
    """

    def __init__(self, data_dir: str | os.PathLike, log: str | os.PathLike,
                 port: int | None = None, entry: Path = APP_ENTRY):
        self.data_dir = Path(data_dir)
        self.log_path = Path(log)
        self.port = free_port() if port is None else int(port)
        self.entry = Path(entry)
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        streamlit = Path(sys.executable).with_name("streamlit")
        return [str(streamlit), "run", str(self.entry),
                "--server.port", str(self.port), "--server.address", "127.0.0.1",
                "--server.headless", "true", "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false"]

    def start(self, timeout: float = SERVER_START_TIMEOUT) -> str:
        env = dict(os.environ, AFFECTLAB_DATA=str(self.data_dir), OMP_NUM_THREADS="1",
                   PYTHONUNBUFFERED="1", AFFECTLAB_ADMIN_PASSWORD=ADMIN_PASSWORD)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("wb")
        self.proc = subprocess.Popen(self.command(), cwd=REPO, env=env, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self.wait_healthy(timeout)
        return self.url

    def health(self) -> str | None:
        """The body of ``/_stcore/health`` ("ok" when the server is up), None when unreachable."""
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                return r.read().decode("utf-8", "replace").strip()
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return None

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited with {self.proc.returncode} before it was "
                                   f"healthy:\n{self.log_tail()}")
            if self.health() == "ok":
                return
            time.sleep(0.25)
        raise TimeoutError(f"streamlit not healthy after {timeout:.0f} s:\n{self.log_tail()}")

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the whole process group (streamlit and anything it spawned), then SIGKILL."""
        if self.proc is None or self.proc.poll() is not None:
            return
        pgid = self.proc.pid  # start_new_session: the group id is the leader's pid
        try:
            os.killpg(pgid, signal.SIGTERM)
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.proc.wait(timeout)
        except ProcessLookupError:
            pass

    def __enter__(self) -> AppServer:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


# -- what exists ------------------------------------------------------------------------------

def registered_pages() -> dict[str, Path]:
    """Pages that ``app/Home.py`` registers with ``st.Page("<dir>/<stem>.py", ...)``:
    stem -> file (which need not exist yet)."""
    found = re.findall(r"""st\.Page\(\s*["']([A-Za-z0-9_/]+\.py)["']""", APP_ENTRY.read_text())
    return {Path(rel).stem: APP_ENTRY.parent / rel for rel in found}


def require_page(stem: str) -> None:
    """Skip the calling test when the page is not written or not in the navigation yet."""
    pages = registered_pages()
    if stem not in pages:
        on_disk = [p for p in APP_ENTRY.parent.rglob(f"{stem}.py") if p.parent != APP_ENTRY.parent]
        where = f"{on_disk[0].relative_to(REPO)} exists but " if on_disk else ""
        pytest.skip(f"page {stem!r}: {where}not registered in app/Home.py's navigation yet")
    if not pages[stem].is_file():
        pytest.skip(f"page {stem!r}: {pages[stem].relative_to(REPO)} does not exist yet")


# -- data -------------------------------------------------------------------------------------

def generate_tiny_corpora(data_dir: Path) -> list[Path]:
    """faces-default (N_FACES items) and speech-default (N_SPEECH) under ``data_dir/datasets``."""
    from affectlab.data.synth.corpus import generate_corpus

    out = []
    for name, modality, n in (("faces-default", "face", N_FACES),
                              ("speech-default", "speech", N_SPEECH)):
        out.append(generate_corpus(modality, n=n, seed=0, out=data_dir / "datasets" / name,
                                   name=name, progress=False, workers=1).root)
    return out


def train_tiny_run(data_dir: Path, name: str, method: str = "ce", epochs: int = 1) -> Path:
    """Train mini_xception on faces-default for ``epochs`` on CPU; returns the run directory."""
    from affectlab.engine.config import RunConfig
    from affectlab.engine.trainer import train

    config = RunConfig(dataset=data_dir / "datasets" / "faces-default", model="mini_xception",
                       method=method, epochs=epochs, device="cpu", name=name,
                       out=data_dir / "runs" / name)
    result = train(config, progress=False)
    if result.status != "finished":
        raise RuntimeError(f"seed run {name} ended {result.status}")
    return result.run_dir


# -- fixtures (import these by name into the test module) -------------------------------------

@pytest.fixture(scope="session")
def app_data(tmp_path_factory) -> Path:
    """A tmp ``AFFECTLAB_DATA`` with the tiny default corpora."""
    root = tmp_path_factory.mktemp("affectlab-browser-data")
    old = os.environ.get("AFFECTLAB_DATA")
    os.environ["AFFECTLAB_DATA"] = str(root)  # affectlab.paths inside this process, while generating
    try:
        generate_tiny_corpora(root)
    finally:
        if old is None:
            os.environ.pop("AFFECTLAB_DATA", None)
        else:
            os.environ["AFFECTLAB_DATA"] = old
    return root


def stop_umap_workers(data_dir: Path, run: str = "*") -> list[int]:
    """SIGTERM the background UMAP workers the test server started for runs under
    ``data_dir`` (each runs in its own session, outliving the server's process group); their
    pids are in ``outputs/umap.lock``. ``run``: one run's name (default: every run). Returns
    the pids signalled."""
    pids = []
    for lock in Path(data_dir).glob(f"runs/{run}/outputs/umap.lock"):
        try:
            pid = int(lock.read_text().strip() or 0)
        except (OSError, ValueError):
            continue
        if pid > 0:
            try:
                os.kill(pid, signal.SIGTERM)
                pids.append(pid)
            except (ProcessLookupError, PermissionError):
                pass
    return pids


@pytest.fixture(scope="session")
def app_server(app_data, tmp_path_factory) -> Iterator[AppServer]:
    log = tmp_path_factory.mktemp("streamlit-log") / "streamlit.log"
    try:
        with AppServer(app_data, log) as server:
            yield server
    finally:
        stop_umap_workers(app_data)


@pytest.fixture(scope="session")
def app_url(app_server) -> str:
    return app_server.url


@pytest.fixture(scope="session")
def seeded_runs(app_data) -> list[Path]:
    """Two finished tiny runs (ce and ce+fspl-kl, 1 epoch each) under ``app_data/runs``."""
    return [train_tiny_run(app_data, "seed-ce", "ce"),
            train_tiny_run(app_data, "seed-fspl-kl", "ce+fspl-kl")]


BIG_RUN_ITEMS = 20_000


def write_big_run(data_dir: Path, n: int = BIG_RUN_ITEMS, name: str = "big-map") -> Path:
    """A run of ``n`` test items over a dataset ``big-faces`` of as many items, without training:
    the dataset's items reuse faces-default's faces (hard links, so it costs no disk), the run's
    outputs are made up (a cluster of embeddings per class, the engine's columns). For the
    Explore map at scale; returns the run directory."""
    import json

    import numpy as np
    import pandas as pd
    import yaml

    from affectlab.data.contract import load_dataset, write_dataset
    from affectlab.engine.rundir import RunDir
    from affectlab.fileio import link_or_copy

    src = load_dataset(data_dir / "datasets" / "faces-default")
    rng = np.random.default_rng(0)
    pick = rng.integers(0, len(src.items), n)
    items = src.items.iloc[pick].reset_index(drop=True)
    ids = [f"big{i:05d}" for i in range(n)]
    staging = data_dir / ".big-faces-staging"
    for iid, rel in zip(ids, items["media"], strict=True):
        link_or_copy(src.root / rel, staging / "media" / f"{iid}.png")
    items = items.assign(item_id=ids, media=[f"media/{i}.png" for i in ids], split="test")
    meta = dict(src.meta, name="big-faces")
    ds = write_dataset(data_dir / "datasets" / "big-faces", items,
                       src.ratings.iloc[0:0], meta, media_dir=staging)
    shutil.rmtree(staging, ignore_errors=True)  # write_dataset moved its contents
    k = len(ds.class_names)
    label = items["label"].to_numpy()
    logits = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[label]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    run = RunDir(data_dir / "runs" / name)
    centres = rng.normal(size=(k, 16)) * 3.0
    run.write_outputs("test", pd.DataFrame({
        "item_id": ids, "split": "test", "label": label, "pred": probs.argmax(1),
        "uncertainty": -(probs * np.log(probs)).sum(1), "probs": list(probs.astype(np.float32)),
        "soft_label": list(probs.astype(np.float32))}),
        (centres[label] + rng.normal(size=(n, 16))).astype(np.float32))
    run.config_path.write_text(yaml.safe_dump({
        "dataset": str(ds.root), "model": "mini_xception", "method": "ce", "name": name}))
    run.model_info_path.write_text(json.dumps({"class_names": ds.class_names,
                                               "modality": "face"}))
    return run.path


@pytest.fixture(scope="session")
def big_run(app_data) -> Path:
    """A 20,000-item run (:func:`write_big_run`) under ``app_data/runs``."""
    return write_big_run(app_data)


@pytest.fixture(scope="session")
def speech_run(app_data) -> Path:
    """A finished tiny speech run (convpool, 1 epoch) for the Live page's voice tab. Request it
    in every Live test: the page caches its run list for 10 s."""
    return train_tiny_speech_run(app_data)


@pytest.fixture(scope="session")
def fake_media(tmp_path_factory) -> tuple[Path, Path]:
    """(camera.y4m, microphone.wav) for Chromium's fake capture devices."""
    from media import write_fake_media

    return write_fake_media(tmp_path_factory.mktemp("fake-media"))


def chromium_args(video: Path, audio: Path) -> list[str]:
    # WebGL through SwiftShader (a CPU GL), explicitly: the Explore map of a large run is a
    # WebGL scatter, and headless Chromium on a machine without a GPU otherwise may draw nothing
    return ["--headless", "--no-sandbox", "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader", "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
            f"--use-file-for-fake-video-capture={video}",
            f"--use-file-for-fake-audio-capture={audio}"]


@pytest.fixture(scope="session")
def browser(fake_media):
    """Debian's Chromium through Playwright (never ``playwright install``); skips when absent."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium chromium-driver, or run "
                    "scripts/system-deps.sh)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    video, audio = fake_media
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=chromium_args(video, audio))
        try:
            yield b
        finally:
            b.close()


def artifact_dir() -> Path:
    """Where each test's last view goes (for a failure's post-mortem; CI can upload it)."""
    path = Path(os.environ.get("AFFECTLAB_ARTIFACTS", REPO / "test-artifacts")) / "last-view"
    path.mkdir(parents=True, exist_ok=True)
    return path


def save_last_view(pg, name: str) -> None:
    """Screenshot of whatever the page shows now, best effort (never raises)."""
    try:
        pg.screenshot(path=str(artifact_dir() / f"{name}.png"), timeout=10_000)
    except Exception:  # noqa: BLE001 - a post-mortem must not mask the test's own outcome
        pass


@pytest.fixture(scope="session")
def owner_state(browser, app_url) -> dict:
    """The browser storage of a context that signed in as the owner once (its session cookie):
    contexts made with it start signed in, as a reload of the owner's browser does."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app_url)
    try:
        pg = context.new_page()
        sign_in(pg)
        return context.storage_state()
    finally:
        context.close()


@pytest.fixture
def page(browser, app_url, owner_state, request):
    """A fresh browser context (own session) at 1280×800 with camera and microphone allowed,
    signed in as the owner (its session cookie). At teardown the page's last view goes to
    ``test-artifacts/last-view/<test>.png``."""
    context = browser.new_context(viewport=VIEWPORT, base_url=app_url,
                                  storage_state=owner_state)
    context.grant_permissions(["camera", "microphone"], origin=app_url)
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        save_last_view(pg, request.node.name)
        context.close()


# -- page helpers -----------------------------------------------------------------------------

def open_page(page, url_path: str = "", heading: str | None = None, timeout: float = 60_000):
    """Go to ``/<url_path>`` and wait for the app to render (and for ``heading`` if given)."""
    page.goto(f"/{url_path}")
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    if heading is not None:
        page.get_by_role("heading", name=heading, exact=True).first.wait_for(timeout=timeout)
    wait_idle(page, timeout)
    return page


def sign_in(page, password: str = ADMIN_PASSWORD, timeout: float = 60_000) -> None:
    """Sign in as the owner with the password form (the app's only page for a visitor), then
    wait for Home and for the session cookie that keeps this browser signed in."""
    open_page(page, "", heading="Sign in", timeout=timeout)
    widget(page, "stTextInput", "Owner password").locator("input").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="affectlab", exact=True).first.wait_for(timeout=timeout)
    page.wait_for_function("() => document.cookie.includes('affectlab_owner=')",
                           timeout=timeout)
    wait_idle(page, timeout)


def wait_idle(page, timeout: float = 60_000) -> None:
    """Wait until the connected app has finished its script run (Streamlit marks the app root
    with ``data-test-script-state``; "notRunning" once a run completed)."""
    page.wait_for_selector('[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
                           '[data-test-script-state="notRunning"]', timeout=timeout)


def sidebar_link(page, title: str):
    exact = re.compile(rf"(^|[^A-Za-z]){re.escape(title)}\s*$")  # after the icon
    return page.locator('[data-testid="stSidebarNav"] a').filter(has_text=exact).first


def scroll_to(locator, margin: int = 70) -> None:
    """Scroll so that ``locator``'s top sits ``margin`` px below the viewport's top (under the
    app's header). Streamlit scrolls its main section, not the window: ``window.scrollBy``
    does nothing there, so this moves the element's nearest scrolling ancestor."""
    locator.evaluate(
        """(e, margin) => {
             e.scrollIntoView({block: 'start'});
             let p = e.parentElement;
             while (p && !(p.scrollHeight > p.clientHeight
                           && /auto|scroll/.test(getComputedStyle(p).overflowY))) {
               p = p.parentElement;
             }
             (p || document.scrollingElement).scrollBy(0, -margin);
           }""", margin)


def settle(page, timeout: float = 15_000) -> bool:
    """Best effort before a screenshot: the script run is over, fonts are loaded and every image
    has decoded, then a short pause for plotly and vega to paint. Bounded; True when all of it
    held in time. Never waits for network idleness: a WebRTC stream and ``st.fragment``
    polling keep the network busy for as long as the page is open."""
    from playwright.sync_api import Error as PlaywrightError

    ok = True
    try:
        wait_idle(page, timeout)
    except PlaywrightError:
        ok = False  # a fragment polling at 4 Hz may rerun right then: shoot anyway
    try:
        page.wait_for_function(
            """() => document.fonts.status === 'loaded'
                     && [...document.images].every(i => i.complete)""", timeout=timeout)
    except PlaywrightError:
        ok = False
    page.wait_for_timeout(400)  # settle: charts animate their first draw
    return ok


def shoot(page, name: str, height: int | None = None) -> Path | None:
    """Save a viewport screenshot as ``<screenshot_dir>/<name>.png`` once the page has settled;
    ``height``: a taller viewport for this shot only (a page whose main content does not fit
    800 px). A screenshot never fails the test: a failure to take it is reported as a warning
    and None is returned (``scripts/screenshots.sh`` then reports the missing file)."""
    import warnings

    from playwright.sync_api import Error as PlaywrightError

    size = page.viewport_size
    if height is not None:
        page.set_viewport_size({"width": size["width"], "height": height})
    try:
        settle(page)
        path = screenshot_dir() / f"{name}.png"
        page.screenshot(path=str(path), timeout=30_000)
    except PlaywrightError as exc:
        warnings.warn(f"screenshot {name!r} not taken: {exc}", stacklevel=2)
        return None
    finally:
        if height is not None:
            page.set_viewport_size(size)
    return path


def goto_page(page, title: str, heading: str | None = None, timeout: float = 60_000):
    """Open the app at its root, then follow the sidebar link ``title`` as a user would (a deep
    link would also work, but see ``test_deep_link_keeps_page_titles``)."""
    open_page(page, "", timeout=timeout)
    sidebar_link(page, title).click()
    page.get_by_role("heading", name=heading or title, exact=True).first.wait_for(timeout=timeout)
    wait_idle(page, timeout)
    return page


def train_tiny_speech_run(data_dir: Path, name: str = "seed-speech") -> Path:
    """Train convpool on speech-default for one epoch on CPU; returns the run directory."""
    from affectlab.engine.config import RunConfig
    from affectlab.engine.trainer import train

    config = RunConfig(dataset=data_dir / "datasets" / "speech-default", model="convpool",
                       method="ce", epochs=1, device="cpu", name=name,
                       out=data_dir / "runs" / name)
    result = train(config, progress=False)
    if result.status != "finished":
        raise RuntimeError(f"seed run {name} ended {result.status}")
    return result.run_dir


# -- widgets ----------------------------------------------------------------------------------

def widget(page, testid: str, label: str):
    """The Streamlit widget ``data-testid=testid`` whose label is exactly ``label``."""
    lab = page.locator('[data-testid="stWidgetLabel"]').filter(
        has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator(f'[data-testid="{testid}"]').filter(has=lab).first


def choose(page, label: str, option: str, multi: bool = False) -> None:
    """Pick ``option`` (a prefix of the shown text) in the selectbox/multiselect ``label``."""
    box = widget(page, "stMultiSelect" if multi else "stSelectbox", label)
    box.locator("input").first.click()
    opt = page.locator('[role="option"]').filter(
        has_text=re.compile(rf"^\s*{re.escape(option)}")).first
    opt.click()
    if multi:
        page.keyboard.press("Escape")  # close the dropdown
    wait_idle(page)


def set_number(page, label: str, value) -> None:
    inp = widget(page, "stNumberInput", label).locator("input")
    inp.fill(str(value))
    inp.press("Enter")
    wait_idle(page)


def set_text(page, label: str, value: str) -> None:
    inp = widget(page, "stTextInput", label).locator("input")
    inp.fill(value)
    inp.press("Enter")
    wait_idle(page)


def upload(page, uploader, path: str | os.PathLike, attempts: int = 5,
           timeout: float = 15_000, reopen=None) -> None:
    """Put the file ``path`` into the ``st.file_uploader`` located by ``uploader`` and wait until
    the uploader lists it. Retried: a rerun that lands while the upload starts (a component's
    first value, a fragment) can remount the uploader, which then forgets the file. From the
    third try ``reopen()`` (when given: e.g. ``page.reload``, a new session) runs first, in case
    this session's uploader is the one that is stuck. The failure message carries the upload
    requests and the console's errors."""
    from playwright.sync_api import Error as PlaywrightError

    name = Path(path).name
    sent: list[str] = []  # the upload requests' outcomes, for the failure message
    errors: list[str] = []  # the browser console's errors

    def note(response) -> None:
        if "/_stcore/upload_file" in response.url:
            sent.append(f"{response.request.method} {response.status}")

    def note_failed(request) -> None:
        if "/_stcore/upload_file" in request.url:
            sent.append(f"{request.method} failed ({request.failure})")

    def note_console(message) -> None:
        if message.type == "error":
            errors.append(message.text[:200])

    listeners = (("response", note), ("requestfailed", note_failed), ("console", note_console))
    for event, handler in listeners:
        page.on(event, handler)
    try:
        for attempt in range(attempts):
            if attempt >= 2 and reopen is not None:
                reopen()
            if attempt:  # let the reruns that swallowed the last try settle first
                wait_components(page)
            wait_idle(page)
            uploader.locator('input[type="file"]').set_input_files(str(path))
            try:
                uploader.get_by_text(name, exact=True).wait_for(timeout=timeout)
                wait_idle(page)
                return
            except PlaywrightError as exc:
                if attempt == attempts - 1:
                    state = page.locator('[data-testid="stApp"]').first.get_attribute(
                        "data-test-script-state")
                    raise AssertionError(
                        f"{name} never showed in the uploader after {attempts} tries; upload "
                        f"requests: {sent or 'none'}; script state: {state}; console errors: "
                        f"{errors[-5:] or 'none'}") from exc
    finally:
        for event, handler in listeners:
            page.remove_listener(event, handler)


def wait_components(page, timeout: float = 60_000) -> None:
    """Wait until every custom component iframe on the page has loaded and drawn a button, then
    until the reruns their first values trigger are over."""
    frames = page.locator('iframe[title^="streamlit_"]')
    for i in range(frames.count()):
        frame = page.frame_locator('iframe[title^="streamlit_"]').nth(i)
        frame.locator("button").first.wait_for(state="attached", timeout=timeout)
    page.wait_for_timeout(300)  # the component's setComponentValue → a rerun request
    wait_idle(page, timeout)
