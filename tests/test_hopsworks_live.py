"""The store contract against a real Hopsworks project; skipped unless HOPSWORKS_API_KEY is set.

Needs HOPSWORKS_API_KEY and HOPSWORKS_PROJECT (and HOPSWORKS_HOST for a cluster other than the
hosted service). Creates feature groups, a view and a model named `sml_live_<stamp>` and deletes them.
"""

from __future__ import annotations

import os
import time

import pandas as pd
import pandera.pandas as pa
import pytest
from helpers.runs import sml_run

from serverless_ml.store.expectations import ValidationError, expectation_suite
from serverless_ml.store.groups import WRITE_PATH
from serverless_ml.store.login import login

pytestmark = [pytest.mark.live,
              pytest.mark.skipif(not os.environ.get("HOPSWORKS_API_KEY"), reason="HOPSWORKS_API_KEY is not set")]

NAME = f"sml_live_{int(time.time())}"
T0 = pd.Timestamp("2020-01-01", tz="UTC")


def flowers(n: int = 30, start: int = 1) -> pd.DataFrame:
    varieties = ["Setosa", "Versicolor", "Virginica"]
    return pd.DataFrame({"flower_id": range(start, start + n), "petal_length": [1.0 + i % 50 / 10 for i in range(n)],
                         "variety": [varieties[i % 3] for i in range(n)], "event_time": T0})


@pytest.fixture(scope="module")
def project():
    return login("hopsworks")


@pytest.fixture(scope="module")
def group(project):
    rules = pa.DataFrameSchema({"petal_length": pa.Column(float, pa.Check.in_range(0, 10))})
    fs = project.get_feature_store()
    fg = fs.get_or_create_feature_group(NAME, version=1, description="serverless-ml live test",
                                        primary_key=["flower_id"], event_time="event_time",
                                        expectation_suite=expectation_suite(rules, "STRICT"), **WRITE_PATH)
    fg.insert(flowers(), write_options={"wait_for_job": True})
    yield fg
    fs.get_feature_group(NAME, 1).delete()


def test_absent_objects_are_none(project):
    fs = project.get_feature_store()
    assert fs.get_feature_group(NAME + "_absent", 1) is None
    assert fs.get_feature_view(NAME + "_absent", 1) is None
    assert project.get_model_registry().get_model(NAME + "_absent", 1) is None


def test_insert_upserts_and_reads_back(project, group):
    group.insert(pd.concat([flowers(2), flowers(2)]), write_options={"wait_for_job": True})
    back = project.get_feature_store().get_feature_group(NAME, 1).read()
    assert len(back) == 30 and set(back.columns) == {"flower_id", "petal_length", "variety", "event_time"}


def test_strict_expectations_refuse_before_the_sdk(group):
    bad = flowers(2).assign(petal_length=[1.0, 42.0])
    with pytest.raises(ValidationError, match="index 1"):
        group.insert(bad)


def test_feature_view_split_and_batch(project, group):
    fs = project.get_feature_store()
    fv = fs.get_or_create_feature_view(NAME, group.select(["petal_length", "variety"]), 1, labels=["variety"])
    X_train, X_test, y_train, y_test = fv.train_test_split(test_size=0.2)
    assert list(X_train.columns) == ["petal_length"] and list(y_train.columns) == ["variety"]
    assert len(X_train) + len(X_test) == 30
    assert "variety" not in fv.get_batch_data().columns
    fv.delete()


def test_model_registry_round_trip(project, tmp_path):
    (tmp_path / "model.json").write_text("{}")
    mr = project.get_model_registry()
    model = mr.python.create_model(NAME, metrics={"accuracy": 0.9}, description="live test")
    model.save(str(tmp_path))
    best = mr.get_best_model(NAME, "accuracy", "max")
    assert best.version == model.version and best.training_metrics["accuracy"] == 0.9
    assert "model.json" in os.listdir(best.download())
    best.delete()


def test_dataset_api_round_trip(project, tmp_path):
    api = project.get_dataset_api()
    picture = tmp_path / f"{NAME}.png"
    picture.write_bytes(b"png")
    remote = api.upload(str(picture), "Resources", overwrite=True)
    assert api.exists(remote)
    assert open(api.download(remote, str(tmp_path / "back.png")), "rb").read() == b"png"
    api.remove(remote)



def test_check_then_the_four_iris_stages_in_a_namespace_then_clean(tmp_path):
    env = {**os.environ, "SML_BACKEND": "hopsworks", "SML_NAMESPACE": f"live{int(time.time())}",
           "SML_OUTPUTS": str(tmp_path)}
    check = sml_run("check", env=env, timeout=900)
    assert check.returncode == 0, check.stdout + check.stderr
    try:
        run = sml_run("run", "--days", "1", "--datasets", "iris", env=env)
        assert run.returncode == 0, run.stdout + run.stderr
    finally:
        cleaned = sml_run("clean", "--yes", env=env, timeout=900)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert sml_run("clean", env=env, timeout=600).stdout.startswith("0 object(s)")
