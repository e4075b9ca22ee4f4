"""The hopsworks backend in several processes at once, as a run has them, against one wire fake of a Hopsworks 5.2
cluster whose state lives on disk (helpers/hopsworks_wire.py; every child process starts it through
helpers/wire_autostart/sitecustomize.py): the SDK runs unpatched down to the network in each process.

Issue 23: point 1 (each process its own certificates, every process logs out) and point 4 (the jobs each stage starts,
and what waits for them), measured on `sml-run run` with the two datasets' stage kernels in parallel."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from helpers import wire
from helpers.runs import sml_run

from serverless_ml.features.datasets import load
from serverless_ml.features.group import feature_group, upsert
from serverless_ml.store.login import login, logout

# One process of a run, reduced to what matters here: log in, say so, wait; then either exit or read the group
# stage 1 made and insert three rows into it. MODE "ours" logs in as every stage does (store.login); "shared" logs in
# as the SDK does by default, every process of the user writing its certificates to the same folder.
WORKER = """
import json, os, sys
from serverless_ml.features.datasets import load
from serverless_ml.features.group import feature_group, upsert
mode, shared = sys.argv[1], sys.argv[2]
if mode == "ours":
    from serverless_ml.store.login import login
    project = login()
else:
    import hopsworks
    from serverless_ml.store.hopsworks import HopsworksProject
    project = HopsworksProject(hopsworks.login(host=os.environ["HOPSWORKS_HOST"], api_key_value=os.environ[
        "HOPSWORKS_API_KEY"], project=os.environ["HOPSWORKS_PROJECT"], cert_folder=shared))
print("@@logged in", flush=True)  # @@: our lines, among the SDK's
if sys.stdin.readline().strip() == "exit":
    sys.exit(0)
done = {}
group = feature_group(project.get_feature_store(), "iris")
for step, act in (("read", lambda: len(group.read())),
                  ("insert", lambda: upsert(group, load("iris").head(3).assign(flower_id=[901, 902, 903])))):
    try:
        done[step] = act()
    except Exception as error:
        done[step] = f"{type(error).__name__}: {error}"[:300]
