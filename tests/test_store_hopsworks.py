"""The hopsworks backend without a network: login from env vars, no prompt, expectations checked before the SDK insert."""

from __future__ import annotations

import subprocess
import sys

import hopsworks
import pandas as pd
import pandera.pandas as pa
import pytest

from serverless_ml.store.expectations import ValidationError, expectation_suite
from serverless_ml.store.login import login

VARIABLES = ("HOPSWORKS_API_KEY", "HOPSWORKS_PROJECT", "HOPSWORKS_HOST", "HOPSWORKS_PORT")


@pytest.fixture
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hopsworks, "login", lambda **kwargs: pytest.fail("hopsworks.login must not be called"))
    return monkeypatch


@pytest.mark.parametrize("present, missing", [({}, "HOPSWORKS_API_KEY and HOPSWORKS_PROJECT"),
                                              ({"HOPSWORKS_API_KEY": "k"}, "HOPSWORKS_PROJECT"),
                                              ({"HOPSWORKS_PROJECT": "p"}, "HOPSWORKS_API_KEY")])
def test_missing_variables_fail_at_once_naming_them(clean_env, present, missing):
    for name, value in present.items():
        clean_env.setenv(name, value)
    with pytest.raises(RuntimeError, match=missing):
        login("hopsworks")


def test_no_prompt_even_without_a_terminal(tmp_path):
    code = "from serverless_ml.store.login import login\ntry:\n    login('hopsworks')\nexcept RuntimeError as e:\n    print(e)"
    env = {"PATH": "/usr/bin:/bin", "SML_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, env=env)
    assert "HOPSWORKS_API_KEY" in done.stdout


class FakeGroup:
    name, version = "iris", 1

    def __init__(self):
        self.inserted = []

    def insert(self, features, overwrite=False, validation_options=None):
        self.inserted.append(features)
        return "job", None

    def select_all(self):
        return "query"


class FakeStore:
    def __init__(self):
        self.group, self.calls = FakeGroup(), []

    def get_or_create_feature_group(self, name, version, **kwargs):
        self.calls.append(kwargs)
        return self.group


class FakeProject:
    name = "demo"

    def __init__(self):
        self.store = FakeStore()

    def get_feature_store(self, name=None):
        return self.store

    def get_model_registry(self):
        return "registry"


def test_login_passes_env_values_and_wraps_the_sdk(clean_env):
    seen = {}
    project = FakeProject()
    clean_env.setattr(hopsworks, "login", lambda **kwargs: seen.update(kwargs) or project)
    clean_env.setenv("HOPSWORKS_API_KEY", "secret")
    clean_env.setenv("HOPSWORKS_PROJECT", "demo")
    clean_env.setenv("HOPSWORKS_HOST", "my.cluster")
    clean_env.setenv("HOPSWORKS_PORT", "8181")
    wrapped = login("hopsworks")
    assert seen == {"api_key_value": "secret", "project": "demo", "host": "my.cluster", "port": 8181}
    assert wrapped.name == "demo" and wrapped.get_model_registry() == "registry"

    rules = expectation_suite(pa.DataFrameSchema({"petal_length": pa.Column(float, pa.Check.ge(0))}))
    fg = wrapped.get_feature_store().get_or_create_feature_group("iris", 1, primary_key=["id"],
                                                                 expectation_suite=rules)
    assert project.store.calls == [{"primary_key": ["id"]}]  # the pandera suite never reaches the SDK
    with pytest.raises(ValidationError, match="index 1"):
        fg.insert(pd.DataFrame({"Petal Length": [1.0, -2.0]}))
    assert project.store.group.inserted == []
    job, report = fg.insert(pd.DataFrame({"petal_length": [1.0]}))
    assert job == "job" and report.success and len(project.store.group.inserted) == 1
    assert fg.select_all() == "query"
