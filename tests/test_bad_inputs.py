"""Every bad stage input fails in the stage's checking cell, naming the value (or the file and column)
and what to give instead, before anything is written.

A few cases run the real stage notebook with papermill, as the runner does; the others call what
the checking cell calls (`check_params`, then for the feature stage `datasets.load`), which is the
same code without a kernel start each."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from helpers.stores import using_store
from papermill.exceptions import PapermillExecutionError

from serverless_ml import config
from serverless_ml.features import datasets
from serverless_ml.features.group import feature_group, upsert
from serverless_ml.features.spec import DATASETS
from serverless_ml.params import check_params
from serverless_ml.runs import runner
from serverless_ml.store.login import login
from serverless_ml.training.split import feature_view

_runs = itertools.count()
KAGGLE_HEADER = "PassengerId,Survived,Pclass,Name,Sex,Age,SibSp,Parch,Ticket,Fare,Cabin,Embarked\n"
GOOD_ROW = '{id},1,1,"Allen, Miss. Elisabeth Walton",female,29,0,0,24160,211.3375,B5,S\n'
SOURCES = {  # file name -> bytes of a bad Titanic source
    "types.csv": (KAGGLE_HEADER + GOOD_ROW.format(id=1) + GOOD_ROW.format(id=2).replace(",1,1,", ",1,first,")).encode(),
    "empty_id.csv": (KAGGLE_HEADER + GOOD_ROW.format(id=1) + GOOD_ROW.format(id="")).encode(),
    "huge_id.csv": (KAGGLE_HEADER + GOOD_ROW.format(id=10**20)).encode(),
    "negative_id.csv": (KAGGLE_HEADER + GOOD_ROW.format(id=1) + GOOD_ROW.format(id=-7)).encode(),
    "empty.csv": b"",
    "latin1.csv": (KAGGLE_HEADER + GOOD_ROW.format(id=1).replace("Allen", "Andr\u00e9")).encode("latin-1"),
    "header_only.csv": KAGGLE_HEADER.encode(),
}

# (stage, parameters, what the message must say, run the notebook?); "{folder}" is the sources' folder
CASES = [
    ("daily", {"dataset": "iris", "date": "9999-12-31"}, "date=9999-12-31 is in the future: give a day up to today", True),
    ("daily", {"dataset": "iris", "n_rows": 10**12}, "n_rows=1000000000000 is too large: give a whole number from 1 to 1,000,000", False),
    ("daily", {"dataset": "titanic", "n_rows": 50_000, "n_days": 30}, "would add 1,500,000 rows, more than MAX_NEW_ROWS", False),
    ("daily", {"dataset": "iris", "n_days": 10**9}, "n_days=1000000000 is too large", False),
    ("training", {"dataset": "titanic", "seed": 99999999999}, "seed=99999999999 is too large: give a whole number from -1 to 4,294,967,295", True),
    ("training", {"dataset": "titanic", "test_size": 0.01}, "test_size=0.01 is out of range: give a share from 0.1 to 0.5", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/types.csv"}, "types.csv', column Pclass: 'first' in row 2 after the header is not a whole number", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/empty_id.csv"}, "empty_id.csv', column PassengerId is blank in row 2 after the header", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/huge_id.csv"}, "huge_id.csv', column PassengerId: 100000000000000000000 in row 1 after the header is not an id: give every passenger a whole number from 1 to 999,999,999", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/negative_id.csv"}, "negative_id.csv', column PassengerId: -7 in row 2 after the header is not an id", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/empty.csv"}, "empty.csv' is empty: give a Kaggle-style train.csv", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/latin1.csv"}, "latin1.csv' is not UTF-8 text: save it as a UTF-8 CSV", False),
    ("feature", {"dataset": "titanic", "source": "{folder}/header_only.csv"}, "header_only.csv' has a header but no passengers", True),
    ("feature", {"dataset": "titanic", "source": "file:///etc/passwd"}, "source='file:///etc/passwd': file:// URLs are not read. Give an http(s) URL, or a local file by its path", True),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A store holding both feature groups and views, and a folder of bad Titanic sources."
    root = tmp_path_factory.mktemp("bad-inputs")
    for name, data in SOURCES.items():
        (root / name).write_bytes(data)
    with using_store(root):
        fs = login("local").get_feature_store()
        for dataset in DATASETS:
            upsert(feature_group(fs, dataset), datasets.load(dataset))
            feature_view(fs, dataset)
        yield root


def snapshot() -> dict:
    "Every file of the store (rows, catalog, training datasets, models, resources) and its digest."
    home = config.store_home()
    return {str(path.relative_to(home)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(home.rglob("*")) if path.is_file() and "locks" not in path.parts}


def checking_cell(stage: str, parameters: dict) -> None:
    "What the stage's checking cell runs, in this process."
    params = check_params(**parameters)
    if stage == "feature":
        datasets.load(params.dataset, params.source)


def failure(stage: str, parameters: dict, notebook: bool) -> tuple[str, str]:
    "`(message, failing cell's code)` of a stage run with `parameters`, through papermill or in process."
    if not notebook:
        with pytest.raises((ValueError, TypeError, FileNotFoundError)) as error:
            checking_cell(stage, parameters)
        return str(error.value), "check_params"
    out = config.run_dir(f"bad{next(_runs):02d}", parameters["dataset"])
    with pytest.raises(PapermillExecutionError) as error:
        runner.execute(runner.Step(stage, parameters), out)
    return error.value.evalue, error.value.source


@pytest.mark.parametrize("stage, parameters, message, notebook", CASES,
                         ids=[f"{stage}-{'-'.join(map(str, p.values()))[-40:]}" for stage, p, _, _ in CASES])
def test_a_bad_input_fails_in_the_checking_cell_naming_it_and_writes_nothing(store, stage, parameters, message,
                                                                             notebook):
    parameters = {name: value.format(folder=store) if isinstance(value, str) else value
                  for name, value in parameters.items()}
    before = snapshot()
    said, cell = failure(stage, parameters, notebook)
    assert message in said, said
    assert "check_params" in cell  # it stopped in the checking cell, before login
    assert snapshot() == before
    assert "feature_store.duckdb" in before  # there was a store to spoil
