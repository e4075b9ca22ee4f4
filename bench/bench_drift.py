"""Benchmark: the drift of 1,000,000 new rows against the training reference, vs numpy histograms of the same columns.

Run `python bench/bench_drift.py`; `run()` returns the rows the benchmark runner collects.

- `drift_1m` (goal: ratio at most 2): `drift.measure` of 1,000,000 synthetic Iris rows (per feature the PSI
  over the reference bins, the exact two-sample KS statistic against the reference sample and its p-value)
  against `np.histogram` of the same four columns over the same bin edges, the least a drift check must do.
- `drift_1m_titanic` (reported, no goal): the same for 1,000,000 Titanic rows, 7 number and 4 category
  columns; the floor histograms the numbers with `np.histogram` and counts the categories with `np.unique`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from helpers.timing import best_of

from serverless_ml.features.datasets import load
from serverless_ml.features.spec import spec
from serverless_ml.features.synthetic import generate
from serverless_ml.inference import drift

ROWS = 1_000_000
GOAL = 2.0


def histograms(reference: dict, rows: pd.DataFrame) -> list[np.ndarray]:
    "Per feature, numpy's counts: `np.histogram` over the reference edges (numbers), `np.unique` (categories)."
    counts = []
    for feature, ref in reference["features"].items():
        values = rows[feature].to_numpy()
        if ref["kind"] == "number":
            values = values.astype("float64")
            known = values[~np.isnan(values)]
            edges = np.concatenate([[known.min()], ref["edges"], [known.max()]])
            counts.append(np.histogram(known, bins=np.unique(edges))[0])
        else:
            counts.append(np.unique(values[pd.notna(values)].astype(str), return_counts=True)[1])
    return counts


def row(dataset: str, name: str, goal: float | None, repeats: int) -> dict:
    "One benchmark row for `dataset`: best-of-`repeats` `drift.measure` and numpy times and their ratio."
    spec_ = spec(dataset)
    reference = drift.reference_statistics(dataset, load(dataset)[spec_.features])
    rows = generate(dataset, ROWS, seed=0, drift=0.3)[spec_.features]
    drift.measure(reference, rows.head(10))  # the reference's arrays are built once, as in a pipeline
    value = best_of(lambda: drift.measure(reference, rows), repeats)
    floor = best_of(lambda: histograms(reference, rows), repeats)
    return {"name": name, "value_s": round(value, 3), "floor_s": round(floor, 3), "ratio": round(value / floor, 2),
            "goal": goal, "what": f"drift.measure of {ROWS:,} {dataset} rows (PSI, exact KS / chi-square, p-values) "
                                  f"vs numpy histograms of the same {len(spec_.features)} columns (best of {repeats})"}


def run(repeats: int = 3) -> list[dict]:
    "The benchmark rows: Iris (with a goal) and Titanic (reported)."
    return [row("iris", "drift_1m", GOAL, repeats), row("titanic", "drift_1m_titanic", None, repeats)]

