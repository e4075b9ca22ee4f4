"""Running `sml-run` from the tests and the benchmarks: in a child process, as a user or cron runs it."""

from __future__ import annotations

import subprocess
import sys
import time

SML_RUN = [sys.executable, "-m", "serverless_ml.runs.cli"]  # what the `sml-run` entry point runs


def sml_run(*args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    "`sml-run args` in a child process with `env` (this process's environment when None), never waiting on a prompt."
    return subprocess.run([*SML_RUN, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout)


def timed_sml_run(*args: str, env: dict | None = None) -> float:
    "Seconds `sml-run args` takes in a child process; raises, with its output, when it fails."
    started = time.perf_counter()
    done = sml_run(*args, env=env, timeout=3600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"sml-run {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return elapsed
