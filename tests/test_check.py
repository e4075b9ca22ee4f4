"""`sml-run check` and `sml-run clean` as a user runs them, and the hopsworks backend without its settings.

The check runs `sml-run` as a user does, in a process of its own; the commands that must stop before any
stage call `main`, what `sml-run` runs, in this process (no interpreter start for each)."""

from __future__ import annotations

import os

import pytest
from helpers.runs import sml_run

from serverless_ml.runs.cli import main


@pytest.fixture
def env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "SML_"))}
    return {**clean, "SML_OUTPUTS": str(tmp_path / "outputs"), "SML_BACKEND": "local"}


def test_check_passes_on_the_local_backend_and_leaves_nothing_behind(env):
    done = sml_run("check", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED"))]
    assert len(lines) == 7 and all(line.startswith("ok") for line in lines), done.stdout
    assert "7 of 7 capabilities ok." in done.stdout
    left = sml_run("clean", env=env).stdout  # clean looks for the check's scratch objects by the registry's names
    assert left.startswith("0 object(s)"), left


def sml_main(*args: str, env: dict, monkeypatch, capsys) -> tuple[int, str]:
    "`sml-run args` in this process, with exactly the environment `env`: its exit code and what it printed to stderr."
    for name in [name for name in os.environ if name not in env]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize("command", [["run"], ["daily"], ["backfill", "--days", "2"], ["check"], ["clean", "--yes"]])
def test_every_command_on_hopsworks_without_a_key_fails_at_once_saying_what_to_set(env, command, monkeypatch, capsys):
    env = {**env, "SML_BACKEND": "hopsworks", "HOPSWORKS_PROJECT": "demo"}
    code, stderr = sml_main(*command, env=env, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2
    assert "needs HOPSWORKS_API_KEY set in the environment" in stderr
    assert not os.path.exists(os.path.join(env["SML_OUTPUTS"], "runs"))  # no stage started


def test_a_bad_namespace_stops_every_command_naming_it(env, monkeypatch, capsys):
    code, stderr = sml_main("daily", env={**env, "SML_NAMESPACE": "Bob's"}, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "SML_NAMESPACE=\"Bob's\"" in stderr
