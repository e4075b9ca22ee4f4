"""Benchmark of run records: `reproduce`, timing `sml-run reproduce` of a `sml-run run` (both datasets,
30 days, the default `make run`) against that original run, measured side by side in this session.

Reproduce re-executes the same stages on a scratch store and then compares the two manifests and the
predictions row by row; the ratio is what the comparison and the scratch store add. Every store lives in a
temporary SML_HOME (and SML_OUTPUTS), removed afterwards.

    python bench/run.py runs
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL = 1.2
NOW = "2026-11-25T06:30:00Z"  # a pinned clock: the run is reproducible whatever day the bench runs


def sml_run(home: Path, *argv: str) -> float:
    "Seconds `sml-run argv` takes with its store and outputs under `home`; raises when it fails."
    env = {**os.environ, "SML_HOME": str(home / "store"), "SML_OUTPUTS": str(home / "outputs"),
           "SML_BACKEND": "local", "JUPYTER_PREFER_ENV_PATH": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "serverless_ml.runner", *argv], env=env, capture_output=True,
                          text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"sml-run {' '.join(argv)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed


def run() -> list[dict]:
    "The `reproduce` row."
    home = Path(tempfile.mkdtemp(prefix="sml-bench-runs-"))
    try:
        original = sml_run(home, "run", "--now", NOW)
        [folder] = (home / "outputs" / "runs").glob("2*")
        reproduce = sml_run(home, "reproduce", folder.name)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return [{"name": "reproduce", "value_s": round(reproduce, 3), "floor_s": round(original, 3),
             "ratio": round(reproduce / original, 2), "goal": GOAL,
             "what": "sml-run reproduce of a `sml-run run` (both datasets, 30 days) against the run itself"}]
