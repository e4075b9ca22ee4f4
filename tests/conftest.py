"""Shared fixtures: every test runs against its own temporary store, never the user's outputs/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def use_local_store(patch: pytest.MonkeyPatch, root: Path) -> Path:
    "Point SML_HOME at `root/store`, SML_OUTPUTS at `root/outputs` and SML_BACKEND at local; returns SML_HOME."
    patch.setenv("SML_HOME", str(root / "store"))
    patch.setenv("SML_OUTPUTS", str(root / "outputs"))
    patch.setenv("SML_BACKEND", "local")
    return root / "store"


@pytest.fixture
def sml_home(tmp_path, monkeypatch):
    "A fresh, empty local store folder, set as SML_HOME (and outputs) for the test."
    return use_local_store(monkeypatch, tmp_path)


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
