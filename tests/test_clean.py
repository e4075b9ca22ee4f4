"""`sml-run clean --yes` deletes every object the project makes, listed from one registry of names
(`serverless_ml.names.project_objects`): after it, the local store's own files hold no group, view, model or
Resources file of ours, and a new run starts from nothing.

What the store holds is read here from its files (the DuckDB catalog, the registry and Resources folders),
not through the project's names, so a name missing from the registry shows as something left behind."""

from __future__ import annotations

import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from helpers import stores
from helpers.runs import SML_RUN, sml_run

from serverless_ml.names import LEGACY_GROUPS
from serverless_ml.runs.clean import clean
from serverless_ml.store.login import login

NOW = "2026-11-20T12:00:00Z"


def inventory(env: dict) -> dict:
    "What the local store of `env` holds, from its own files: catalog entries, tables and their rows, models, files."
    home = Path(env["SML_HOME"])
    with duckdb.connect(str(home / "feature_store.duckdb"), read_only=True) as con:
        tables = [name for (name,) in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        found = {"groups": con.execute("SELECT name, version FROM sml.feature_groups ORDER BY 1, 2").fetchall(),
                 "views": con.execute("SELECT name, version FROM sml.feature_views ORDER BY 1, 2").fetchall(),
                 "rows": {table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}}
    found["models"] = sorted(str(p.relative_to(home / "registry")) for p in (home / "registry").glob("[!.]*/*"))
    found["files"] = sorted(str(p.relative_to(home / "resources")) for p in (home / "resources").rglob("*")
                            if p.is_file())
    return found


def add_legacy_groups(env: dict, dataset: str = "iris") -> None:
    "The monitoring groups an earlier version of the project made (`<dataset>_drift` ...), where absent: one row each."
    with stores.using_store(env):
        fs = login("local").get_feature_store()
        for kind in LEGACY_GROUPS:
            if fs.get_feature_group(f"{dataset}_{kind}", version=1) is not None:
                continue
            group = fs.get_or_create_feature_group(f"{dataset}_{kind}", version=1, primary_key=["feature"])
            group.insert(pd.DataFrame({"feature": ["petal_length"], "value": [0.25]}))


def test_clean_yes_leaves_nothing_of_ours_and_a_new_run_starts_from_nothing(filled_store_env, tmp_path):
    used = stores.copy_store(filled_store_env, tmp_path / "used")
    add_legacy_groups(used)
    before = inventory(used)
    assert before["groups"] and before["views"] and before["models"] and before["files"]
    listed = sml_run("clean", env=used)
    assert listed.returncode == 0 and inventory(used) == before, listed.stdout  # without --yes nothing goes
    assert "would delete feature group iris_drift v1" in listed.stdout
    done = sml_run("clean", "--yes", env=used)
    assert done.returncode == 0, done.stdout + done.stderr
    assert inventory(used) == {"groups": [], "views": [], "rows": {}, "models": [], "files": []}
    assert sml_run("clean", env=used).stdout.startswith("0 object(s)")
    # the same run on the cleaned store and on a store that never held anything leave the same store
    fresh = stores.store_env(tmp_path / "fresh")
    with ThreadPoolExecutor(2) as pool:
        runs = list(pool.map(lambda env: sml_run("run", "--days", "1", "--datasets", "iris", "--now", NOW, env=env),
                             [used, fresh]))
    assert [run.returncode for run in runs] == [0, 0], [run.stdout[-2000:] + run.stderr[-2000:] for run in runs]
    again, new = inventory(used), inventory(fresh)
    assert again == new, (again, new)
    assert again["models"] == ["iris_model/1"] and again["rows"]["iris_predictions_1"] == 1


@pytest.mark.parametrize("kind", LEGACY_GROUPS)
def test_clean_deletes_the_monitoring_group_an_earlier_version_made(kind, sml_home):
    fs = login("local").get_feature_store()
    fs.get_or_create_feature_group(f"iris_{kind}", version=1, primary_key=["feature"]).insert(
        pd.DataFrame({"feature": ["petal_length"], "value": [0.25]}))
    said = []
    assert clean("local", yes=True, out=said.append) == 1
    assert said[1:] == [f"  deleted feature group iris_{kind} v1"]
    assert fs.get_feature_group(f"iris_{kind}", version=1) is None


def test_clean_finds_what_a_killed_check_leaves(tmp_path):
    env = stores.store_env(tmp_path)
    check = subprocess.Popen([*SML_RUN, "check"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        for line in check.stdout:  # killed once its scratch group holds rows, before it can delete anything
            if line.startswith("ok") and "insert 3 rows" in line:
                check.send_signal(signal.SIGKILL)
                break
    finally:
        check.kill()
        check.wait()
    assert check.returncode == -signal.SIGKILL
    left = inventory(env)
    assert left["groups"], left  # the check's scratch group survived its kill
    listed = sml_run("clean", env=env).stdout
    assert all(f"feature group {name} v{version}" in listed for name, version in left["groups"]), listed
    assert sml_run("clean", "--yes", env=env).returncode == 0
    assert inventory(env) == {"groups": [], "views": [], "rows": {}, "models": [], "files": []}
