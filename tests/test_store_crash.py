"""A process killed with SIGKILL mid-insert or mid-registration leaves the store readable and consistent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pandas as pd

from serverless_ml.store.login import login

BATCH = 50

INSERT_LOOP = textwrap.dedent(f"""
    import pandas as pd
    from serverless_ml.store.login import login
    fg = login("local").get_feature_store().get_or_create_feature_group(
        "crash", 1, primary_key=["id"], event_time="event_time")
    for batch in range(10_000):
        ids = range(batch * {BATCH}, (batch + 1) * {BATCH})
        fg.insert(pd.DataFrame({{"id": ids, "value": 1.0, "event_time": pd.Timestamp("2020-01-01", tz="UTC")}}))
        print(batch, flush=True)
""")

REGISTER_LOOP = textwrap.dedent("""
    import os, sys
    from serverless_ml.store.login import login
    from pathlib import Path
    folder = Path(sys.argv[1])
    folder.mkdir()
    for i in range(20):
        (folder / f"part{i}.json").write_text("x" * 200_000)
    mr = login("local").get_model_registry()
    for n in range(10_000):
        mr.python.create_model("crash_model", metrics={"accuracy": 0.5}).save(str(folder))
        print(n, flush=True)
""")


def run_until(code: str, lines: int, *args: str) -> None:
    "Start `code`, wait for it to print `lines` lines, then kill it with SIGKILL."
    process = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(lines):
            assert process.stdout.readline(), "the child stopped before it was killed"
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL


def test_kill_during_insert_loop_leaves_whole_batches(sml_home):
    run_until(INSERT_LOOP, 5)
    fg = login("local").get_feature_store().get_feature_group("crash", 1)
    ids = fg.read().id
    assert len(ids) >= 5 * BATCH and len(ids) % BATCH == 0
    assert sorted(ids) == list(range(len(ids)))  # whole batches, in order, none half-written
    fg.insert(pd.DataFrame({"id": [-1], "value": [2.0], "event_time": [pd.Timestamp("2020-01-01", tz="UTC")]}))
    assert len(fg.read()) == len(ids) + 1


def test_kill_during_registration_leaves_no_half_version(sml_home, tmp_path):
    run_until(REGISTER_LOOP, 3, str(tmp_path / "model"))
    mr = login("local").get_model_registry()
    models = mr.get_models("crash_model")
    assert [m.version for m in models] == list(range(1, len(models) + 1)) and len(models) >= 3
    for model in models:
        files = sorted(os.listdir(model.download()))
        assert files == sorted(f"part{i}.json" for i in range(20))
        assert all(os.path.getsize(os.path.join(model.download(), f)) == 200_000 for f in files)
    follow_up = mr.python.create_model("crash_model", metrics={"accuracy": 0.9})
    follow_up.save(str(tmp_path / "model"))
    assert follow_up.version == len(models) + 1
