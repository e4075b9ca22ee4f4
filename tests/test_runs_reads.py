"""The run manifest's snapshots read a large store in event-time windows, once per stage, and record the
same counts, fingerprints and added predictions as whole reads; the local store's cheaper read of zoned
times gives the same frames."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pandas as pd
import pytest
from helpers import stores

from serverless_ml import params
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.inference.images import IMAGES
from serverless_ml.names import FEATURE_GROUP_VERSION, PREDICTIONS_VERSION, group_name, predictions_name
from serverless_ml.runs import snapshots
from serverless_ml.runs.fingerprints import rows_fingerprint
from serverless_ml.runs.manifest import PREDICTIONS_FILE, Manifest
from serverless_ml.runs.snapshots import PREDICTION_ID, key_hashes
from serverless_ml.store.login import login


@pytest.fixture
def store(filled_store_env, tmp_path, monkeypatch):
    "A copy of the filled store (history, a model, 3 days of predictions), used by this process; windows of 2 rows."
    env = stores.copy_store(filled_store_env, tmp_path / "copy")
    for name in stores.STORE_VARIABLES:
        monkeypatch.setenv(name, env[name])
    monkeypatch.setattr(snapshots, "FINGERPRINT_ROWS", 2)  # many windows, as on a large store
    monkeypatch.setattr(snapshots, "KEY_WINDOW_ROWS", 3)
    return login("local")


def groups(project, dataset: str = "iris") -> tuple:
    "The feature group and the predictions group of `dataset`."
    fs = project.get_feature_store()
    return (fs.get_feature_group(group_name(dataset), version=FEATURE_GROUP_VERSION),
            fs.get_feature_group(predictions_name(dataset), version=PREDICTIONS_VERSION))


def manifest(folder) -> Manifest:
    "A manifest planning iris' daily and inference stages."
    from serverless_ml.runs.runner import Step
    folder.mkdir()
    made = Manifest(folder, "daily", ["daily"], datetime(2026, 11, 30, tzinfo=timezone.utc))
    made.plan("iris", [Step("daily", {"dataset": "iris"}), Step("inference", {"dataset": "iris"})])
    return made


@pytest.mark.parametrize("stage", ["daily", "inference"])
def test_a_stage_start_records_what_whole_reads_give(store, tmp_path, stage):
    stores.daily_and_inference(store, "iris", 12, 5)  # 15 predictions, 8 windows
    rows, predictions = groups(store)
    run = manifest(tmp_path / "run")
    before = run.begin("iris", stage, {"dataset": "iris"}, store)
    every_row, every_prediction = rows.read(), predictions.read()
    inputs = run.entry("iris", stage)["inputs"]
    assert inputs["feature_group"]["rows"] == before["rows"] == len(every_row)
    assert inputs["feature_group"]["fingerprint"] == rows_fingerprint(every_row)
    np.testing.assert_array_equal(before["predictions"], key_hashes(every_prediction[PREDICTION_ID]))
    if stage == "inference":
        assert inputs["predictions"] == {"name": predictions_name("iris"), "version": 1, "rows": len(every_prediction),
                                         "fingerprint": rows_fingerprint(every_prediction)}


def test_a_round_records_its_added_row_and_prediction(store, tmp_path):
    run = manifest(tmp_path / "run")
    before = run.begin("iris", "inference", {"dataset": "iris"}, store)
    added = stores.daily_and_inference(store, "iris", 1, 11)
    run.end("iris", "inference", before, store)
    outputs = run.entry("iris", "inference")["outputs"]
    assert (outputs["rows_added"], outputs["predictions_added"]) == (1, 1)
    kept = pd.read_csv(tmp_path / "run" / "iris" / PREDICTIONS_FILE)
    assert kept.id.tolist() == added.id.tolist()


def test_a_round_end_reads_only_the_predictions_written_since_its_start(store, tmp_path, monkeypatch):
    run = manifest(tmp_path / "run")
    before = run.begin("iris", "inference", {"dataset": "iris"}, store)
    added = stores.daily_and_inference(store, "iris", 1, 12)
    # a daily round on a long history: the end reads the round's few predictions, not every key a window at a time
    monkeypatch.setattr(snapshots, "_key_windows", lambda *_: pytest.fail("the end read every prediction key"))
    run.end("iris", "inference", before, store)
    outputs = run.entry("iris", "inference")["outputs"]
    assert (outputs["rows_added"], outputs["predictions_added"]) == (1, 1)
    kept = pd.read_csv(tmp_path / "run" / "iris" / PREDICTIONS_FILE)
    assert kept.id.tolist() == added.id.tolist()


def test_zoned_times_read_back_as_utc_with_their_nulls(sml_home):
    fs = login("local").get_feature_store()
    group = fs.get_or_create_feature_group("zoned", version=1, primary_key=["id"], event_time="event_time")
    at = pd.Series(pd.to_datetime(["2026-01-01 10:00:00.123456", "2026-06-01 23:59:59.000000", "2026-11-30 00:00:00.000000"]))
    frame = pd.DataFrame({"id": [1, 2, 3], "event_time": at.dt.tz_localize("Europe/Oslo"),
                          "seen": at.dt.tz_localize("UTC").where(pd.Series([True, False, True]))})
    group.insert(frame)
    expected = frame.assign(event_time=frame.event_time.dt.tz_convert("UTC").dt.as_unit("us"),
                            seen=frame.seen.dt.as_unit("us"))
    reads = {"read": group.read(), "online": group.read(online=True), "select": group.select(["id", "seen"]).read(),
             "filter": group.select_all().filter(group.get_feature("event_time") >= "2026-06-01").read()}
    for how, read in reads.items():
        for column in set(read.columns) - {"id"}:
            assert str(read[column].dtype) == "datetime64[us, UTC]", (how, column, read[column].dtype)
            assert read[column].dt.tz is timezone.utc, (how, column)  # what DuckDB's own conversion gave
        want = expected[expected.id.isin(read.id)][list(read.columns)]
        pd.testing.assert_frame_equal(read.sort_values("id", ignore_index=True), want.reset_index(drop=True))
    assert reads["read"].seen.isna().tolist() == [False, True, False]


def test_a_daily_stage_records_its_row_and_no_prediction(store, tmp_path):
    run = manifest(tmp_path / "run")
    before = run.begin("iris", "daily", {"dataset": "iris"}, store)
    add_daily_rows(store, "iris", daily_rows("iris", 1, params.check_days(1, None), 3))
    run.end("iris", "daily", before, store)
    outputs = run.entry("iris", "daily")["outputs"]
    assert (outputs["rows_added"], outputs["predictions_added"]) == (1, 0)
    assert not (tmp_path / "run" / "iris" / PREDICTIONS_FILE).exists()


RECORD_STAGES = """
import json, sys
from datetime import datetime, timezone
from pathlib import Path
from serverless_ml.runs.manifest import Manifest
from serverless_ml.runs.runner import Step
from serverless_ml.store.login import login
project, folder = login("local"), Path(sys.argv[1])
made = Manifest(folder, "run", ["run"], datetime(2026, 11, 30, tzinfo=timezone.utc))
made.plan("iris", [Step(stage, {"dataset": "iris"}) for stage in ("training", "inference")])
for stage in ("training", "inference"):  # as if the store had no model and no pictures before: all are recorded
    before = made.begin("iris", stage, {"dataset": "iris"}, project)
    made.end("iris", stage, {**before, "models": {}, "images": {}}, project)
heavy = ("sklearn", "xgboost", "skops", "scipy", "matplotlib", "seaborn", "serverless_ml.training.models")
print(json.dumps({"loaded": [name for name in heavy if name in sys.modules], "stages": made.data["stages"]}))
"""


def test_recording_a_stage_loads_no_model_statistics_or_plotting_library(filled_store_env, tmp_path):
    # sml-run records every stage in its own process before the first kernel starts: these imports took ~2.3 s
    (tmp_path / "run").mkdir()
    env = stores.copy_store(filled_store_env, tmp_path / "copy")
    done = subprocess.run([sys.executable, "-c", RECORD_STAGES, str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said["loaded"] == []
    training, inference = said["stages"]
    assert training["inputs"]["feature_group"]["rows"] > 0 and set(inference["inputs"]) == {"feature_group", "predictions"}
    assert [len(model["model_sha256"]) for model in training["outputs"]["models"]] == [64]  # the model file hashed
    assert sorted(inference["outputs"]["images"]) == sorted(IMAGES)  # every picture the round drew
