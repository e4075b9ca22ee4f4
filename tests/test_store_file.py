"""The store file holds its data: after the stages the `.duckdb` file alone is the whole store, and a damaged
file or log stops the next operation with a message naming the file, before anything is written."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from serverless_ml.store.local.file import STORE_FILE, WRITES_FILE, StoreDamagedError, store_file, wal_file
from serverless_ml.store.login import login

GROUPS = ("iris_1", "iris_predictions_1", "titanic_1", "titanic_predictions_1")
DAY = pd.Timestamp("2020-01-01", tz="UTC")


def table_counts(path: Path) -> dict[str, int]:
    "Every table of the DuckDB file at `path` (with its log, if it has one) and its row count."
    with duckdb.connect(str(path), read_only=True) as con:
        tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables()").fetchall()
        return {f"{schema}.{table}": con.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0]
                for schema, table in tables}


@pytest.fixture(scope="module")
def ran(filled_store_env):
    "The store folder after the four stages of both datasets (the session's filled store: the stage notebooks' calls)."
    return Path(filled_store_env["SML_HOME"])  # only read here


def test_the_duckdb_file_alone_holds_every_table_and_row_after_the_stages(ran, tmp_path):
    live = table_counts(ran / STORE_FILE)
    assert all(live[f"main.{group}"] > 0 for group in GROUPS), live
    alone = tmp_path / STORE_FILE
    shutil.copy(ran / STORE_FILE, alone)  # the file only: no .wal beside it
    assert table_counts(alone) == live


def rows(ids, day=DAY) -> pd.DataFrame:
    "Rows of the test group."
    return pd.DataFrame({"id": list(ids), "value": 1.0, "event_time": day})


def group():
    "The test feature group, through the public API."
    fs = login("local").get_feature_store()
    return fs.get_or_create_feature_group("kept", 1, primary_key=["id"], event_time="event_time")


UNFOLDED_WRITES = textwrap.dedent("""
    import os, signal
    from serverless_ml.store.local import file as local_store
    def record_then_die(con, path, opened):
        local_store._record_writes(path, local_store._store_state(con))
        os.kill(os.getpid(), signal.SIGKILL)  # killed after recording its writes, before folding them
    local_store._fold = record_then_die
    with local_store.connect() as con:
        for day in (2, 3, 4):
            with local_store.transaction(con):
                con.execute("INSERT INTO kept_1 SELECT range, 2.0, make_timestamptz(2020, 1, ?, 0, 0, 0) "
                            "FROM range(?, ?)", [day, day * 100, day * 100 + 50])
