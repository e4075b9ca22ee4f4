"""The config module: paths a user can redirect, from any working folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from serverless_ml import config

ROOT = Path(__file__).resolve().parents[1]


def test_root_is_found_from_any_folder(tmp_path):
    code = "from serverless_ml import config; print(config.project_root())"
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert Path(out.stdout.strip()) == ROOT


def test_store_follows_sml_home(sml_home):
    assert config.store_home() == sml_home


def test_unknown_backend_names_the_value(monkeypatch):
    monkeypatch.setenv("SML_BACKEND", "hopswork")
    with pytest.raises(ValueError, match="'hopswork'"):
        config.backend_name()
