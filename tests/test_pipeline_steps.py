"""The stage steps of `pipelines`, each on a temporary local store in seconds: no kernel, server or browser.

These are the fast tests `make mutants` runs against the pipelines module; test_pipelines.py runs the stage
notebooks themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from serverless_ml.features import datasets
from serverless_ml.features.daily import daily_rows
from serverless_ml.features.datasets import class_balance
from serverless_ml.features.group import existing_group, feature_group, upsert
from serverless_ml.features.spec import schema, spec
from serverless_ml.names import group_name, images_folder, model_name, predictions_name, state_folder
from serverless_ml.store.groups import SchemaMismatchError
from serverless_ml.store.login import login
from serverless_ml.training import models
from serverless_ml.training.registry import (
    TRAINING_RECORD,
    compare_models,
    load_best_model,
    model_entry,
    model_schema,
    register_model,
    training_record,
)
from serverless_ml.training.split import feature_view, training_data

DAY = pd.Timestamp("2026-11-01", tz="UTC")


@pytest.fixture
def project(sml_home):
    return login()


@pytest.fixture
def filled(project):
    "A store holding the 150 iris rows in the feature group, and the feature view over it."
    fs = project.get_feature_store()
    upsert(feature_group(fs, "iris"), datasets.load("iris"))
    return project, feature_view(fs, "iris")


@pytest.fixture
def registered(filled):
    "Two registered iris versions: v1 with the better holdout accuracy, v2 with the better CV accuracy."
    project, fv = filled
    X_train, _, y_train, _ = training_data(fv, "iris")
    model, mr = KNeighborsClassifier(3).fit(X_train, y_train), project.get_model_registry()  # not tuned: fast
    confusion = models.confusion("iris", y_train, y_train)
    for metrics in ({"accuracy": 0.99, "cv_accuracy_mean": 0.93333}, {"accuracy": 0.90, "cv_accuracy_mean": 0.97}):
        register_model(mr, "iris", model, metrics, confusion, X_train, y_train, fv, confusion_png=b"png")
    return mr, X_train, model


def test_every_name_and_folder_takes_the_namespace_prefix(monkeypatch):
    names = lambda: [group_name("titanic"), model_name("titanic"),  # noqa: E731
                     predictions_name("titanic"), images_folder("titanic"),
                     state_folder("titanic")]
    monkeypatch.delenv("SML_NAMESPACE", raising=False)
    assert names() == ["titanic", "titanic_model", "titanic_predictions", "Resources/images/titanic",
                       "Resources/monitoring/titanic"]
    monkeypatch.setenv("SML_NAMESPACE", "alice")
    assert names() == ["alice_titanic", "alice_titanic_model", "alice_titanic_predictions",
                       "Resources/alice/images/titanic", "Resources/alice/monitoring/titanic"]


def test_the_feature_view_before_the_feature_stage_says_which_notebook_to_run(project):
    with pytest.raises(LookupError, match=r"'iris' v1 does not exist yet: run 1_feature_pipeline.ipynb for iris"):
        feature_view(project.get_feature_store(), "iris")


def test_the_feature_group_refuses_a_row_outside_the_flower_ranges(project):
    rows = datasets.load("iris").head(3).assign(petal_length=[1.0, 99.0, 1.0])
    with pytest.raises(Exception, match="petal_length"):
        upsert(feature_group(project.get_feature_store(), "iris"), rows)


def test_upsert_counts_the_rows_and_a_second_upsert_adds_none(filled):
    project, _ = filled
    group = existing_group(project.get_feature_store(), "iris")
    assert upsert(group, datasets.load("iris").head(5)) == 5
    assert len(group.read()) == 150


def test_class_balance_counts_every_class_even_an_absent_one():
    rows = pd.DataFrame({"variety": ["Setosa", "Setosa", "Setosa", "Virginica"]})
    table = class_balance("iris", rows)
    assert table.to_dict("list") == {"class": ["Setosa", "Versicolor", "Virginica"], "rows": [3, 0, 1],
                                     "share": [0.75, 0.0, 0.25]}
    assert class_balance("iris", rows.head(0)).rows.tolist() == [0, 0, 0]
    assert class_balance("iris", rows.head(1)).share.tolist() == [1.0, 0.0, 0.0]
    assert class_balance("iris", rows.iloc[[0, 1, 3]]).share.tolist() == [0.667, 0.0, 0.333]


def test_the_training_data_is_a_seeded_fifth_held_out_with_labels_beside_their_rows(filled):
    _, fv = filled
    X_train, X_test, y_train, y_test = training_data(fv, "iris")
    features = spec("iris").features
    assert list(X_train.columns) == features and list(X_test.columns) == features
    assert (len(X_train), len(X_test), len(y_train), len(y_test)) == (120, 30, 120, 30)
    assert sorted(y_test.value_counts().tolist()) == [10, 10, 10]  # stratified by the label
    source = datasets.load("iris").set_index(features)["variety"]
    assert [source.loc[tuple(row)].iloc[0] for row in X_test.itertuples(index=False)] == y_test.tolist()
    again = training_data(fv, "iris", seed=0)
    pd.testing.assert_frame_equal(again[1], X_test)
    other = training_data(fv, "iris", test_size=0.4, seed=1)
    assert len(other[1]) == 60 and not other[1].head(30).equals(X_test)


def test_registering_records_the_metrics_the_schema_and_the_training_rows(registered):
    mr, X_train, _ = registered
    entry = mr.get_model(model_name("iris"), version=1)
    assert entry.training_metrics == {"accuracy": 0.99, "cv_accuracy_mean": 0.93333}
    assert entry.description.startswith("iris: KNeighborsClassifier trained on feature view iris v1")
    assert entry.input_example == X_train.iloc[0].tolist()  # the first training row, for the model page
    assert entry.model_schema["output_schema"]["columnar_schema"][0]["name"] == "variety"
    assert entry.get_feature_view().name == "iris" and entry.training_dataset_version is not None
    folder = Path(entry.download())
    assert (folder / "confusion_matrix.png").read_bytes() == b"png"
    assert json.loads((folder / TRAINING_RECORD).read_text())["training_rows"] == 120
    record = training_record(X_train, type("View", (), {"name": "iris", "version": 1}))
    assert (record["training_rows"], record["feature_view"]) == (120, ["iris", 1])
    schema = model_schema(X_train, pd.Series(["Setosa"], name="variety")).to_dict()
    assert [column["name"] for column in schema["input_schema"]["columnar_schema"]] == list(X_train.columns)


def test_the_best_model_is_the_highest_cv_accuracy_and_a_pinned_version_wins(registered):
    mr, X_train, trained = registered
    model, entry = load_best_model(mr, "iris")
    assert entry.version == 2  # cv 0.97 beats v1's 0.93, though v1's holdout accuracy is higher
    assert model.predict(X_train).tolist() == trained.predict(X_train).tolist()  # the registered model, loaded back
    assert load_best_model(mr, "iris", version=1)[1].version == 1
    with pytest.raises(LookupError, match=r"^There is no version 5 of iris_model in the model registry: run "
                                          r"2_training_pipeline.ipynb for iris or pin an existing model_version\.$"):
        model_entry(mr, "iris", version=5)


def test_no_model_yet_says_to_run_the_training_notebook(project):
    with pytest.raises(LookupError, match="There is no version of iris_model in the model registry: "
                                          "run 2_training_pipeline.ipynb for iris.$"):
        model_entry(project.get_model_registry(), "iris")


def test_the_comparison_shows_the_new_version_beside_the_best_before_and_the_change(registered):
    mr, _, _ = registered
    new, before = mr.get_model("iris_model", version=2), mr.get_model("iris_model", version=1)
    table = compare_models(new, before)
    assert list(table.columns) == ["version 2 (new)", "version 1 (best before)", "change"]
    assert table.loc["cv_accuracy_mean"].tolist() == [0.97, 0.9333, 0.0367]  # to 4 decimals
    assert list(compare_models(new, None).columns) == ["version 2 (new)"]


def test_a_version_this_project_did_not_register_is_refused_by_number(registered):
    mr, X_train, _ = registered
    mr.python.create_model(name="iris_model", description="the course's own model").save(
        mr.get_model("iris_model", version=1).download())
    with pytest.raises(SchemaMismatchError) as refused:
        load_best_model(mr, "iris")
    assert str(refused.value) == (
        "The model registry holds versions [3] of 'iris_model' that this project did not register (the course and "
        "the Hopsworks tutorials use the same name). Either set SML_NAMESPACE (e.g. SML_NAMESPACE=alice) to give "
        "this project's objects their own names, or delete them with `sml-run clean` (it lists what it would "
        "delete; add --yes to delete).")


def test_daily_rows_give_n_rows_on_each_day_with_true_labels():
    days = pd.DatetimeIndex([DAY, DAY + pd.Timedelta(days=1)])
    rows = daily_rows("iris", 3, days, seed=1)
    assert rows.event_time.tolist() == [DAY] * 3 + [DAY + pd.Timedelta(days=1)] * 3
    assert list(rows.columns) == list(schema("iris").columns) and str(rows.event_time.dt.tz) == "UTC"
    assert set(rows.variety) <= {"Setosa", "Versicolor", "Virginica"}
    pd.testing.assert_frame_equal(rows, daily_rows("iris", 3, days, seed=1))
    pd.testing.assert_frame_equal(rows, daily_rows("iris", 3, days, seed=1, drift=0.0))  # no drift unless asked
    drifted = daily_rows("iris", 3, days, seed=1, drift=0.6)
    assert not drifted[spec("iris").features].equals(rows[spec("iris").features])