""")


def writes_left_in_the_log() -> None:
    "100 rows folded into the file, then three writes of 50 rows that a killed process left in the log alone."
    group().insert(rows(range(100)))
    killed = subprocess.run([sys.executable, "-c", UNFOLDED_WRITES], capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr
    assert wal_file(store_file()).stat().st_size > 0


def store_bytes() -> list[bytes]:
    "The bytes of the store file, its log (if any) and its record of writes."
    paths = [store_file(), wal_file(store_file()), store_file().with_name(WRITES_FILE)]
    return [path.read_bytes() if path.exists() else b"" for path in paths]


def test_writes_left_in_the_log_are_kept_and_folded_at_the_next_write(sml_home):
    writes_left_in_the_log()
    assert len(group().read()) == 250
    group().insert(rows([999]))  # the next write folds the log into the file
    assert not wal_file(store_file()).exists()
    assert table_counts(store_file())["main.kept_1"] == 251


OPERATIONS = {  # each on a group object taken before the damage, as a notebook session holds one
    "read": lambda fg: fg.read(),
    "insert": lambda fg: fg.insert(rows(range(1000, 1010))),  # opens the file for writing at once
    "get_feature_group": lambda fg: login("local").get_feature_store().get_feature_group("kept", 1),
}


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_log_cut_to_half_stops_the_next_operation_and_writes_nothing(sml_home, operation):
    writes_left_in_the_log()
    held = group()
    log = wal_file(store_file())
    with open(log, "r+b") as cut:
        cut.truncate(log.stat().st_size // 2)
    before = store_bytes()
    with pytest.raises(StoreDamagedError) as raised:
        OPERATIONS[operation](held)
    message = str(raised.value)
    assert f"The store file {store_file()} is damaged" in message and "write-ahead log" in message
    assert "Restore it from a backup copy" in message and WRITES_FILE in message
    assert store_bytes() == before


def corrupt_header(path: Path) -> None:
    "Overwrite the start of the file, where DuckDB's header is."
    with open(path, "r+b") as damage:
        damage.write(b"\xde\xad\xbe\xef" * 16)


def corrupt_every_block(path: Path) -> None:
    "Overwrite a few bytes in every 256 KiB block after the headers: catalog, metadata and rows."
    with open(path, "r+b") as damage:
        for offset in range(12288 + 1000, path.stat().st_size, 262144):
            damage.seek(offset)
            damage.write(b"\xde\xad\xbe\xef" * 16)


@pytest.mark.parametrize("corrupt", [corrupt_header, corrupt_every_block])
@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_corrupt_store_file_stops_the_next_operation_and_writes_nothing(sml_home, corrupt, operation):
    held = group()
    held.insert(rows(range(20_000)))
    corrupt(store_file())
    before = store_bytes()
    with pytest.raises(StoreDamagedError, match=f"The store file {store_file()} is damaged.*Restore it from a backup"):
        OPERATIONS[operation](held)
    assert store_bytes() == before


def test_the_backup_the_readme_describes_restores_a_damaged_store(sml_home, tmp_path):
    group().insert(rows(range(100)))
    backup = tmp_path / "backup"
    shutil.copytree(sml_home, backup)  # no run in progress: the folder is complete
    group().insert(rows(range(100, 200)))
    corrupt_header(store_file())
    with pytest.raises(StoreDamagedError):
        group().read()
    shutil.rmtree(sml_home)
    shutil.copytree(backup, sml_home)
    assert sorted(group().read().id) == list(range(100))
    group().insert(rows([100]))  # and it takes writes again
    assert len(group().read()) == 101


ON_A_FULL_DISK = textwrap.dedent("""
    import os, sys, warnings
    import pandas as pd
    from serverless_ml.store.login import login
    fs = login("local").get_feature_store()
    group = fs.get_or_create_feature_group("rows", 1, primary_key=["id"], event_time="event_time")
    group.insert(pd.DataFrame({"id": range(10), "x": 1.0, "event_time": pd.Timestamp("2020-01-01", tz="UTC")}))
    disk = os.path.dirname(os.environ["SML_HOME"])
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(os.path.join(disk, "filler"), "wb") as filler:  # the disk full but for sys.argv[1] KB
        filler.write(bytes(free - int(sys.argv[1]) * 1024))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            group.insert(pd.DataFrame({"id": range(int(sys.argv[2])), "x": 2.0,
                                       "event_time": pd.Timestamp("2020-01-02", tz="UTC")}))
            print("SAID", " | ".join(str(w.message) for w in caught))
        except Exception as error:
            print("SAID", type(error).__name__, error)
    os.remove(os.path.join(disk, "filler"))
    print("ROWS", len(fs.get_feature_group("rows", 1).read()))
""")


@pytest.mark.parametrize("free_kb, rows, said, kept", [
    (300, 100_000, "StoreFullError The store could not write {file}: the disk is full (300 KB free). Nothing was "
                   "written. Free some disk space, then run again.", 10),  # the commit fails: nothing written
    (100, 2_000, "The write to {file} is committed, but folding it into the file failed", 2_010),  # the fold fails
])
def test_a_full_disk_is_said_in_the_projects_words_and_loses_nothing(tmp_path, free_kb, rows, said, kept):
    # DuckDB's own "FatalException ... No space left on device" reached the user; the write had in fact landed
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "full.py"
    script.write_text(ON_A_FULL_DISK)
    command = (f"mount -t tmpfs -o size=4m tmpfs {disk} && SML_HOME={disk}/store "
               f"{sys.executable} {script} {free_kb} {rows}")
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", command],
                          capture_output=True, text=True, timeout=300)
    if "Operation not permitted" in done.stderr and "mount" in done.stderr:
        pytest.skip(f"this machine lets no process mount a small disk: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if line.startswith(("SAID", "ROWS")))
    assert said.format(file=disk / "store" / STORE_FILE) in lines["SAID"], lines["SAID"]
    assert "FatalException" not in lines["SAID"] and int(lines["ROWS"]) == kept


def test_the_dashboard_of_a_damaged_store_says_so_and_not_to_press_refresh(sml_home, filled_store_env):
    from serverless_ml.apps.dashboard import DashboardTab
    from serverless_ml.apps.voila import kept_log_records

    shutil.copytree(filled_store_env["SML_HOME"], sml_home)  # a model and predictions: the dashboard reads the file
    corrupt_header(store_file())
    tab = DashboardTab("iris")
    with kept_log_records() as records:
        tab.refresh()
    shown = tab.notice.value
    assert "the store is damaged" in shown and "refreshing will not help" in shown, shown
    assert str(store_file()) not in shown  # the file's path is for the operator's log, not a visitor's page
    assert f"The store file {store_file()} is damaged" in str(records[0].exc_info[1])
