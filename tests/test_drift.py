"""Honest statistics: do the default thresholds stay quiet on undrifted daily rounds and ring on drifted ones?

A simulation of the monitoring rounds, with the library functions the inference stage calls
(`drift.day_counts`, `drift.add_days`, `drift.measure_windows`, `alerts.evaluate`, `validation.expectation_results`) and no notebook:
the model and the reference statistics come from the historical training split, as stage 2 makes
them; each simulated day adds `rows` undrifted (or drifted) synthetic rows, predicts them and
evaluates the round like stage 4."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from serverless_ml.features import synthetic, validation
from serverless_ml.features.datasets import load
from serverless_ml.features.spec import spec
from serverless_ml.inference import alerts, drift
from serverless_ml.training import models
from serverless_ml.training.split import keyed_test_mask

SEEDS = range(20)
DAYS = 30  # undrifted days: the backfill of `make run`
DRIFT_DAYS = 7  # the drift must be caught within these
START = pd.Timestamp("2026-10-01T06:00", tz="UTC")


@pytest.fixture(scope="module", params=["iris", "titanic"])
def trained(request):
    "`(dataset, model, reference)` from the historical training split, as the training stage makes them."
    dataset, spec_ = request.param, spec(request.param)
    history = load(dataset)
    test = keyed_test_mask(history, spec_.primary_key, [spec_.label], 0.2, 42)
    X, y = history.loc[~test, spec_.features], history.loc[~test, spec_.label]
    return dataset, models.train(dataset, X, y, seed=42), drift.reference_statistics(dataset, X)


def days_of_rows(dataset: str, rows: int, days: int, seed: int, first: int = 0, shift: float = 0.0):
    "`rows` synthetic rows for each of `days` days from day `first`, with their event times."
    frame = synthetic.generate(dataset, rows * days, seed=seed, drift=shift)
    day = np.repeat(np.arange(first, first + days), rows)
    return frame.assign(event_time=START + pd.to_timedelta(day, unit="D"), day=day)


def alert_days(trained, rows: int, frames: list[pd.DataFrame], from_day: int = 0) -> dict[int, pd.DataFrame]:
    "The alerts of each simulated day's round from day `from_day` on (days without alerts left out)."
    dataset, model, reference = trained
    everything = pd.concat(frames, ignore_index=True)
    everything["prediction"] = models.predict(dataset, model, everything)
    predictions = everything.rename(columns={spec(dataset).label: "outcome"})
    raised, kept = {}, None
    for day in range(int(everything.day.max()) + 1):  # every round keeps its counts, as stage 4 does
        now = START + pd.Timedelta(days=day)
        counts = drift.day_counts(dataset, reference, everything[everything.day == day])
        kept = drift.add_days(kept, counts, now)
        if day < from_day:
            continue
        windows = drift.measure_windows(reference, counts, kept, now)
        found = alerts.evaluate(dataset, windows, predictions[predictions.day <= day], limits=alerts.Thresholds())
        if len(found):
            raised[day] = found
    return raised


def quality_failures(dataset: str, frames: list[pd.DataFrame]) -> int:
    "Failed expectation checks over all the rows (a round's failure is one of these)."
    rows = pd.concat(frames, ignore_index=True).drop(columns="day")
    return int(validation.expectation_results(dataset, rows).failed.sum())


def test_single_row_rounds_raise_no_false_alarm_and_30_day_windows_are_reported(trained):
    dataset = trained[0]
    false_alarms, window_psi_over = [], []
    for seed in SEEDS:
        frames = [days_of_rows(dataset, 1, DAYS, seed)]
        raised = alert_days(trained, 1, frames)
        false_alarms.append(len(raised))
        assert quality_failures(dataset, frames) == 0
        last_window = frames[0]  # what the 30-day window holds on the last day: 30 rows
        psi = drift.measure(trained[2], last_window, min_rows=1).psi
        window_psi_over.append(bool((psi > alerts.Thresholds().psi).any()))
    print(f"\n{dataset}, 1 row a day, {len(SEEDS)} seeds x {DAYS} days: rounds with an alert "
          f"{sum(false_alarms)} of {len(SEEDS) * DAYS}; 30-day windows alarmed 0 of {len(SEEDS)} "
          f"(PSI needs {drift.PSI_MIN_ROWS} rows); had PSI been computed on the 30 rows, "
          f"{sum(window_psi_over)} of {len(SEEDS)} windows would have passed 0.2")
    assert sum(false_alarms) == 0


@pytest.mark.parametrize("rows", [100])
def test_daily_rounds_stay_quiet_without_drift_and_alert_within_a_week_at_drift_0_6(trained, rows):
    dataset = trained[0]
    quiet, caught_on = [], []
    for seed in SEEDS:
        history = days_of_rows(dataset, rows, DAYS, seed)
        quiet.append(len(alert_days(trained, rows, [history])))
        drifted = days_of_rows(dataset, rows, DRIFT_DAYS, 10_000 + seed, first=DAYS, shift=0.6)
        raised = alert_days(trained, rows, [history, drifted], from_day=DAYS)
        caught_on.append(min(raised) - DAYS + 1 if raised else None)
    print(f"\n{dataset}, {rows} rows a day, {len(SEEDS)} seeds: undrifted rounds with an alert "
          f"{sum(quiet)} of {len(SEEDS) * DAYS}; at drift 0.6 the first alert came on day {caught_on}")
    assert sum(quiet) == 0
    assert all(day is not None for day in caught_on), caught_on
