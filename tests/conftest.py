import os

# Two cores on the build machines: keep torch from oversubscribing them in parallel helpers.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

settings.register_profile("default", deadline=None, max_examples=100)
settings.register_profile("ci", deadline=None, max_examples=200)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def pytest_collection_modifyitems(config, items):
    """Browser tests get one retry. They drive Chromium against a live server on a loaded 2-core
    CI machine, where a rerun that lands mid-upload or mid-keypress occasionally loses the
    action (twice in CI, never in 10+ local runs under load); the retry is reported ("R" and
    "rerun" in the summary), and a second failure fails the suite."""
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.flaky(reruns=1, reruns_delay=2))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path, monkeypatch):
    """Every test writes under its own tmp data directory, never the user's data/."""
    monkeypatch.setenv("AFFECTLAB_DATA", str(tmp_path / "affectlab-data"))
