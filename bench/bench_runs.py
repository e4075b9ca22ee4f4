"""Benchmark of run records: `reproduce`, timing `sml-run reproduce` of a `sml-run run` (both datasets,
30 days, the default `make run`) against that original run, measured side by side in this session.

Reproduce re-executes the same stages on a scratch store and then compares the two manifests and the
predictions row by row; the ratio is what the comparison and the scratch store add. Every store lives in a
temporary SML_HOME (and SML_OUTPUTS), removed afterwards.

    python bench/run.py runs
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from helpers.runs import timed_sml_run
from helpers.stores import store_env

GOAL = 1.2
NOW = "2026-11-25T06:30:00Z"  # a pinned clock: the run is reproducible whatever day the bench runs


def run() -> list[dict]:
    "The `reproduce` row."
    home = Path(tempfile.mkdtemp(prefix="sml-bench-runs-"))
    try:
        original = timed_sml_run("run", "--now", NOW, env=store_env(home))
        [folder] = (home / "outputs" / "runs").glob("2*")
        reproduce = timed_sml_run("reproduce", folder.name, env=store_env(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return [{"name": "reproduce", "value_s": round(reproduce, 3), "floor_s": round(original, 3),
             "ratio": round(reproduce / original, 2), "goal": GOAL,
             "what": "sml-run reproduce of a `sml-run run` (both datasets, 30 days) against the run itself"}]
