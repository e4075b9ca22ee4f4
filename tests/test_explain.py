"""Why a prediction: the Titanic pushes add up to the model's log-odds and point the right way; the Iris
neighbours are the training flowers that voted; a saved and reloaded model explains the same."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from serverless_ml import pictures
from serverless_ml.features import datasets
from serverless_ml.training import explain, models


@pytest.fixture(scope="module")
def titanic_model():
    titanic = datasets.load("titanic")
    train, _ = train_test_split(titanic, test_size=0.2, random_state=42, stratify=titanic.survived)
    return models.train("titanic", train, train.survived)


@pytest.fixture(scope="module")
def iris_model():
    iris = datasets.load("iris")
    train, _ = train_test_split(iris, test_size=0.2, random_state=42, stratify=iris.variety)
    return models.train("iris", train, train.variety)


def passenger(**given) -> pd.DataFrame:
    "A passenger as the predictor builds one: a 3rd-class man of 30 travelling alone, changed by `given`."
    return datasets.app_row("titanic", **(dict(pclass=3, sex="male", age=30.0, sibsp=0, parch=0, fare=8.0,
                                               embarked="S") | given))


def log_odds(model, row) -> float:
    survived = float(models.predict_proba("titanic", model, row)["Survived"].iloc[0])
    return math.log(survived / (1 - survived))


PASSENGERS = [dict(), dict(pclass=1, sex="female", age=30.0, fare=80.0), dict(age=4.0, sibsp=1, parch=1, fare=20.0),
              dict(pclass=2, sex="female", age=62.0, embarked="C", title="Rare"), dict(sex="female", age=19.0, title="Miss")]


@pytest.mark.parametrize("given", PASSENGERS)
def test_the_pushes_and_the_bias_add_up_to_the_models_log_odds(titanic_model, given):
    why = explain.titanic_contributions(titanic_model, passenger(**given))
    assert why.log_odds == pytest.approx(log_odds(titanic_model, passenger(**given)), abs=1e-4)
    assert set(why.pushes.index) == set(explain.MODEL_FIELDS) | set(explain.NOT_USED)


def test_being_a_woman_in_first_class_pushes_towards_survival(titanic_model):
    lady = explain.titanic_contributions(titanic_model, passenger(pclass=1, sex="female", age=30.0, fare=80.0))
    man = explain.titanic_contributions(titanic_model, passenger())
    assert lady.pushes["sex"] > 0 and lady.pushes["pclass"] > 0
    assert man.pushes["sex"] < 0 and man.pushes["pclass"] < 0
    assert lady.pushes["embarked"] == 0.0  # the port is shown, and the model does not use it


def test_a_title_the_visitor_gives_is_kept_and_changes_the_prediction(titanic_model):
    boy = dict(pclass=2, age=10.0, sibsp=1, parch=2, fare=30.0)
    guessed = explain.titanic_contributions(titanic_model, passenger(**boy))
    given = explain.titanic_contributions(titanic_model, passenger(**boy, title="Mr"))
    assert (guessed.seen["title"], given.seen["title"]) == ("Master", "Mr")
    assert "title" in guessed.guessed and "title" not in given.guessed
    assert given.survival < guessed.survival - 0.1


def test_the_neighbours_of_a_setosa_like_flower_are_setosa(iris_model):
    flower = datasets.app_row("iris", sepal_length=5.0, sepal_width=3.4, petal_length=1.5, petal_width=0.2)
    nearest = explain.nearest_flowers(iris_model, flower)
    assert len(nearest) == iris_model[-1].n_neighbors
    assert set(nearest.variety) == {"Setosa"}
    assert nearest.distance.is_monotonic_increasing


def test_the_neighbours_are_the_flowers_that_voted(iris_model):
    flower = datasets.app_row("iris", sepal_length=6.0, sepal_width=2.9, petal_length=4.8, petal_width=1.6)
    nearest = explain.nearest_flowers(iris_model, flower)
    votes = nearest.variety.value_counts()
    assert models.predict("iris", iris_model, flower)[0] == votes.index[0]
    share = models.predict_proba("iris", iris_model, flower).iloc[0]
    assert share[votes.index[0]] == pytest.approx(votes.iloc[0] / len(nearest))


def test_a_reloaded_model_explains_the_same(titanic_model, iris_model, tmp_path):
    row = passenger(pclass=1, sex="female", age=30.0, fare=80.0)
    reloaded = models.load_model(models.save_model(titanic_model, tmp_path / "titanic"))
    assert explain.titanic_contributions(reloaded, row).pushes.to_dict() == pytest.approx(
        explain.titanic_contributions(titanic_model, row).pushes.to_dict())
    flower = datasets.app_row("iris", sepal_length=5.0, sepal_width=3.4, petal_length=1.5, petal_width=0.2)
    iris_reloaded = models.load_model(models.save_model(iris_model, tmp_path / "iris"))
    pd.testing.assert_frame_equal(explain.nearest_flowers(iris_reloaded, flower), explain.nearest_flowers(iris_model, flower))


def test_the_pictures_are_drawn_from_the_input(titanic_model, iris_model):
    lady = explain.contributions_png(explain.titanic_contributions(titanic_model, passenger(sex="female")))
    man = explain.contributions_png(explain.titanic_contributions(titanic_model, passenger()))
    setosa = datasets.app_row("iris", sepal_length=5.0, sepal_width=3.4, petal_length=1.5, petal_width=0.2)
    virginica = datasets.app_row("iris", sepal_length=7.0, sepal_width=3.0, petal_length=6.0, petal_width=2.2)
    planes = [explain.neighbours_png(iris_model, flower, name) for flower, name in ((setosa, "Setosa"), (virginica, "Virginica"))]
    for png in (lady, man, *planes):
        assert pictures.png_size(png)[0] >= 400
    assert lady != man and planes[0] != planes[1]
