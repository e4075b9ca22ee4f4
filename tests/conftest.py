"""Shared fixtures: every test runs against its own temporary store, never the user's outputs/."""

from __future__ import annotations

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
