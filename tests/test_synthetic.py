"""Synthetic rows: the load schema, real base rates, realistic relations, fresh ids, seedable."""

from __future__ import annotations

import pandas as pd
import pytest

from serverless_ml.features import datasets, synthetic
from serverless_ml.features.spec import DATASETS, SPECS, schema


@pytest.fixture(scope="module")
def passengers():
    return synthetic.generate("titanic", 10_000, seed=11)


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_schema_as_load_and_valid(dataset):
    rows = synthetic.generate(dataset, 300, seed=1)
    assert list(rows.columns) == SPECS[dataset].columns
    assert rows.dtypes.to_dict() == datasets.load(dataset).dtypes.to_dict()
    schema(dataset).validate(rows, lazy=True)


@pytest.mark.parametrize("dataset", DATASETS)
def test_same_seed_same_rows_other_seed_other_rows(dataset):
    first = synthetic.generate(dataset, 200, seed=5, event_time="2026-11-01")
    pd.testing.assert_frame_equal(first, synthetic.generate(dataset, 200, seed=5, event_time="2026-11-01"))
    assert not first.equals(synthetic.generate(dataset, 200, seed=6, event_time="2026-11-01"))


@pytest.mark.parametrize("dataset", DATASETS)
def test_ids_never_collide_with_real_rows_or_other_days(dataset):
    key = SPECS[dataset].primary_key[0]
    real = set(datasets.load(dataset)[key])
    days = [synthetic.generate(dataset, 500, seed=day)[key] for day in range(5)]
    ids = pd.concat(days)
    assert ids.is_unique and ids.min() >= synthetic.ID_LOW
    assert not real & set(ids)


def test_labels_at_real_base_rates(passengers):
    assert abs(passengers.survived.mean() - datasets.load("titanic").survived.mean()) < 0.02
    flowers = synthetic.generate("iris", 6000, seed=3)
    assert (flowers.variety.value_counts(normalize=True) - 1 / 3).abs().max() < 0.02


def test_fare_follows_class_and_age_follows_title(passengers):
    fare = passengers.groupby("pclass").fare_per_person.median()
    assert fare[1] > 2 * fare[2] and fare[2] > fare[3]
    age = passengers.groupby("title").age.median()
    assert age["Master"] < 14 < age["Miss"] < age["Mr"]
    assert passengers[passengers.title == "Master"].age.max() < 15


def test_values_plausible_and_consistent(passengers):
    assert passengers.age.dropna().between(0.1, 80).all()
    assert (passengers.family_size == passengers.sibsp + passengers.parch + 1).all()
    assert set(passengers[passengers.title.isin(["Mr", "Master"])].sex) == {"male"}
    assert set(passengers[passengers.title.isin(["Mrs", "Miss"])].sex) == {"female"}
    assert (passengers.fare - passengers.fare_per_person * passengers.ticket_group_size).abs().max() < 1e-6
    # survival keeps its real dependence on sex: women mostly lived, men mostly died
    assert passengers.groupby("sex").survived.mean().pipe(lambda r: r["female"] > 0.6 > 0.3 > r["male"])


def test_event_time_now_or_given():
    before = pd.Timestamp.now(tz="UTC")
    assert (synthetic.generate("iris", 3).event_time >= before.floor("s")).all()
    given = synthetic.generate("iris", 3, event_time="2026-10-01T06:00")
    assert (given.event_time == pd.Timestamp("2026-10-01T06:00", tz="UTC")).all()


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="n=-5"):
        synthetic.generate("iris", -5)
    with pytest.raises(ValueError, match="'penguins'"):
        synthetic.generate("penguins", 5)


@pytest.mark.parametrize("dataset", DATASETS)
def test_model_accuracy_on_synthetic_rows_within_10_points_of_real(dataset):
    report = synthetic.synthetic_vs_real(dataset, n=10_000)
    print(dataset, report)
    assert report["gap"] < 0.10
    assert report["synthetic_accuracy"] > 0.7
