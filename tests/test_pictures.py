"""Pictures: valid PNGs of sensible size, drawn from their inputs (different inputs, different pictures)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from serverless_ml import pictures
from serverless_ml.inference.state import accuracy_per_day, count_predictions
from serverless_ml.training import models


def pixels(data: bytes) -> np.ndarray:
    "The RGB pixels of PNG `data` (fails on anything that is not a PNG)."
    assert data.startswith(pictures.PNG_SIGNATURE)
    return imread(io.BytesIO(data), format="png")[..., :3]


def sensible(data: bytes) -> np.ndarray:
    image = pixels(data)
    height, width = image.shape[:2]
    assert 200 <= width <= 2000 and 100 <= height <= 2000, (width, height)
    assert image.std() > 0.02  # not a blank canvas
    return image


def share(image: np.ndarray, red: float, green: float, blue: float, tolerance: float = 0.12) -> float:
    "The share of pixels near the colour (red, green, blue), each 0..1."
    return float((np.abs(image - np.array([red, green, blue])).max(axis=-1) < tolerance).mean())


def hex_rgb(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))


@pytest.fixture
def predictions():
    now = pd.Timestamp("2026-11-26T12:00Z")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"id": rng.integers(10**9, 2**40, 60),
                          "event_time": [now - pd.Timedelta(days=int(d)) for d in rng.integers(0, 10, 60)],
                          "prediction": rng.integers(0, 2, 60), "model_version": 1, "prediction_time": now})
    return frame.assign(outcome=np.where(rng.random(60) < 0.75, frame.prediction, 1 - frame.prediction))


def test_flower_size_follows_the_measurements():
    small = sensible(pictures.iris_flower_png(4.5, 2.3, 1.3, 0.3, "Setosa"))
    large = sensible(pictures.iris_flower_png(7.7, 3.8, 6.7, 2.2, "Setosa"))
    background = hex_rgb("#fbfaf6")
    assert share(large, *background, 0.02) < share(small, *background, 0.02) - 0.1


def test_flower_is_coloured_by_variety():
    for variety, (sepal, petal) in pictures.IRIS_COLOURS.items():
        image = sensible(pictures.iris_flower_png(6.0, 3.0, 4.5, 1.5, variety))
        assert share(image, *hex_rgb(sepal), 0.03) > 0.03, variety
        assert share(image, *hex_rgb(petal), 0.03) > 0.01, variety
        others = [v for v in pictures.IRIS_COLOURS if v != variety]
        assert all(share(image, *hex_rgb(pictures.IRIS_COLOURS[o][0]), 0.03) < 0.005 for o in others), variety


def test_passenger_card_shows_the_outcome():
    lived = sensible(pictures.passenger_card_png(1, "female", 29.0, 1))
    died = sensible(pictures.passenger_card_png(1, "female", 29.0, 0))
    unknown = sensible(pictures.passenger_card_png(1, "female", 29.0, None))
    green, red = hex_rgb(pictures.OUTCOME_STAMPS[1][1]), hex_rgb(pictures.OUTCOME_STAMPS[0][1])
    assert share(lived, *green, 0.05) > 0.005 and share(lived, *red, 0.05) < 0.001
    assert share(died, *red, 0.05) > 0.005 and share(died, *green, 0.05) < 0.001
    assert share(unknown, *green, 0.05) < 0.001 and share(unknown, *red, 0.05) < 0.001


def test_passenger_card_differs_by_class_sex_and_age():
    base = pictures.passenger_card_png(2, "male", 30.0, 0)
    for other in (pictures.passenger_card_png(3, "male", 30.0, 0), pictures.passenger_card_png(2, "female", 30.0, 0),
                  pictures.passenger_card_png(2, "male", 6.0, 0)):
        assert not np.array_equal(pixels(other), pixels(base))


def test_prediction_pictures_for_both_datasets():
    flower = {"sepal_length": 6.3, "sepal_width": 3.3, "petal_length": 6.0, "petal_width": 2.5}
    right = sensible(pictures.prediction_png("iris", flower, "Virginica", "Virginica"))
    wrong = sensible(pictures.prediction_png("iris", flower, "Versicolor", "Virginica"))
    assert not np.array_equal(right, wrong)
    passenger = {"pclass": 3, "sex": "male", "age": 40.0, "fare": 7.9, "embarked": "S"}
    assert not np.array_equal(sensible(pictures.prediction_png("titanic", passenger, 0)),
                              sensible(pictures.prediction_png("titanic", passenger, 0, 1)))
    with pytest.raises(ValueError, match="predicted='Rose'"):
        pictures.prediction_png("iris", flower, "Rose")


def test_confusion_matrix_heatmap():
    matrix = models.confusion("titanic", [0, 0, 0, 1, 1], [0, 0, 1, 1, 1])
    image = sensible(pictures.confusion_matrix_png(matrix))
    other = sensible(pictures.confusion_matrix_png(models.confusion("titanic", [0, 0, 0, 1, 1], [1, 1, 1, 0, 0])))
    assert not np.array_equal(image, other)
    assert share(image, 0.03, 0.19, 0.42, 0.1) > 0.02  # the darkest Blues cells are there


def test_recent_predictions_table_grows_with_rows_and_tints_mistakes(predictions):
    few, many = sensible(pictures.recent_predictions_png(predictions.head(3))), sensible(pictures.recent_predictions_png(predictions))
    assert many.shape[0] > few.shape[0]
    wrong = predictions.assign(outcome=1 - predictions.prediction)
    tinted = sensible(pictures.recent_predictions_png(wrong))
    assert share(tinted, *hex_rgb(pictures.WRONG_TINT), 0.02) > share(many, *hex_rgb(pictures.WRONG_TINT), 0.02)
    sensible(pictures.recent_predictions_png(predictions.head(0)))


def per_day(predictions: pd.DataFrame) -> pd.DataFrame:
    "The accuracy per day of `predictions`, as the monitoring view keeps it (from the running counts)."
    return accuracy_per_day(count_predictions(predictions))


def test_accuracy_over_time(predictions):
    chart = sensible(pictures.accuracy_over_time_png(per_day(predictions)))
    perfect = sensible(pictures.accuracy_over_time_png(per_day(predictions.assign(outcome=predictions.prediction))))
    assert not np.array_equal(chart, perfect)
    daily = per_day(predictions)
    assert daily.accuracy.between(0, 1).all() and daily.predictions.sum() == len(predictions)
    unknown = predictions.assign(outcome=np.nan)
    assert per_day(unknown).empty
    sensible(pictures.accuracy_over_time_png(per_day(unknown)))  # says there is nothing to plot yet


def test_the_accuracy_per_day_is_the_share_right_each_day_and_running(predictions):
    right = predictions.prediction.to_numpy() == predictions.outcome.to_numpy()
    day = pd.to_datetime(predictions.event_time, utc=True).dt.floor("D")
    expected = pd.Series(right, index=day).groupby(level=0).mean()
    daily = per_day(predictions)
    assert daily.accuracy.tolist() == pytest.approx(expected.tolist())
    running = pd.Series(right, index=day).sort_index().groupby(level=0).agg(["sum", "size"]).cumsum()
    assert daily.running_accuracy.tolist() == pytest.approx((running["sum"] / running["size"]).tolist())
