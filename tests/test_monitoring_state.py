"""The monitoring state and pictures are checked against the store before anyone relies on them,
and the best model is the best by cross-validated accuracy."""

from __future__ import annotations

import json
import shutil
import warnings
from types import SimpleNamespace

import pytest
from helpers.stores import daily_and_inference, register_with_metrics, using_store

from serverless_ml import params
from serverless_ml.apps import dashboard_data
from serverless_ml.apps.dashboard import DashboardTab
from serverless_ml.apps.dashboard_data import DASHBOARD_PICTURES, read_dashboard
from serverless_ml.features import datasets
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.features.group import feature_group, upsert
from serverless_ml.inference import batch
from serverless_ml.inference.batch import predict_new_rows, predict_rows
from serverless_ml.inference.images import draw_pictures, png_problem, upload_images
from serverless_ml.inference.lock import monitoring_lock
from serverless_ml.inference.state import (
    STATE_FILE,
    MonitoringStateWarning,
    logged_tally,
    monitoring_data,
    monitoring_state,
    read_state,
    write_state,
)
from serverless_ml.names import images_folder, state_folder
from serverless_ml.store.local import dataset_api
from serverless_ml.store.login import login
from serverless_ml.training.registry import best_model, load_best_model

STATE = f"{state_folder('iris')}/{STATE_FILE}"


@pytest.fixture(scope="module")
def predicted_store(tmp_path_factory):
    "A store with the iris history, one model and 6 predictions over 6 days, built once."
    home = tmp_path_factory.mktemp("predicted")
    with using_store(home):
        project = login("local")
        upsert(feature_group(project.get_feature_store(), "iris"), datasets.load("iris"))
        register_with_metrics(project, "iris", {"accuracy": 0.5, "cv_accuracy_mean": 0.5})  # any later version beats it
        daily_and_inference(project, "iris", n_days=6, seed=1)
    return home / "store"


@pytest.fixture
def project(sml_home, predicted_store):
    "A fresh copy of the predicted store as this test's SML_HOME; its project."
    shutil.copytree(predicted_store, sml_home)
    return login("local")


@pytest.fixture
def server_log(monkeypatch) -> list[str]:
    "What the apps write to the server's log during the test."
    lines = []
    logger = SimpleNamespace(warning=lambda text, *args: lines.append(text % args))
    monkeypatch.setattr(dashboard_data, "server_log", lambda: logger)
    return lines


def put_state(project, data: bytes) -> None:
    "Replace iris's state file with `data`, as a crash, a full disk or a hand edit would."
    dataset_api.local_resource(STATE).write_bytes(data)


def stored(project) -> int:
    "How many iris predictions the store holds."
    return int(logged_tally(project, "iris")["n"].sum())


def inflated(project) -> bytes:
    "The current state with every count multiplied by 1000: valid JSON, wrong figures."
    state = read_state(project.get_dataset_api(), "iris")
    return json.dumps({**state, "counts": [{**row, "n": row["n"] * 1000} for row in state["counts"]]}).encode()


def all_right(project) -> bytes:
    "The current state with every prediction counted as right: the same totals, a false accuracy of 1.0."
    state = read_state(project.get_dataset_api(), "iris")
    return json.dumps({**state, "counts": [{**row, "prediction": row["outcome"]} for row in state["counts"]]}).encode()


def made_up_rows(project) -> bytes:
    "The current state with a recent prediction (and the newest row) of a flower the store never saw."
    state = read_state(project.get_dataset_api(), "iris")
    recent = [{**state["recent"][0], "id": 424242}, *state["recent"][1:]]
    return json.dumps({**state, "recent": recent, "newest": {**state["newest"], "flower_id": 424242}}).encode()


DAMAGE = {"empty": lambda project: b"", "not json": lambda project: b'{"watermark": ', "a list": lambda project: b"[]",
          "not utf-8": lambda project: b"\xff\xfe{}", "wrong types": lambda project: b'{"counts": 5, "recent": {}}',
          "counts x1000": inflated, "made-up recent rows": made_up_rows}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_state_is_rebuilt_with_a_warning_naming_the_file_and_the_stages_go_on(project, damage):
    put_state(project, DAMAGE[damage](project))
    with pytest.warns(MonitoringStateWarning, match=r"monitoring/iris/state\.json is not usable"):
        daily_and_inference(project, "iris", n_days=1, seed=2)  # daily marks, inference predicts: both read the state
    state = read_state(project.get_dataset_api(), "iris")  # written back whole and right
    assert sum(row["n"] for row in state["counts"]) == stored(project) == 7
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a good state raises no warning
        assert monitoring_state(project, "iris") == state


def test_the_dashboard_shows_the_stores_figures_not_an_inflated_state(project, server_log):
    wrong = inflated(project)
    put_state(project, wrong)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing reaches the page: the warning goes to the server's log
        tab = DashboardTab("iris", read=lambda dataset: read_dashboard(dataset, project))
        tab.refresh()
    assert "<b>6</b> predictions" in tab.counts.value and "6,000" not in tab.counts.value
    assert "it counts 6,000 predictions where the store holds 6" in server_log[0]
    assert dataset_api.local_resource(STATE).read_bytes() == wrong  # the dashboard only reads


