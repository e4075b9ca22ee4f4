"""Shared fixtures: every test runs against its own temporary store, never the user's outputs/."""

from __future__ import annotations

import pytest


@pytest.fixture
def sml_home(tmp_path, monkeypatch):
    "A fresh, empty local store folder, set as SML_HOME (and outputs) for the test."
    home = tmp_path / "store"
    monkeypatch.setenv("SML_HOME", str(home))
    monkeypatch.setenv("SML_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("SML_BACKEND", "local")
    return home
