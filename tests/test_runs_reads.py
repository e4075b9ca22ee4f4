"""The runner's records read the store as little as the record needs: not at all. Each stage reports what it
read and wrote from what it holds in memory (`runs.stage_report`), and the runner folds those reports and
papermill's own record into run.json. The reports say what the store says: the rows, the predictions, the
pictures and the model the stages wrote. The local store's read of zoned times is checked here too."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timezone

import duckdb
import pandas as pd
import pytest
from helpers import stores

from serverless_ml import params
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.inference.images import IMAGES
from serverless_ml.names import images_folder, model_name
from serverless_ml.runs import cli
from serverless_ml.runs.fingerprints import rows_fingerprint, sha256_file
from serverless_ml.runs.manifest import read_manifest
from serverless_ml.runs.stage_report import (
    PREDICTIONS_FILE,
    RECORDS,
    read_report,
    report_daily,
    report_inference,
    report_training,
)
from serverless_ml.store.login import login
from serverless_ml.store.model_files import MODEL_FILE
from serverless_ml.training.registry import train_and_register


@pytest.fixture
def store(filled_store_env, tmp_path, monkeypatch):
    "A copy of the filled store (history, a model, 3 days of predictions), used by this process; reports in `records`."
    env = stores.copy_store(filled_store_env, tmp_path / "copy")
    for name in stores.STORE_VARIABLES:
        monkeypatch.setenv(name, env[name])
    monkeypatch.setenv(RECORDS, str(tmp_path / "records"))  # as the runner sets it for its stage kernels
    return login("local")


def test_the_daily_and_inference_reports_say_what_the_store_got(store, tmp_path):
    rows = daily_rows("iris", 4, params.check_days(1, None), 3)
    report_daily("iris", rows, add_daily_rows(store, "iris", rows))
    done = predict_new_rows(store, "iris")
    report_inference(done)
    daily, inference = (read_report(tmp_path / "records", "iris", stage) for stage in ("daily", "inference"))
    stored = store.get_feature_store().get_feature_group("iris", version=1).read()
    written = stored[stored.flower_id.isin(rows.flower_id)]
    assert daily["outputs"] == {"rows_written": 4, "rows_fingerprint": rows_fingerprint(written)}
    assert inference["outputs"]["predictions_written"] == 4 and len(done.predictions) == 4
    kept = pd.read_csv(tmp_path / "records" / "iris" / PREDICTIONS_FILE)
    assert sorted(kept.id) == sorted(rows.flower_id)
    api = store.get_dataset_api()
    for name in IMAGES:  # the digest of what the round drew is the digest of the file in the store
        uploaded = api.download(f"{images_folder('iris')}/{name}", local_path=str(tmp_path / name), overwrite=True)
        assert inference["outputs"]["images"][name] == sha256_file(uploaded), name
    assert inference["inputs"] == {"model": {"name": model_name("iris"), "version": done.model_version}}


def test_the_training_report_holds_the_rows_it_read_and_the_model_it_registered(store, tmp_path):
    trained = train_and_register(store, "iris")
    report_training(trained)
    [model] = read_report(tmp_path / "records", "iris", "training")["outputs"]["models"]
    registered = store.get_model_registry().get_model(model_name("iris"), version=model["version"])
    assert model["version"] == 2 and model["metrics"] == registered.training_metrics
    assert model["model_sha256"] == sha256_file(f"{registered.download()}/{MODEL_FILE}")
    read = read_report(tmp_path / "records", "iris", "training")["inputs"]["feature_view"]
    assert read["rows"] == len(store.get_feature_store().get_feature_group("iris", version=1).read())  # 150 + 3


def test_a_run_record_opens_no_store_connection_in_the_runner(store, tmp_path, monkeypatch, capsys):
    # Before, the runner fingerprinted the feature group and the prediction keys around every stage: a daily
    # round opened 19 connections to the store file in the runner process and read its whole history.
    opened = []
    real_connect = duckdb.connect
    monkeypatch.setattr(duckdb, "connect", lambda *args, **kwargs: opened.append(args) or real_connect(*args, **kwargs))
    monkeypatch.setattr(cli, "run_alerts", lambda results, stamp: {})  # the alerts are read on their own
    assert cli.main(["daily", "--datasets", "iris", "--rows", "2"]) == 0, capsys.readouterr()
    assert opened == []
    [folder] = [p for p in (tmp_path / "copy" / "outputs" / "runs").iterdir() if p.is_dir()]
    daily, inference = read_manifest(folder)["stages"]
    assert daily["outputs"]["rows_written"] == 2 and inference["outputs"]["predictions_written"] == 2


RECORD_STAGES = """
import json, sys
from datetime import datetime, timezone
from pathlib import Path
import nbformat
import serverless_ml.runs.cli
from serverless_ml.runs.manifest import Manifest
from serverless_ml.runs.runner import Step
from serverless_ml.runs.stage_report import write_report
folder = Path(sys.argv[1])
made = Manifest(folder, "daily", ["daily"], datetime(2026, 11, 30, tzinfo=timezone.utc))
made.plan("iris", [Step("daily", {"dataset": "iris"})])
made.begin("iris", "daily")
executed = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"},
                                             "papermill": {"parameters": {"dataset": "iris"}, "duration": 1.5,
    "start_time": "2026-11-30T00:00:00+00:00", "end_time": "2026-11-30T00:00:01.5+00:00", "exception": None}})
executed.cells = [nbformat.v4.new_code_cell('dataset: str = "titanic"', metadata={"tags": ["parameters"]})]
(folder / "iris").mkdir()
nbformat.write(executed, folder / "iris" / "3_daily_feature_pipeline.ipynb")
write_report("iris", "daily", {}, {"rows_written": 1})
made.end("iris", "daily", folder / "iris" / "3_daily_feature_pipeline.ipynb")
heavy = ("sklearn", "xgboost", "skops", "scipy", "matplotlib", "seaborn", "serverless_ml.training.models")
print(json.dumps({"loaded": [name for name in heavy if name in sys.modules], "stages": made.data["stages"]}))
"""


def test_recording_a_stage_loads_no_model_statistics_or_plotting_library(tmp_path):
    # sml-run records every stage in its own process, and starts before any kernel: these imports took ~2.3 s
    (tmp_path / "run").mkdir()
    env = {**stores.store_env(tmp_path), RECORDS: str(tmp_path / "run")}
    done = subprocess.run([sys.executable, "-c", RECORD_STAGES, str(tmp_path / "run")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout.splitlines()[-1])
    assert said["loaded"] == []
    [daily] = said["stages"]
    assert (daily["status"], daily["duration_s"], daily["outputs"]) == ("ok", 1.5, {"rows_written": 1})
    assert daily["parameters"] == {"dataset": "iris"}


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