@pytest.mark.parametrize("damage, said", [(all_right, "right predictions where the store holds"),
                                          (made_up_rows, "its recent predictions hold ids [424242]")])
def test_the_dashboard_shows_the_stores_accuracy_and_rows_not_a_plausible_false_state(project, server_log, damage, said):
    add_daily_rows(project, "iris", daily_rows("iris", 20, params.check_days(1, None), seed=5, drift=1.0))
    predict_new_rows(project, "iris")  # larger Versicolor petals: the model gets some of them wrong
    truth = monitoring_data(project, "iris")
    assert int(truth.accuracy.correct.sum()) < truth.n_predictions == 26
    put_state(project, damage(project))
    data = read_dashboard("iris", project)
    assert (data.counts["predictions"], data.counts["correct"]) == (26, int(truth.accuracy.correct.sum()))
    assert 424242 not in data.recent["id"].tolist()
    assert said in server_log[0], server_log
    predict_new_rows(project, "iris")  # the next round checks the state too, and writes the store's figures back
    assert monitoring_data(project, "iris").accuracy.correct.sum() == truth.accuracy.correct.sum()


def test_a_state_file_that_is_a_folder_is_rebuilt_not_blocking_the_dataset(project):
    path = dataset_api.local_resource(STATE)
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("{}")
    with pytest.warns(MonitoringStateWarning, match=r"state\.json is not usable: it is not a readable JSON file"):
        daily_and_inference(project, "iris", n_days=1, seed=4)
    assert path.is_file() and sum(row["n"] for row in read_state(project.get_dataset_api(), "iris")["counts"]) == 7


def test_the_dashboard_counts_predictions_logged_after_the_state(project):
    state = read_state(project.get_dataset_api(), "iris")
    daily_and_inference(project, "iris", n_days=1, seed=3)
    write_state(project.get_dataset_api(), "iris", state)  # as if killed between insert and state write
    assert read_dashboard("iris", project).counts["predictions"] == stored(project) == 7


def test_a_damaged_picture_is_drawn_again_never_shown_broken(project, server_log):
    view = monitoring_data(project, "iris")
    images = draw_pictures(view)
    upload_images(project.get_dataset_api(), "iris", images, stamp=view.stamp)
    confusion = dataset_api.local_resource(f"{images_folder('iris')}/confusion_matrix.png")
    confusion.write_bytes(images["confusion_matrix.png"][:300])  # truncated, as a full disk leaves it
    data = read_dashboard("iris", project)
    assert "Resources/images/iris/confusion_matrix.png is damaged" in server_log[0]
    assert sorted(data.pictures) == sorted(DASHBOARD_PICTURES)
    assert all(png_problem(png) is None for png in data.pictures.values())


def test_a_round_that_fails_part_way_frees_the_lock_for_the_next_one(project, monkeypatch):
    # The lock is only ever a `with` block: no notebook cell, failing or not, can leave it held.
    real = predict_rows

    def failing(*args, **kwargs):
        raise MemoryError("the model ran out of memory")

    monkeypatch.setattr(batch, "predict_rows", failing)
    add_daily_rows(project, "iris", daily_rows("iris", 1, params.check_days(1, None), 4))
    with pytest.raises(MemoryError) as failed:  # kept, as a notebook kernel keeps its last traceback
        predict_new_rows(project, "iris")
    with monitoring_lock("iris", timeout=0):  # free at once: the failed round released it
        assert failed.traceback  # (the traceback, and the frames it holds, are still alive here)
    monkeypatch.setattr(batch, "predict_rows", real)
    assert len(predict_new_rows(project, "iris").predictions) == 1  # the next round predicts the row


def test_the_best_model_is_chosen_by_cv_accuracy_not_by_a_lucky_holdout(project):
    # as reported: test_size 0.01 left 13 holdout rows, 0.923 right, though its CV accuracy was lower
    steady = register_with_metrics(project, "iris", {"accuracy": 0.798, "cv_accuracy_mean": 0.816})
    lucky = register_with_metrics(project, "iris", {"accuracy": 0.923, "cv_accuracy_mean": 0.803})
    mr = project.get_model_registry()
    assert lucky.training_metrics["accuracy"] > steady.training_metrics["accuracy"]
    assert best_model(mr, "iris").version == steady.version
    assert load_best_model(mr, "iris")[1].version == steady.version  # what inference and the apps use


def test_the_best_model_asks_either_registry_for_the_highest_cv_accuracy():
    asked = []

    class Registry:  # the call Hopsworks' ModelRegistry answers with the same signature
        def get_best_model(self, name, metric, direction):
            asked.append((name, metric, direction))

    best_model(Registry(), "titanic")
    assert asked == [("titanic_model", "cv_accuracy_mean", "max")]
