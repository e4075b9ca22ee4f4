"""Code written against the local backend runs on Hopsworks: every local method and parameter exists in the SDK."""

from __future__ import annotations

import inspect

import hsfs.constructor.query
import hsfs.feature_group
import hsfs.feature_store
import hsfs.feature_view
import hsml.model
import hsml.model_registry
import hsml.model_schema
import hsml.python.signature
import hsml.schema
import pytest
from hopsworks_common.core.dataset_api import DatasetApi
from hopsworks_common.project import Project

from serverless_ml.store.contract import EXTENSIONS
from serverless_ml.store.local.dataset_api import LocalDatasetApi
from serverless_ml.store.local.feature_group import LocalFeatureGroup, LocalQuery
from serverless_ml.store.local.feature_store import LocalFeatureStore
from serverless_ml.store.local.feature_view import LocalFeatureView
from serverless_ml.store.local.project import LocalProject
from serverless_ml.store.local.registry import LocalModel, LocalModelRegistry, _Flavour
from serverless_ml.store.model_schema import ModelSchema, Schema

PAIRS = [
    (LocalProject, Project),
    (LocalFeatureStore, hsfs.feature_store.FeatureStore),
    (LocalFeatureGroup, hsfs.feature_group.FeatureGroup),
    (LocalQuery, hsfs.constructor.query.Query),
    (LocalFeatureView, hsfs.feature_view.FeatureView),
    (LocalModelRegistry, hsml.model_registry.ModelRegistry),
    (LocalModel, hsml.model.Model),
    (LocalDatasetApi, DatasetApi),
    (Schema, hsml.schema.Schema),
    (ModelSchema, hsml.model_schema.ModelSchema),
]


def public_methods(cls) -> list[str]:
    "The public methods of `cls`, inherited ones included, but the extensions the store contract declares ours."
    return [name for name, member in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and name not in EXTENSIONS]


def check_parameters(local, sdk, where: str) -> None:
    "Every local parameter exists on the SDK function, positional ones at the same position, with the same default."
    ours, theirs = inspect.signature(local).parameters, inspect.signature(sdk).parameters
    sdk_positions = list(theirs)
    for position, (name, parameter) in enumerate(ours.items()):
        assert name in theirs, f"{where}: parameter {name!r} does not exist in the Hopsworks SDK"
        if parameter.kind is parameter.POSITIONAL_OR_KEYWORD:
            assert sdk_positions.index(name) == position, f"{where}: {name!r} is not at the SDK's position"
        if parameter.default is not parameter.empty and theirs[name].default is not parameter.empty:
            assert parameter.default == theirs[name].default, f"{where}: default of {name!r} differs from the SDK"


@pytest.mark.parametrize("local, sdk", PAIRS, ids=[local.__name__ for local, _ in PAIRS])
def test_every_local_method_exists_in_the_sdk_with_its_parameters(local, sdk):
    methods = public_methods(local)
    assert methods, f"{local.__name__} has no public methods to check"
    for name in methods:
        assert hasattr(sdk, name), f"{local.__name__}.{name} does not exist on {sdk.__name__}"
        check_parameters(getattr(local, name), getattr(sdk, name), f"{local.__name__}.{name}")


def test_create_model_matches_the_sdk():
    check_parameters(_Flavour("PYTHON").create_model, hsml.python.signature.create_model, "create_model")


@pytest.mark.parametrize("local, sdk", PAIRS, ids=[local.__name__ for local, _ in PAIRS])
def test_attributes_user_code_reads_exist_in_the_sdk(local, sdk):
    properties = [name for name, member in vars(local).items()
                  if not name.startswith("_") and isinstance(member, property)]
    for name in properties:
        assert hasattr(sdk, name), f"{local.__name__}.{name} is not an attribute of {sdk.__name__}"


def test_the_checker_catches_an_invented_parameter():
    def train_test_split(self, test_size=None, seed=42):
        "A local method with a parameter Hopsworks lacks."
    with pytest.raises(AssertionError, match="'seed'"):
        check_parameters(train_test_split, hsfs.feature_view.FeatureView.train_test_split, "demo")
