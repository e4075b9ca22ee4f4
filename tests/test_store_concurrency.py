"""Processes share the local store: two writers and a reader at once lose no row and see no error."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from serverless_ml.store.local.file import StoreBusyError, connect, store_file
from serverless_ml.store.login import login

WRITER = textwrap.dedent("""
    import sys, pandas as pd
    from serverless_ml.store.login import login
    start = int(sys.argv[1])
    fg = login("local").get_feature_store().get_or_create_feature_group(
        "shared", 1, primary_key=["id"], event_time="event_time")
    for i in range(start, start + 200):
        fg.insert(pd.DataFrame({"id": [i], "value": [i * 0.5], "event_time": [pd.Timestamp.now(tz="UTC")]}))
    print("done")
""")

READER = textwrap.dedent("""
    import os, sys, time
    from serverless_ml.store.login import login
    fs = login("local").get_feature_store()
    reads = 0
    while not os.path.exists(sys.argv[1]):
        fg = fs.get_feature_group("shared", 1)
        if fg is not None:
            fg.read()
            reads += 1
        time.sleep(0.02)  # a dashboard refreshing as fast as it can
    print(reads)
""")


def spawn(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "SML_LOCK_TIMEOUT": "60"})


def test_two_writers_and_a_reader_lose_nothing(sml_home, tmp_path):
    stop = tmp_path / "stop"
    reader = spawn(READER, str(stop))
    writers = [spawn(WRITER, "0"), spawn(WRITER, "1000")]
    outcomes = [w.communicate(timeout=240) for w in writers]
    stop.touch()
    reads, reader_errors = reader.communicate(timeout=60)
    for (out, err), writer in zip(outcomes, writers, strict=True):
        assert writer.returncode == 0 and out.strip() == "done", err
    assert reader.returncode == 0, reader_errors
    assert int(reads) > 0
    ids = login("local").get_feature_store().get_feature_group("shared", 1).read().id
    assert sorted(ids) == list(range(200)) + list(range(1000, 1200))


def test_a_file_held_too_long_gives_a_clear_error_naming_it(sml_home, monkeypatch):
    with connect():
        pass  # creates the store file
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(store_file())!r})
        print("holding", flush=True)
        time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        monkeypatch.setenv("SML_LOCK_TIMEOUT", "0.5")  # the holder keeps the file 30 s: only giving up raises
        with pytest.raises(StoreBusyError, match=str(store_file())):
            login("local").get_feature_store().get_feature_group("shared", 1)
    finally:
        holder.kill()
        holder.wait()
