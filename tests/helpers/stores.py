"""Stores for the tests and the benchmarks: pointing a process at a local store, and filling one with the stage
functions the pipeline notebooks call, in this process.

The session fixtures in conftest.py build each store once (per pytest worker); a test or module that writes gets
its own copy (`copy_store`), so no test sees another's rows. The benchmarks (bench/) import the same functions."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from serverless_ml import params
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.features.datasets import load
from serverless_ml.features.group import store_history
from serverless_ml.features.spec import DATASETS
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.store.login import login
from serverless_ml.training import models
from serverless_ml.training.registry import Trained, register_model, train_and_register
from serverless_ml.training.split import feature_view, training_data

STORE_VARIABLES = ("SML_HOME", "SML_OUTPUTS", "SML_BACKEND")


def store_env(root: Path) -> dict:
    "The environment (os.environ plus the store variables) of the local store and outputs under `root`."
    return {**os.environ, "SML_HOME": str(Path(root) / "store"), "SML_OUTPUTS": str(Path(root) / "outputs"),
            "SML_BACKEND": "local"}


@contextmanager
def using_store(where: Path | dict):
    "This process pointed at the local store under `where` (a folder, or a `store_env`) for the block; its env."
    env = where if isinstance(where, dict) else store_env(where)
    with pytest.MonkeyPatch.context() as patch:
        for name in STORE_VARIABLES:
            patch.setenv(name, env[name])
        yield env


def train(project, dataset: str) -> Trained:
    "The feature and training stages, as notebooks 1 and 2 run them: the history stored, a model registered."
    store_history(project.get_feature_store(), dataset, load(dataset))
    return train_and_register(project, dataset)


def register_with_metrics(project, dataset: str, metrics: dict):
    "A new version of `<dataset>_model`, trained as stage 2 trains it, registered with the given `metrics`."
    fs, mr = project.get_feature_store(), project.get_model_registry()
    view = feature_view(fs, dataset)
    X_train, X_test, y_train, y_test = training_data(view, dataset)
    model = models.train(dataset, X_train, y_train)
    confusion = models.confusion(dataset, y_test, models.predict(dataset, model, X_test))
    return register_model(mr, dataset, model, metrics, confusion, X_train, y_train, view)


def daily_and_inference(project, dataset: str, n_days: int, seed: int) -> pd.DataFrame:
    "The daily and batch-inference stages, as notebooks 3 and 4 run them; returns the new predictions."
    times = params.check_days(n_days, None)  # one row a day, the last one now
    add_daily_rows(project, dataset, daily_rows(dataset, 1, times, seed))
    return predict_new_rows(project, dataset).predictions


def in_store(env: dict, stage, *args):
    "Run a stage helper in this process against the store of `env`, leaving os.environ as it was."
    with using_store(env):
        return stage(login("local"), *args)


def build_trained(root: Path) -> dict:
    "A store under `root` with both datasets' history and a registered model each; its environment."
    env = store_env(root)
    for dataset in DATASETS:
        in_store(env, train, dataset)
    return env


def add_three_days(env: dict) -> dict:
    "Add 3 days of one new row and its prediction to each dataset of the store of `env`; returns `env`."
    for dataset in DATASETS:
        in_store(env, daily_and_inference, dataset, 3, 7)
    return env


def copy_store(env: dict, root: Path) -> dict:
    "A copy of the store (and outputs) of `env` under `root`; the copy's environment."
    copy = store_env(root)
    for name in ("SML_HOME", "SML_OUTPUTS"):
        if Path(env[name]).exists():
            shutil.copytree(env[name], copy[name])
    return copy
