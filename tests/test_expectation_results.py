"""Data quality per expectation (`validation.expectation_results`): what the dashboard's failed-expectations table and
the quality alerts count. Fast: no store, no model."""

from __future__ import annotations

import pandas as pd
import pytest

from serverless_ml.features import datasets, spec, validation
from serverless_ml.store.expectations import ValidationError, enforce, expectation_suite, validate


@pytest.fixture
def rows() -> pd.DataFrame:
    "Four iris rows: two petals too long, one sepal width missing, one variety that is not an iris."
    rows = datasets.load("iris").head(4).copy()
    rows.loc[[0, 2], "petal_length"] = 99.0
    rows.loc[1, "sepal_width"] = None
    rows.loc[3, "variety"] = "Rose"
    return rows


def failures(table: pd.DataFrame) -> dict[str, tuple[int, int]]:
    return {row.expectation: (row.passed, row.failed) for row in table.itertuples() if row.failed}


def test_clean_rows_pass_every_expectation_of_the_feature_group():
    table = validation.expectation_results("iris", datasets.load("iris").head(4))
    assert len(table) == 28 and (table.passed == 4).all() and (table.failed == 0).all()
    assert table.expectation.tolist()[:5] == ["*: column_in_schema", "flower_id: column_in_dataframe", "flower_id: dtype",
                                              "flower_id: not_nullable", "flower_id: field_uniqueness"]
    assert "petal_length: in_range(0.5, 8.0)" in table.expectation.tolist()
    assert list(table.columns) == ["expectation", "column", "check", "passed", "failed"]


def test_each_failed_expectation_counts_its_own_failing_rows(rows):
    assert failures(validation.expectation_results("iris", rows)) == {
        "sepal_width: not_nullable": (3, 1), "petal_length: in_range(0.5, 8.0)": (2, 2),
        "variety: isin(['Setosa', 'Versicolor', 'Virginica'])": (3, 1)}


@pytest.mark.parametrize("change, expectation", [
    (lambda rows: rows.drop(columns=["petal_width"]), "petal_width: column_in_dataframe"),
    (lambda rows: rows.assign(flower_id=1), "flower_id: field_uniqueness"),
    (lambda rows: rows.assign(extra=1), "*: column_in_schema"),
], ids=["a missing column", "repeated ids", "an unknown column"])
def test_a_table_wide_failure_fails_every_row_under_its_own_name(rows, change, expectation):
    found = failures(validation.expectation_results("iris", change(rows)))
    assert found.pop(expectation) == (0, 4)
    assert set(found) == {"sepal_width: not_nullable", "petal_length: in_range(0.5, 8.0)",
                          "variety: isin(['Setosa', 'Versicolor', 'Virginica'])"}


def test_a_column_of_the_wrong_type_fails_its_dtype_expectation():
    clean = datasets.load("iris").head(4)
    found = failures(validation.expectation_results("iris", clean.assign(sepal_length=clean.sepal_length.astype(str))))
    assert found["sepal_length: dtype"] == (0, 4)


def test_a_suite_is_strict_unless_told_and_a_bad_policy_or_schema_is_named():
    schema = spec.schema("iris")
    assert expectation_suite(schema).validation_ingestion_policy == "STRICT"
    assert expectation_suite(schema, policy=" always ").validation_ingestion_policy == "ALWAYS"
    with pytest.raises(ValueError, match=r"^Unknown validation policy 'LAX': use one of STRICT, ALWAYS\.$"):
        expectation_suite(schema, policy="LAX")
    with pytest.raises(TypeError, match=r"^expectation_suite needs a pandera DataFrameSchema, got dict\.$"):
        expectation_suite({"petal_length": float})


def test_a_strict_suite_rejects_the_rows_and_says_how_to_insert_anyway(rows):
    with pytest.raises(ValidationError) as refused:
        enforce(rows, expectation_suite(spec.schema("iris")), what="the iris rows")
    assert refused.value.report.ingestion_result == "REJECTED"
    message = str(refused.value)
    assert message.startswith("The STRICT expectations refused the iris rows; nothing was written. 4 of 4 rows "
                              "failed (index 0, 1, 2, 3). Failed checks by column: ")
    assert message.endswith(" Fix these rows, or attach the suite with policy='ALWAYS' to insert and report.")
    assert "petal_length: in_range(0.5, 8.0)" in message and "sepal_width: not_nullable" in message


def test_a_passing_report_has_no_failing_rows_or_columns():
    report = validate(datasets.load("iris").head(4), expectation_suite(spec.schema("iris")))
    assert (report.success, report.failing_rows, report.failing_columns) == (True, [], [])
    assert list(report.failure_cases.columns) == ["column", "check", "failure_case", "index"]
    assert report.summary() == "All 4 rows passed."