print("@@" + json.dumps(done), flush=True)
"""


@pytest.fixture
def seeded(tmp_path):
    "A fake cluster holding stage 1's iris group (written from this process, which then logs out)."
    with wire.running(tmp_path / "cluster", tmp_path / "seed-certs") as fake:
        upsert(feature_group(login().get_feature_store(), "iris"), load("iris"))
        logout()
        yield fake


def ours(lines) -> list[str]:
    "The worker's own lines (`@@...`), up to the first one when `lines` is a stream still running."
    found = []
    for line in lines:
        if line.startswith("@@"):
            found.append(line[2:].strip())
            if not isinstance(lines, list):
                break
    return found


def two_processes_one_exits(fake, root: Path, mode: str) -> dict:
    "Log two processes in; the first exits; the second reads and inserts. What the second did."
    env = wire.child_env(fake, root)
    shared = str(root / "shared-certs")
    first, second = (subprocess.Popen([sys.executable, "-c", WORKER, mode, shared], env=env, text=True,
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                     for _ in range(2))
    try:
        for process in (first, second):
            assert ours(iter(process.stdout.readline, "")) == ["logged in"]
        first.communicate("exit\n", timeout=120)  # a normal exit: the SDK's finalizer closes its connection
        assert first.returncode == 0
        out, _ = second.communicate("work\n", timeout=300)
        return json.loads(ours(out.splitlines())[-1])
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()


def test_point_1_two_processes_log_in_one_exits_and_the_other_still_reads_and_inserts(seeded, tmp_path):
    done = two_processes_one_exits(seeded, tmp_path, "ours")
    assert done == {"read": 150, "insert": 3}
    assert len(seeded.offline_table("iris", 1)) == 153
    assert wire.certificate_folders(tmp_path / "certs") == []  # both logged out, each removing its own folder


def test_point_1_with_one_certificate_folder_for_both_the_second_can_neither_read_nor_insert(seeded, tmp_path):
    "The fault itself, at the wire: the SDK's default, one folder per user, host and project for every process."
    done = two_processes_one_exits(seeded, tmp_path, "shared")
    assert "Reading data with Hive is not supported" in done["read"], done  # the query service was switched off
    assert "keyStore.jks" in done["insert"] and "No such file" in done["insert"], done
    assert len(seeded.offline_table("iris", 1)) == 150


def _time(text: str) -> datetime:
    "An ISO time of the manifest (+00:00) or of the fake cluster (Z), as an aware datetime."
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def jobs_per_stage(fake, manifest: dict) -> dict:
    "`{(dataset, stage): {group: jobs}}`: each job run the cluster started, put in the stage of its dataset running then."
    state = fake.state()
    found = {(stage["dataset"], stage["stage"]): {} for stage in manifest["stages"]}
    for execution in state["executions"].values():
        job = state["jobs"][execution["jobName"]]
        group = state["feature_groups"][str(job["_fake_fg_id"])]["name"]
        dataset = group.split("_")[0]
        at = _time(execution["submissionTime"])
        (stage,) = [s["stage"] for s in manifest["stages"]
                    if s["dataset"] == dataset and _time(s["started"]) <= at <= _time(s["ended"])]
        found[dataset, stage][group] = found[dataset, stage].get(group, 0) + 1
    return found


@pytest.fixture(scope="module")
def run_on_hopsworks(tmp_path_factory):
    "`sml-run run --days 1` for both datasets on the hopsworks backend against one fake cluster: its record."
    root = tmp_path_factory.mktemp("run")
    with wire.leaving_nothing(wire.new_cluster(root / "cluster")) as fake:
        done = sml_run("run", "--days", "1", "--no-fail-on-alert", env=wire.child_env(fake, root), timeout=900)
        (manifest,) = [json.loads(p.read_text()) for p in (root / "outputs" / "runs").glob("*/run.json")]
        yield {"done": done, "fake": fake, "manifest": manifest, "root": root}


def test_point_1_sml_run_runs_both_datasets_stage_kernels_in_parallel_on_hopsworks_and_every_process_logs_out(
        run_on_hopsworks):
    done, manifest, fake = run_on_hopsworks["done"], run_on_hopsworks["manifest"], run_on_hopsworks["fake"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert sorted((s["dataset"], s["stage"], s["status"]) for s in manifest["stages"]) == sorted(
        (dataset, stage, "ok") for dataset in ("iris", "titanic") for stage in ("feature", "training", "daily", "inference"))
    windows = {(s["dataset"], s["stage"]): (_time(s["started"]), _time(s["ended"])) for s in manifest["stages"]}
    (iris_start, iris_end), (titanic_start, titanic_end) = windows["iris", "feature"], windows["titanic", "feature"]
    assert iris_start < titanic_end and titanic_start < iris_end, windows  # the two datasets' kernels at once
    logins = [c["pid"] for c in fake.rest_call_log() if c["path"].endswith("/credentials")]
    assert len(set(logins)) == len(logins) == 9, logins  # the runner and 8 stage kernels: one login each
    assert wire.certificate_folders(run_on_hopsworks["root"] / "certs") == []  # and each removed its folder
    unknown = [(c["method"], c["path"]) for c in fake.rest_call_log() if (c.get("error") or {}).get("errorCode") == 999999]
    assert unknown == []


def test_point_4_each_stage_starts_one_job_per_group_it_writes_and_waits_for_it(run_on_hopsworks):
    found = jobs_per_stage(run_on_hopsworks["fake"], run_on_hopsworks["manifest"])
    for dataset in ("iris", "titanic"):
        assert found[dataset, "feature"] == {dataset: 1}
        assert found[dataset, "training"] == {}  # the training data is an in-memory training dataset: no job
        assert found[dataset, "daily"] == {dataset: 1}
        assert found[dataset, "inference"] == {f"{dataset}_predictions": 1}  # monitoring's records are files
    executions = run_on_hopsworks["fake"].state()["executions"].values()
    assert {e["state"] for e in executions} == {"FINISHED"}  # every job was polled to its end: each insert waited


def test_point_4_a_daily_round_starts_two_jobs_per_dataset(run_on_hopsworks):
    found = jobs_per_stage(run_on_hopsworks["fake"], run_on_hopsworks["manifest"])
    for dataset in ("iris", "titanic"):
        round_jobs = {**found[dataset, "daily"], **found[dataset, "inference"]}
        assert round_jobs == {dataset: 1, f"{dataset}_predictions": 1}, round_jobs
