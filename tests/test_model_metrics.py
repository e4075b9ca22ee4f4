"""The metrics `models.evaluate` stores, on a tiny hand-made dataset whose right values can be counted by hand.

test_models.py checks the real models meet their targets; this file checks each stored number is the one its name
says, in about a second, so that `make mutants` can run it for every mutant of `evaluate`."""

from __future__ import annotations

import pandas as pd
import pytest
from sklearn.model_selection import cross_val_score

from serverless_ml.features import datasets
from serverless_ml.training import models


def flowers(lengths: list[float], varieties: list[str]) -> pd.DataFrame:
    "Iris rows that differ only in petal length: a one-nearest-neighbour model sorts them by it."
    return pd.DataFrame({"sepal_length": 5.0, "sepal_width": 3.0, "petal_length": lengths, "petal_width": 1.0,
                         "variety": varieties})


# three tight clusters of five training flowers, 0.1 cm apart and 3 cm between clusters
TRAIN = flowers([1.0, 1.1, 1.2, 1.3, 1.4, 4.0, 4.1, 4.2, 4.3, 4.4, 7.0, 7.1, 7.2, 7.3, 7.4],
                ["Setosa"] * 5 + ["Versicolor"] * 5 + ["Virginica"] * 5)
# the last test flower is labelled Versicolor but lies among the Virginica: the model calls it Virginica
TEST = flowers([1.5, 4.5, 7.5, 7.6, 7.7], ["Setosa", "Versicolor", "Virginica", "Virginica", "Versicolor"])


@pytest.fixture(scope="module")
def metrics() -> dict:
    model = models.iris_pipeline(k=1).fit(TRAIN, TRAIN.variety)
    return models.evaluate("iris", model, TRAIN, TRAIN.variety, TEST, TEST.variety, seed=0)


def test_holdout_accuracy_and_f1_count_the_test_rows(metrics):
    assert metrics["accuracy"] == pytest.approx(4 / 5)
    # per class F1: Setosa 1, Versicolor 2/3 (1 of 2 found, no false alarm), Virginica 4/5 (2 right, 1 false alarm)
    assert metrics["f1_macro"] == pytest.approx((1 + 2 / 3 + 4 / 5) / 3)


def test_cross_validation_runs_over_train_and_test_rows_together(metrics):
    # 20 rows in 5 folds: the odd flower is wrong in its fold of 4 (its nearest neighbours are Virginica) and
    # every other flower is right, so one fold scores 3/4 and four score 1
    assert metrics["cv_accuracy_mean"] == pytest.approx((4 + 3 / 4) / 5)
    assert metrics["cv_accuracy_std"] == pytest.approx(pd.Series([1, 1, 1, 1, 0.75]).std(ddof=0))


def test_iris_metrics_are_plain_floats_without_roc_auc(metrics):
    assert sorted(metrics) == ["accuracy", "cv_accuracy_mean", "cv_accuracy_std", "f1_macro"]
    assert all(type(value) is float for value in metrics.values())


def test_titanic_adds_the_holdout_and_cross_validated_roc_auc():
    rows = datasets.load("titanic").head(100)
    model = models.titanic_pipeline(n_estimators=5).fit(models.features_of("titanic", rows), rows.survived)
    train, test = rows.head(80), rows.tail(20)
    found = models.evaluate("titanic", model, train, train.survived, test, test.survived)
    assert sorted(found) == ["accuracy", "cv_accuracy_mean", "cv_accuracy_std", "cv_roc_auc_mean", "f1_macro", "roc_auc"]
    survived = models.predict_proba("titanic", model, test)["Survived"]
    ranked = sum((a > b) + (a == b) / 2 for a in survived[test.survived == 1] for b in survived[test.survived == 0])
    assert found["roc_auc"] == pytest.approx(ranked / ((test.survived == 1).sum() * (test.survived == 0).sum()))
    assert 0.5 < found["cv_roc_auc_mean"] <= 1 and found["cv_roc_auc_mean"] != found["roc_auc"]


def test_cross_validation_uses_the_seeded_shuffled_folds():
    iris = datasets.load("iris").sample(150, random_state=0)
    train, test = iris.head(120), iris.tail(30)
    model = models.iris_pipeline(k=1).fit(train, train.variety)
    found = models.evaluate("iris", model, train, train.variety, test, test.variety, seed=3)
    rows = models.features_of("iris", iris.reset_index(drop=True))
    scores = cross_val_score(models.iris_pipeline(k=1), rows, iris.variety.to_numpy(), cv=models.folds(3))
    assert found["cv_accuracy_mean"] == pytest.approx(scores.mean()) == pytest.approx(29 / 30)
