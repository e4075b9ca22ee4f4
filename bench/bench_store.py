"""Benchmark: 1,000,000 rows inserted into a feature group and read back, against bare DuckDB in the same run.

Run `python bench/bench_store.py`; `run()` returns the rows the benchmark runner collects.
The goal is a ratio of at most 2 (store time / bare DuckDB time).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from helpers.stores import using_store

from serverless_ml.store.login import login

ROWS = 1_000_000
GOAL = 2.0


def make_rows(n: int = ROWS, seed: int = 0) -> pd.DataFrame:
    "n Iris-like rows: an id, four measurements, a class name and an event time."
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "flower_id": np.arange(n, dtype="int64"),
        "sepal_length": rng.uniform(4, 8, n), "sepal_width": rng.uniform(2, 4.5, n),
        "petal_length": rng.uniform(1, 7, n), "petal_width": rng.uniform(0.1, 2.5, n),
        "variety": rng.choice(["Setosa", "Versicolor", "Virginica"], n),
        "event_time": pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.arange(n), unit="s"),
    })


def bare_duckdb(df: pd.DataFrame, folder: Path) -> float:
    "Seconds for bare DuckDB to write `df` into a new file's table and read it all back."
    start = time.perf_counter()
    con = duckdb.connect(str(folder / "bare.duckdb"))
    con.execute("CREATE TABLE flowers AS SELECT * FROM df")
    con.close()
    con = duckdb.connect(str(folder / "bare.duckdb"), read_only=True)
    back = con.execute("SELECT * FROM flowers").df()
    con.close()
    assert len(back) == len(df)
    return time.perf_counter() - start


def through_store(df: pd.DataFrame) -> float:
    "Seconds for the store API to insert `df` into a new feature group and read it all back."
    start = time.perf_counter()
    fs = login("local").get_feature_store()
    fg = fs.get_or_create_feature_group("flowers", 1, primary_key=["flower_id"], event_time="event_time")
    fg.insert(df)
    back = fs.get_feature_group("flowers", 1).read()
    assert len(back) == len(df)
    return time.perf_counter() - start


def run(repeats: int = 3) -> list[dict]:
    "The benchmark row: best-of-`repeats` store time, bare DuckDB time and their ratio."
    df = make_rows()
    store_times, bare_times = [], []
    for _ in range(repeats):
        folder = Path(tempfile.mkdtemp(prefix="sml-bench-"))
        try:
            with using_store(folder):
                bare_times.append(bare_duckdb(df, folder))
                store_times.append(through_store(df))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    value, floor = min(store_times), min(bare_times)
    return [{"name": "store_insert_read_1m", "value_s": round(value, 3), "floor_s": round(floor, 3),
             "ratio": round(value / floor, 2), "goal": GOAL,
             "what": f"insert {ROWS:,} rows into a new feature group and read them back, vs bare DuckDB "
                     "CREATE TABLE AS + SELECT * on a file (best of 3)"}]

