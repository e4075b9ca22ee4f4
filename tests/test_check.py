"""`sml-run check` and `sml-run clean` as a user runs them, and the hopsworks backend without its settings.

The check runs `sml-run` as a user does, in a process of its own; the commands that must stop before any
stage call `main`, what `sml-run` runs, in this process (no interpreter start for each)."""

from __future__ import annotations

import os
import re

import pytest
from helpers import wire
from helpers.runs import sml_run

from serverless_ml.runs.cli import main
from serverless_ml.store.login import logout


@pytest.fixture
def env(tmp_path):
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "SML_"))}
    return {**clean, "SML_OUTPUTS": str(tmp_path / "outputs"), "SML_BACKEND": "local"}


def test_check_passes_on_the_local_backend_and_leaves_nothing_behind(env):
    done = sml_run("check", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED"))]
    assert len(lines) == 8 and all(line.startswith("ok") for line in lines), done.stdout
    assert "8 of 8 capabilities ok." in done.stdout
    left = sml_run("clean", env=env).stdout  # clean looks for the check's scratch objects by the registry's names
    assert left.startswith("0 object(s)"), left


def test_point_3_the_check_on_hopsworks_runs_a_stage_in_a_child_process_and_reads_after_it_exits(tmp_path):
    "Issue 23, point 3 (and 6: every step timed, the login too), against the wire fake of a cluster, in processes."
    with wire.leaving_nothing(wire.new_cluster(tmp_path / "cluster")) as fake:
        done = sml_run("check", env=wire.child_env(fake, tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [line for line in done.stdout.splitlines() if line.startswith(("ok", "FAILED"))]
    assert [line.split(" (")[0].split(":")[0] for line in lines] == [
        "ok     log in", "ok     in a child process", "ok     here, after the child exited", "ok     here",
        "ok     build a feature view, get its training data with the key as stage 2 does, split it",
        "ok     register a model, download it, load it", "ok     upload, overwrite and download a file in a nested "
        "Resources folder", "ok     delete the scratch objects"]
    assert "4 rows with their key" in lines[4] and "server 5.2.1: compatible" in lines[0]
    assert all(re.search(r"\(\d+\.\d s\)", line) for line in lines)
    logged_in = {c["pid"] for c in fake.rest_call_log() if c["path"].endswith("/credentials")}
    assert len(logged_in) == 2  # sml-run and its child, each with its own certificates
    assert sum(fake.jobs_started().values()) == 2  # the child's insert and the parent's, each waited for
    state = fake.state()
    assert (state["feature_groups"], state["feature_views"], state["models"]) == ({}, {}, {})  # all deleted
    assert wire.certificate_folders(tmp_path / "certs") == []


def test_point_6_a_failed_job_in_the_child_gets_the_jobs_hint_and_the_scratch_group_is_deleted(tmp_path, monkeypatch):
    "The hint comes from the error (a failed materialization job), not from the step."
    from serverless_ml.runs.check import run_check

    fake = wire.new_cluster(tmp_path / "cluster")
    for name, value in wire.child_env(fake, tmp_path).items():  # the check's child process inherits them
        monkeypatch.setenv(name, value)
    fake.fail_next_execution("sml_check_failing_1_offline_fg_materialization")
    fake.start()
    try:
        outcomes = run_check("hopsworks", out=lambda line: None, name="sml_check_failing")
    finally:
        logout()
        fake.stop()
        fake.remove_sdk_leftovers()
    assert [o.ok for o in outcomes] == [True, False, True]
    assert "JobExecutionException" in outcomes[1].detail and "open the project's Jobs page" in outcomes[1].detail
    assert outcomes[-1].detail == "deleted: feature group" and fake.state()["feature_groups"] == {}


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
