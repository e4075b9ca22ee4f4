"""Run records: unique run ids, the run manifest, the commands over the records, reproducing a run.

The real stages run here (papermill kernels on a temporary store): one module fixture makes a store
with iris's feature group and first model; each test runs only the stages it checks."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import use_local_store

from serverless_ml import config, runner

PINNED = "2026-11-20T12:00:00Z"  # one clock for runs that must start "in the same second"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store holding iris's feature group and model version 1, made by `sml-run run --days 0`."
    root = tmp_path_factory.mktemp("runs")
    with pytest.MonkeyPatch.context() as env:
        use_local_store(env, root)
        results = runner.run_all("run", ["iris"], days=0, stamp="setup")
        assert all(result.ok for result in results), [result.error for result in results]
        yield root


def sml_run(*argv: str, env: dict | None = None) -> subprocess.CompletedProcess:
    "`sml-run argv` in a subprocess, with the test's environment (plus `env`)."
    return subprocess.run([sys.executable, "-m", "serverless_ml.runner", *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_three_runs_started_in_the_same_second_keep_three_complete_records(store):
    with ThreadPoolExecutor(3) as pool:  # one pinned clock: the three runs share the same stamp
        done = list(pool.map(lambda _: sml_run("daily", "--datasets", "iris", env={"SML_NOW": PINNED}), range(3)))
    assert [d.returncode for d in done] == [0, 0, 0], [d.stderr[-2000:] for d in done]
    folders = sorted(p for p in config.runs_dir().iterdir() if p.name.startswith("20261120T120000Z"))
    assert len(folders) == 3, [p.name for p in config.runs_dir().iterdir()]
    for folder in folders:
        assert sorted(p.name for p in (folder / "iris").iterdir()) == [
            "3_daily_feature_pipeline.html", "3_daily_feature_pipeline.ipynb",
            "4_batch_inference_pipeline.html", "4_batch_inference_pipeline.ipynb"]
    printed = {line for d in done for line in d.stdout.splitlines() if line.startswith("Run records:")}
    assert len(printed) == 3, printed  # each run names its own folder
