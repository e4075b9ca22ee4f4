"""The four stage notebooks, executed by papermill on a temporary store exactly as the runner executes them.

Feature + training run once per dataset (both datasets in parallel) in a module fixture; the tests
build on that store. Every papermill execution starts a kernel, so each test runs only what it checks
through papermill; the rounds a test needs but does not check run in this process (`daily_round`,
`inference_round`), with the very calls the stage notebooks make."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers.stores import using_store
from papermill.exceptions import PapermillExecutionError

from serverless_ml import config
from serverless_ml.features import datasets
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.features.group import feature_group, upsert
from serverless_ml.features.spec import spec
from serverless_ml.inference.batch import Round, predict_new_rows
from serverless_ml.inference.images import IMAGES
from serverless_ml.inference.lock import MonitoringBusyError, monitoring_lock
from serverless_ml.inference.state import PREDICTION_COLUMNS
from serverless_ml.names import model_name, predictions_name
from serverless_ml.params import check_params
from serverless_ml.runs import runner
from serverless_ml.runs.stage_report import PREDICTIONS_FILE, read_report
from serverless_ml.store.login import login
from serverless_ml.training import models
from serverless_ml.training.registry import load_best_model

FAKE_KEY = "sml-test-fake-api-key-9c1e7b"  # set while the stages run; must never reach a record
_calls = itertools.count()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store with both feature groups and a first model each, made by `sml-run run --days 0`."
    root = tmp_path_factory.mktemp("pipelines")
    with using_store(root), pytest.MonkeyPatch.context() as env:
        env.setenv("HOPSWORKS_API_KEY", FAKE_KEY)  # kernels inherit it; the local backend ignores it
        results = runner.run_all("run", ["iris", "titanic"], days=0, stamp="setup")
        assert all(result.ok for result in results), [result.error for result in results]
        yield root


def execute(stage: str, **parameters):
    "Execute one stage notebook as the runner does, into its own record folder."
    step = runner.Step(stage, parameters)
    return runner.execute(step, config.run_dir(f"test{next(_calls):02d}", parameters["dataset"]))


def daily_round(dataset: str, n_rows: int = 1) -> int:
    "Notebook 3 with these parameters (fresh rows, ending now), in this process; the rows it added."
    params = check_params(dataset=dataset, n_rows=n_rows, n_days=1, date="", seed=-1, drift=0.0, backend="")
    new_rows = daily_rows(params.dataset, params.n_rows, params.times, params.seed, params.drift)
    return add_daily_rows(login(params.backend), params.dataset, new_rows)


def inference_round(dataset: str) -> Round:
    "Notebook 4 with its default parameters (the best model), in this process."
    params = check_params(dataset=dataset, model_version=0, backend="")
    return predict_new_rows(login(params.backend), params.dataset, params.model_version)


def checking_cell(stage: str, parameters: dict) -> None:
    "What the stage notebook's checking cell runs, in this process."
    params = check_params(**parameters)
    if stage == "feature":
        datasets.load(params.dataset, params.source)


def counts(dataset: str) -> dict:
    "What a bad run must not change: rows, predictions, model versions, uploaded resources."
    project = login()
    fs = project.get_feature_store()
    logged = fs.get_feature_group(predictions_name(dataset), version=1)
    return {"rows": len(fs.get_feature_group(dataset, version=1).read()),
            "predictions": len(logged.read()) if logged is not None else 0,
            "models": len(project.get_model_registry().get_models(model_name(dataset))),
            "resources": sorted(p.name for p in (config.store_home() / "resources").rglob("*"))}


def predictions(dataset: str):
    "The whole predictions group of `dataset` (empty before the first inference)."
    logged = login().get_feature_store().get_feature_group(predictions_name(dataset), version=1)
    return logged.read() if logged is not None else pd.DataFrame(columns=PREDICTION_COLUMNS)


def only_new(now, before):
    "The predictions in `now` that `before` did not hold."
    if before.empty:
        return now
    merged = now.merge(before[["id", "event_time"]], on=["id", "event_time"], how="left", indicator=True)
    return merged[merged._merge == "left_only"]


def test_every_stage_runs_with_small_parameters(store):
    project = login()
    for dataset in ("iris", "titanic"):
        model = project.get_model_registry().get_model(model_name(dataset), version=1)
        assert {"accuracy", "f1_macro", "cv_accuracy_mean"} <= set(model.training_metrics)
        majority = datasets.load(dataset)[spec(dataset).label].value_counts(normalize=True).max()
        assert majority + 0.1 < model.training_metrics["accuracy"] <= 1.0, (dataset, majority, model.training_metrics)
        assert (Path(model.download()) / "confusion_matrix.png").is_file()
    before = {dataset: predictions(dataset) for dataset in ("iris", "titanic")}
    results = runner.run_all("backfill", ["iris", "titanic"], days=3, stamp="backfill")
    assert all(result.ok for result in results), [result.error for result in results]
    for result in results:  # one vectorised execution per stage, not one per day
        assert [p.name for p in result.executed] == ["3_daily_feature_pipeline.ipynb",
                                                     "4_batch_inference_pipeline.ipynb"]
    for dataset in ("iris", "titanic"):
        new = only_new(predictions(dataset), before[dataset])
        assert len(new) == 3 and new.event_time.dt.floor("D").nunique() == 3
        model, _ = load_best_model(project.get_model_registry(), dataset)  # what the registered model says
        [key] = spec(dataset).primary_key  # flower_id, passenger_id: `id` in the predictions
        rows = project.get_feature_store().get_feature_group(dataset, version=1).read().rename(columns={key: "id"})
        rows = rows.merge(new[["id"]], on="id")
        expected = dict(zip(rows.id, models.predict(dataset, model, rows), strict=True))
        assert dict(zip(new.id, new.prediction, strict=True)) == expected and len(expected) == 3
        for name in IMAGES:
            assert project.get_dataset_api().exists(f"Resources/images/{dataset}/{name}"), name
        # each stage reported what it wrote to the run's record folder (SML_RECORDS, set by the runner)
        reported = {stage: read_report(config.run_dir("backfill"), dataset, stage) for stage in ("daily", "inference")}
        assert reported["daily"]["outputs"]["rows_written"] == 3
        assert reported["inference"]["outputs"]["predictions_written"] == 3
        assert sorted(reported["inference"]["outputs"]["images"]) == sorted(IMAGES)
        kept = pd.read_csv(config.run_dir("backfill", dataset) / PREDICTIONS_FILE)
        assert sorted(kept.id) == sorted(new.id)


# (stage, parameters, what the message says, through papermill?): the inference case runs its notebook;
# tests/test_bad_inputs.py runs the feature, training and daily notebooks with bad parameters
BAD_PARAMETERS = [
    ("feature", {"dataset": "irs"}, "Unknown dataset 'irs'", False),
    ("feature", {"dataset": "titanic", "source": "/no/such/train.csv"}, "no such file", False),
    ("daily", {"dataset": "iris", "n_rows": -2}, "n_rows=-2 is too small", False),
    ("daily", {"dataset": "titanic", "date": "2026-13-01"}, "date='2026-13-01' is not a date", False),
    ("inference", {"dataset": "iris", "backend": "hopswork"}, "Unknown backend 'hopswork'", True),
]


def failure(stage: str, parameters: dict, notebook: bool) -> tuple[str, str] | None:
    "`(message, failing cell's code)` of a stage run with `parameters`, through papermill or in process; None if it ran."
    if not notebook:
        try:
            checking_cell(stage, parameters)
        except (ValueError, TypeError, FileNotFoundError) as error:
            return str(error), "check_params"
        return None
    try:
        execute(stage, **parameters)
    except PapermillExecutionError as error:
        return error.evalue, error.source
    return None


def test_a_bad_parameter_fails_clearly_and_changes_nothing(store):
    before = {dataset: counts(dataset) for dataset in ("iris", "titanic")}
    for stage, parameters, message, notebook in BAD_PARAMETERS:
        failed = failure(stage, parameters, notebook)
        assert failed is not None, (stage, parameters)
        said, cell = failed
        assert message in said, (stage, parameters, said)
        assert "check_params" in cell  # it stopped in the checking cell, before any write
    assert {dataset: counts(dataset) for dataset in ("iris", "titanic")} == before


def test_the_feature_stage_twice_leaves_the_same_counts(store):
    before = counts("titanic")  # the module's store ran notebook 1 once; here its calls run again, in process
    params = check_params(dataset="titanic", source="", backend="")
    fs = login(params.backend).get_feature_store()
    upsert(feature_group(fs, params.dataset), datasets.load(params.dataset, params.source))
    assert counts("titanic") == before


def test_two_daily_rounds_predict_exactly_the_new_rows_and_never_repredict(store):
    # `make daily` twice, its notebooks' calls in process (tests/test_runs.py runs `sml-run daily` itself)
    first = {dataset: predictions(dataset) for dataset in ("iris", "titanic")}
    for round_ in (1, 2):
        for dataset in ("iris", "titanic"):
            assert daily_round(dataset) == 1
            assert len(inference_round(dataset).predictions) == 1
        for dataset in ("iris", "titanic"):
            now = predictions(dataset)
            assert len(now) == len(first[dataset]) + round_
            assert not now.duplicated(["id", "event_time"]).any()
            kept = first[dataset].merge(now, on=["id", "event_time"], suffixes=("_before", ""))
            assert len(kept) == len(first[dataset])  # every earlier prediction is still there, untouched
            assert (kept.prediction_time_before == kept.prediction_time).all()
            assert (kept.prediction_before == kept.prediction).all()


def test_a_run_holding_the_dataset_makes_daily_and_inference_wait_then_fail_clearly(store, monkeypatch):
    # The monitoring state is read, changed and written whole: a second run changing it at the same time
    # would lose the first run's change. So the daily and inference stages hold the dataset's lock.
    before = counts("iris")
    monkeypatch.setenv("SML_LOCK_TIMEOUT", "1")
    with monitoring_lock("iris"):  # another run of iris, part-way through
        for stage, parameters in (("daily", {"n_rows": 2}), ("inference", {})):
            with pytest.raises(PapermillExecutionError, match="still holds") as failed:
                execute(stage, dataset="iris", **parameters)
            assert "SML_LOCK_TIMEOUT" in failed.value.evalue
        assert counts("iris") == before  # no row, prediction, state or picture changed
        with monitoring_lock("titanic", timeout=0):  # another dataset never waits
            pass
    daily_round("iris", n_rows=2)  # once free, both stages run (their calls, in process)
    inference_round("iris")
    assert counts("iris")["predictions"] == before["predictions"] + 2


def test_a_killed_holder_frees_the_lock(sml_home):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import time; from serverless_ml.inference.lock import monitoring_lock\n"
                               "with monitoring_lock('iris'):\n print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(MonitoringBusyError, match="iris"), monitoring_lock("iris", timeout=0.2):
            pass
    finally:
        holder.kill()  # SIGKILL: no chance to release
        holder.wait()
    with monitoring_lock("iris", timeout=5):
        pass


def test_a_second_training_registers_version_2_and_inference_uses_the_best_by_cv(store):
    execute("training", dataset="titanic", test_size=0.3, seed=7)
    registry = login().get_model_registry()
    versions = {m.version: m.training_metrics["cv_accuracy_mean"] for m in registry.get_models("titanic_model")}
    assert set(versions) == {1, 2}
    before = predictions("titanic")
    daily_round("titanic", n_rows=2)  # the new rows, in process: the inference notebook is what this checks
    execute("inference", dataset="titanic")
    used = only_new(predictions("titanic"), before).model_version
    assert len(used) == 2 and {versions[v] for v in used} == {max(versions.values())}


def test_no_record_contains_the_api_key(store):
    records = [path for path in config.outputs_dir().rglob("*") if path.suffix in (".ipynb", ".html", ".json", ".csv")]
    assert len(records) >= 8  # at least the setup run's: feature and training of both datasets, .ipynb and .html
    leaked = [path for path in records if FAKE_KEY in path.read_text(encoding="utf-8")]
    assert leaked == []
