"""The hopsworks backend's login without a cluster: settings from environment variables, no prompt ever, and the
project's own message when the host does not answer (issue 26, point 9). The backend against a cluster, at the wire,
is in test_hopsworks_sdk.py and test_hopsworks_processes.py."""

from __future__ import annotations

import os
import subprocess
import sys

import hopsworks
import pytest

from serverless_ml.runs.cli import main
from serverless_ml.store.login import login, logout

VARIABLES = ("HOPSWORKS_API_KEY", "HOPSWORKS_PROJECT", "HOPSWORKS_HOST", "HOPSWORKS_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hopsworks, "login", lambda **kwargs: pytest.fail("hopsworks.login must not be called"))
    return monkeypatch


@pytest.mark.parametrize("present, missing", [({}, "HOPSWORKS_API_KEY and HOPSWORKS_PROJECT"),
                                              ({"HOPSWORKS_API_KEY": "k"}, "HOPSWORKS_PROJECT"),
                                              ({"HOPSWORKS_PROJECT": "p"}, "HOPSWORKS_API_KEY")])
def test_missing_variables_fail_at_once_naming_them(clean_env, present, missing):
    for name, value in present.items():
        clean_env.setenv(name, value)
    with pytest.raises(RuntimeError, match=missing):
        login("hopsworks")


def test_no_prompt_even_without_a_terminal(tmp_path):
    code = "from serverless_ml.store.login import login\ntry:\n    login('hopsworks')\nexcept RuntimeError as e:\n    print(e)"
    env = {"PATH": "/usr/bin:/bin", "SML_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, env=env)
    assert "HOPSWORKS_API_KEY" in done.stdout


@pytest.mark.parametrize("command", [["daily"], ["check"], ["clean"]])
def test_an_unreachable_host_stops_sml_run_with_one_line_naming_it(command, tmp_path, monkeypatch, capsys):
    "Issue 26, point 9: what happened, which host, what to do; not a `requests` traceback."
    for name in [name for name in os.environ if name.startswith(("HOPSWORKS_", "SML_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SML_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("SML_BACKEND", "hopsworks")
    monkeypatch.setenv("HOPSWORKS_CERT_FOLDER", str(tmp_path / "certs"))
    for name, value in {"HOPSWORKS_API_KEY": "k", "HOPSWORKS_PROJECT": "demo", "HOPSWORKS_HOST": "127.0.0.1",
                        "HOPSWORKS_PORT": "1"}.items():  # nothing listens on port 1
        monkeypatch.setenv(name, value)
    try:
        code = main(command)
    finally:
        logout()
    stderr = capsys.readouterr().err
    assert code == 2
    assert stderr.startswith("sml-run: Could not reach Hopsworks at https://127.0.0.1:1 (ConnectionError"), stderr
    assert "Check HOPSWORKS_HOST and HOPSWORKS_PORT" in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "outputs" / "runs").exists()  # no stage started
    assert list((tmp_path / "certs").iterdir()) == []  # and the private folder of the failed login is gone
