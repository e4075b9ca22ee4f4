"""Shared fixtures: every test runs against its own temporary store, never the user's outputs/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers import pages, scheduling, stores, voila


@pytest.fixture(scope="session", autouse=True)
def no_real_outputs(tmp_path_factory):
    "Every test starts on a session-wide temporary store: a test that forgets `sml_home` never writes the real outputs/."
    with stores.using_store(tmp_path_factory.mktemp("session")):
        yield


@pytest.fixture
def sml_home(tmp_path):
    "A fresh, empty local store folder, set as SML_HOME (and outputs) for the test."
    with stores.using_store(tmp_path) as env:
        yield Path(env["SML_HOME"])


@pytest.fixture(scope="session")
def trained_store_env(tmp_path_factory) -> dict:
    "Both datasets' history and a registered model each, built once per session (per worker): read only, copy to write."
    return stores.build_trained(tmp_path_factory.mktemp("trained"))


@pytest.fixture(scope="session")
def filled_store_env(trained_store_env, tmp_path_factory) -> dict:
    "The trained store plus 3 days of one row and its prediction per dataset, built once per session: read only."
    return stores.add_three_days(stores.copy_store(trained_store_env, tmp_path_factory.mktemp("filled")))


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]


def require_chromium() -> None:
    "Skip (or, with CI=true, fail) when Debian's Chromium is not installed."
    if CHROMIUM.is_file():
        return
    message = (f"No browser at {CHROMIUM}: install Chromium with `sudo apt-get install chromium` "
               "(Debian/Ubuntu) to run the browser tests.")
    if os.environ.get("CI") == "true":
        pytest.fail(message + " CI=true: the browser tests must run, not skip.")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    "Headless Chromium with a fresh temporary profile (Playwright makes one per launch)."
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def apps_store(browser, filled_store_env, tmp_path_factory) -> dict:
    "A copy of the session's filled store (both models, 3 days of predictions) for a module's apps; it may add to it."
    return stores.copy_store(filled_store_env, tmp_path_factory.mktemp("apps"))


@pytest.fixture(scope="module")
def apps_server(apps_store, tmp_path_factory):
    "The apps over `apps_store`, served by a real Voila server with the `make serve` settings; yields its base URL."
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with voila.running_voila(env=apps_store, log_path=log) as url:
        yield url


@pytest.fixture
def shot(tmp_path):
    "`shot(page, name)`: a screenshot of the app in `page`, under the test's folder (and $SML_SCREENSHOTS, when set)."
    return lambda page, name: pages.screenshot(page, tmp_path, name)


def pytest_xdist_make_scheduler(config, log):
    "With `--dist loadscope`, send the scopes that take minutes out first (see helpers/scheduling.py)."
    if config.getvalue("dist") == "loadscope":
        return scheduling.SlowScopesFirst(config, log)
    return None
