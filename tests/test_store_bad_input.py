"""Bad input gets a clear error naming the value, and nothing is half-written."""

from __future__ import annotations

import pickle

import joblib
import pandas as pd
import pandera.pandas as pa
import pytest

from serverless_ml.store import model_files
from serverless_ml.store.expectations import expectation_suite, validate
from serverless_ml.store.local.dataset_api import DatasetError
from serverless_ml.store.local.file import FeatureStoreError
from serverless_ml.store.local.registry import ModelRegistryError
from serverless_ml.store.login import login

T0 = pd.Timestamp("2020-01-01", tz="UTC")


@pytest.fixture
def project(sml_home):
    return login("local")


@pytest.fixture
def group(project):
    fg = project.get_feature_store().get_or_create_feature_group("iris", 1, primary_key=["flower_id"],
                                                                 event_time="event_time")
    fg.insert(pd.DataFrame({"flower_id": [1, 2], "petal_length": [1.4, 4.5], "event_time": T0}))
    return fg


def test_wrong_type_is_refused_and_nothing_written(group):
    rows = pd.DataFrame({"flower_id": [3], "petal_length": ["long"], "event_time": T0})
    with pytest.raises(FeatureStoreError, match="petal_length"):
        group.insert(rows)
    assert sorted(group.read().flower_id) == [1, 2]


def test_missing_column_is_refused(group):
    with pytest.raises(FeatureStoreError, match=r"missing columns \['petal_length'\]"):
        group.insert(pd.DataFrame({"flower_id": [3], "event_time": T0}))


def test_missing_key_column_or_value_is_refused(group):
    with pytest.raises(FeatureStoreError, match="flower_id"):
        group.insert(pd.DataFrame({"petal_length": [1.0], "event_time": T0}))
    with pytest.raises(FeatureStoreError, match="missing values"):
        group.insert(pd.DataFrame({"flower_id": [None, 4.0], "petal_length": [1.0, 2.0], "event_time": T0}))
    assert len(group.read()) == 2


def test_not_a_dataframe_is_refused(group):
    with pytest.raises(TypeError, match="DataFrame"):
        group.insert([[3, 1.0, T0]])


def test_untyped_first_column_is_refused(project):
    fg = project.get_feature_store().get_or_create_feature_group("empty", 1, primary_key=["id"])
    with pytest.raises(FeatureStoreError, match=r"\['note'\]"):
        fg.insert(pd.DataFrame({"id": [1], "note": [None]}))
    assert project.get_feature_store().get_feature_group("empty", 1) is None


def test_unknown_versions_and_names(project, group):
    fs = project.get_feature_store()
    assert fs.get_feature_group("iris", 7) is None
    assert fs.get_feature_view("iris", 7) is None
    assert project.get_model_registry().get_model("iris_model", 7) is None
    with pytest.raises(FeatureStoreError, match="'Iris Flowers'"):
        fs.get_or_create_feature_group("Iris Flowers", 1)
    with pytest.raises(FeatureStoreError, match="'0'"):
        fs.get_or_create_feature_group("iris", "0")
    with pytest.raises(FeatureStoreError, match=r"\['colour'\]"):
        group.select(["colour"])
    with pytest.raises(FeatureStoreError, match="labels"):
        fs.create_feature_view("iris", group.select_all(), labels=["colour"])


def test_bad_time_bound_names_the_value(group):
    with pytest.raises(ValueError, match="'yesterday'"):
        group.read(start_time="yesterday")


def test_reading_a_group_without_data_says_insert_first(project):
    fg = project.get_feature_store().get_or_create_feature_group("later", 1, primary_key=["id"])
    with pytest.raises(FeatureStoreError, match="insert a DataFrame first"):
        fg.read()


def test_bad_model_name_and_non_numeric_metrics(project):
    mr = project.get_model_registry()
    with pytest.raises(ModelRegistryError, match="'iris-model'"):
        mr.python.create_model("iris-model")
    with pytest.raises(ValueError, match="'good'"):
        mr.python.create_model("iris_model", metrics={"accuracy": "good"})
    with pytest.raises(ValueError, match="'up' or 'down'|'max' or 'min'"):
        mr.get_best_model("iris_model", "accuracy", "up")


def test_existing_model_version_is_refused(project, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    mr = project.get_model_registry()
    mr.python.create_model("iris_model", version=1).save(str(folder))
    with pytest.raises(ModelRegistryError, match="already exists"):
        mr.python.create_model("iris_model", version=1)


@pytest.mark.parametrize("file_name, write", [
    ("model.pkl", lambda path: path.write_bytes(pickle.dumps({"a": 1}))),
    ("model.joblib", lambda path: joblib.dump({"a": 1}, path)),
    ("model.bin", lambda path: path.write_bytes(pickle.dumps({"a": 1}, protocol=4))),
])
def test_pickle_and_joblib_are_refused(project, sml_home, tmp_path, file_name, write):
    folder = tmp_path / "model"
    folder.mkdir()
    write(folder / file_name)
    model = project.get_model_registry().python.create_model("unsafe")
    with pytest.raises(model_files.UntrustedModelError, match=file_name):
        model.save(str(folder))
    assert project.get_model_registry().get_models("unsafe") == []


def test_a_pickle_placed_in_the_registry_is_refused_on_download(project, sml_home, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    model = project.get_model_registry().python.create_model("iris_model")
    model.save(str(folder))
    (sml_home / "registry" / "iris_model" / "1" / "Files" / "extra.pkl").write_bytes(pickle.dumps(1))
    with pytest.raises(model_files.UntrustedModelError, match="extra.pkl"):
        project.get_model_registry().get_model("iris_model", 1).download()


def test_dataset_paths_outside_resources_are_refused(project, tmp_path):
    picture = tmp_path / "x.png"
    picture.write_bytes(b"png")
    with pytest.raises(DatasetError, match="'Logs/x.png' is not under Resources"):
        project.get_dataset_api().upload(str(picture), "Logs")
    with pytest.raises(DatasetError, match="does not exist"):
        project.get_dataset_api().download("Resources/missing.png", str(tmp_path))


def test_a_failed_validation_names_each_column_and_check_and_shortens_a_long_row_list():

    schema = pa.DataFrameSchema({"age": pa.Column(float, pa.Check.in_range(0, 100)),
                                 "sex": pa.Column(str, pa.Check.isin(["male", "female"]))})
    frame = pd.DataFrame({"age": [200.0] * 24 + [30.0], "sex": ["male"] * 24 + ["robot"]})
    report = validate(frame, expectation_suite(schema, "ALWAYS"))
    assert not report.success
    checks = "Failed checks by column: age: in_range(0, 100); sex: isin(['male', 'female'])."
    assert report.summary() == f"25 of 25 rows failed (index {', '.join(map(str, range(20)))} ... (25 in all)). {checks}"
    assert report.summary(limit=25) == f"25 of 25 rows failed (index {', '.join(map(str, range(25)))}). {checks}"
    passing = validate(frame.iloc[:0], expectation_suite(schema, "ALWAYS"))
    assert passing.success and passing.summary() == "All 0 rows passed."
