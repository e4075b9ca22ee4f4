"""Every logged round gets its monitoring record (drift, quality, alerts), whatever stops stage 4 part-way, and a
daily round starts two materialization jobs at most: the records are files beside the state, not feature groups."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal

import pandas as pd
import pytest
from helpers.stores import using_store

from serverless_ml import params
from serverless_ml.config import utc_column
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.inference import alerts
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.inference.drift import DRIFT_RECORD
from serverless_ml.inference.quality import QUALITY_RECORD
from serverless_ml.inference.state import logged_tally
from serverless_ml.store import resources
from serverless_ml.store.local.feature_group import LocalFeatureGroup
from serverless_ml.store.login import login

WRITES_OF_A_ROUND = 11  # predictions, state, 4 pictures, their manifest, window counts, alerts, quality, drift


@pytest.fixture
def store(tmp_path, trained_store_env, monkeypatch):
    "A copy of the session's trained store (both models, no predictions yet), this test's store; alerts on 20 rows."
    shutil.copytree(trained_store_env["SML_HOME"], tmp_path / "store")
    monkeypatch.setenv("SML_ALERT_ACCURACY_WINDOW", "20")  # every drifted round can raise its accuracy alert
    with using_store(tmp_path):
        yield login("local")


def killed_at_write(k: int) -> None:
    "Run one iris round in this (forked) process, killing it with SIGKILL right after its `k`-th store write."
    done = {"writes": 0}

    def counted(write):
        def wrapper(*args, **kwargs):
            result = write(*args, **kwargs)
            done["writes"] += 1
            if done["writes"] == k:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        return wrapper

    LocalFeatureGroup.insert = counted(LocalFeatureGroup.insert)
    resources.put_file = counted(resources.put_file)
    for module in ("inference.state", "inference.records", "inference.images", "inference.watch"):
        imported = __import__(f"serverless_ml.{module}", fromlist=["put_file"])
        if hasattr(imported, "put_file"):
            imported.put_file = resources.put_file
    predict_new_rows(login("local"), "iris")
    os._exit(0)  # the round ended before its k-th write: say so by a clean exit


def rounds(frame: pd.DataFrame) -> set:
    "The rounds (round times) a record holds."
    return set(utc_column(frame["round_time"])) if len(frame) else set()


def test_a_round_killed_at_any_store_write_is_watched_by_the_next_so_no_record_is_lost(store):
    fork = multiprocessing.get_context("fork")
    for k in range(1, WRITES_OF_A_ROUND):  # one round killed after each write but the last, 10 in all
        add_daily_rows(store, "iris", daily_rows("iris", 20, params.check_days(1, None), seed=k, drift=0.6))
        child = fork.Process(target=killed_at_write, args=(k,))
        child.start()
        child.join(300)
        assert child.exitcode == -signal.SIGKILL, f"round {k}: exit code {child.exitcode}, not killed at write {k}"
    add_daily_rows(store, "iris", daily_rows("iris", 20, params.check_days(1, None), seed=99, drift=0.6))
    last = predict_new_rows(store, "iris")  # one plain round: it watches every round the kills cut short
    logged = set(logged_tally(store, "iris")["prediction_time"])
    api = store.get_dataset_api()
    assert len(logged) == WRITES_OF_A_ROUND, sorted(logged)  # each killed round had logged its predictions first
    assert rounds(DRIFT_RECORD.read(api, "iris")) == logged
    assert rounds(QUALITY_RECORD.read(api, "iris")) == logged
    accuracy = alerts.read_alerts(store, "iris")
    assert rounds(accuracy[accuracy.kind == "accuracy"]) == logged  # every drifted round's alert, once
    assert not accuracy.alert_id.duplicated().any()
    assert last.caught_up, "the plain round found no round left unwatched: the kills cut nothing short"


def test_a_daily_round_writes_two_feature_groups_and_keeps_its_records_as_files(store):
    add_daily_rows(store, "iris", daily_rows("iris", 5, params.check_days(1, None), seed=1))
    done = predict_new_rows(store, "iris")
    fs, api = store.get_feature_store(), store.get_dataset_api()
    assert {name for name in ("iris", "iris_predictions", "iris_drift", "iris_quality", "iris_alerts")
            if fs.get_feature_group(name, version=1) is not None} == {"iris", "iris_predictions"}
    for record in (DRIFT_RECORD, QUALITY_RECORD, alerts.ALERTS_RECORD):
        assert api.exists(record.path("iris")), record.path("iris")
    assert rounds(DRIFT_RECORD.read(api, "iris")) == {done.watch.round_time}
