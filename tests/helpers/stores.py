"""Filled stores for the tests: the stage functions the pipeline notebooks call, run in this process.

The session fixtures in conftest.py build each store once (per pytest worker); a test or module
that writes gets its own copy (`copy_store`), so no test sees another's rows."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from serverless_ml import datasets, models, monitoring, params, pipelines
from serverless_ml.store import login

STORE_VARIABLES = ("SML_HOME", "SML_OUTPUTS", "SML_BACKEND")


def train(project, dataset: str) -> None:
    "The feature and training stages, as notebooks 1 and 2 run them."
    fs, mr = project.get_feature_store(), project.get_model_registry()
    pipelines.upsert(pipelines.feature_group(fs, dataset), datasets.load(dataset))
    view = pipelines.feature_view(fs, dataset)
    X_train, X_test, y_train, y_test = pipelines.training_data(view, dataset)
    model = models.train(dataset, X_train, y_train)
    metrics = models.evaluate(dataset, model, X_train, y_train, X_test, y_test)
    confusion = models.confusion(dataset, y_test, models.predict(dataset, model, X_test))
    pipelines.register_model(mr, dataset, model, metrics, confusion, X_train, y_train, view)


def daily_and_inference(project, dataset: str, n_days: int, seed: int) -> pd.DataFrame:
    "The daily and batch-inference stages, as notebooks 3 and 4 run them; returns the new predictions."
    times = params.check_days(n_days, None)  # one row a day, the last one now
    monitoring.add_daily_rows(project, dataset, pipelines.daily_rows(dataset, 1, times, seed))
    return monitoring.predict_new_rows(project, dataset).predictions


def store_env(root: Path) -> dict:
    "The environment (os.environ plus the store variables) of a local store under `root`."
    return {**os.environ, "SML_HOME": str(root / "store"), "SML_OUTPUTS": str(root / "outputs"), "SML_BACKEND": "local"}


def in_store(env: dict, stage, *args):
    "Run a stage helper in this process against the store of `env`, leaving os.environ as it was."
    with pytest.MonkeyPatch.context() as patch:
        for name in STORE_VARIABLES:
            patch.setenv(name, env[name])
        return stage(login("local"), *args)


def build_trained(root: Path) -> dict:
    "A store under `root` with both datasets' history and a registered model each; its environment."
    env = store_env(root)
    for dataset in datasets.DATASETS:
        in_store(env, train, dataset)
    return env


def add_three_days(env: dict) -> dict:
    "Add 3 days of one new row and its prediction to each dataset of the store of `env`; returns `env`."
    for dataset in datasets.DATASETS:
        in_store(env, daily_and_inference, dataset, 3, 7)
    return env


def copy_store(env: dict, root: Path) -> dict:
    "A copy of the store (and outputs) of `env` under `root`; the copy's environment."
    copy = store_env(root)
    for name in ("SML_HOME", "SML_OUTPUTS"):
        if Path(env[name]).exists():
            shutil.copytree(env[name], copy[name])
    return copy
