"""The hopsworks backend driven through the installed SDK's own objects (hsfs FeatureStore, FeatureGroup,
Query and FeatureView, hsml ModelRegistry and Model, the DatasetApi, `hopsworks.login`), with only their
network seams patched, the way the SDK's own unit tests do: the REST client (`client._get_instance` and
its `_send_request`), the REST API classes, the Kafka producer and the materialization job. Everything
between our stage functions and those seams is the SDK's real code."""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path
from unittest import mock

import hopsworks
import hsfs.engine as hsfs_engine
import pandas as pd
import pytest
from hopsworks_apigen.errors import HopsworksDeprecationWarning
from hopsworks_common.client.exceptions import RestAPIError
from hopsworks_common.core.dataset_api import DatasetApi
from hsfs import feature, feature_group, feature_store
from hsfs.core import kafka_engine
from hsfs.engine import python as python_engine
from hsml import model_registry

from serverless_ml.features import group as features_group
from serverless_ml.features.datasets import load
from serverless_ml.features.group import upsert
from serverless_ml.features.spec import spec as dataset_spec
from serverless_ml.inference import drift
from serverless_ml.inference.state import predictions_group
from serverless_ml.names import images_folder
from serverless_ml.store.expectations import ValidationError
from serverless_ml.store.groups import SchemaMismatchError, read_since
from serverless_ml.store.hopsworks import (
    SAAS_HOST,
    HopsworksProject,
    IncompatibleServerError,
    ValidatingFeatureStore,
    login_hopsworks,
)
from serverless_ml.store.model_files import MANIFEST_FILE, MODEL_FILE
from serverless_ml.store.resources import put_file
from serverless_ml.training import models
from serverless_ml.training.registry import TRAINING_RECORD, model_schema, register_model
from serverless_ml.training.split import training_data

PROJECT_ID = 119


class FakeCluster:
    """The cluster behind the REST seam: the feature groups it holds, the Kafka topic, the job, HopsFS."""

    def __init__(self, server_version: str = "5.2.0"):
        self.groups: dict[tuple[str, int], feature_group.FeatureGroup] = {}
        self.kafka: list[pd.DataFrame] = []
        self.job = mock.MagicMock(config={"defaultArgs": "-op offline_fg_materialization"})
        self.server_version = server_version
        self.paths = {"Resources": None}  # dataset path -> file bytes (None: a folder)
        self.calls: list[tuple] = []  # REST calls to the dataset endpoints, in order

    # hsfs FeatureGroupApi: the catalog
    def get_group(self, feature_store_id, name, version, *args, **kwargs):
        return self.groups.get((name, version))

    def save_group(self, group):
        group._id = 10 + len(self.groups)
        self.groups[(group.name, group.version)] = group
        return group

    # the REST client, for the dataset API and the variables endpoint
    def send_request(self, method, path_params, query_params=None, headers=None, data=None, files=None, **kwargs):
        if path_params[:2] == ["variables", "versions"]:
            return [{"software": "hopsworks", "version": self.server_version}]
        if path_params[0] == "variables":
            return {"successMessage": "enabled"}
        if path_params[:1] != ["project"] or len(path_params) < 4:
            raise AssertionError(f"unexpected REST call {method} {path_params}")
        path = path_params[-1].strip("/")
        if path_params[3] == "upload":
            self.calls.append(("upload", f"{path}/{files['file'][0]}"))
            self._require_folder(path)
            self.paths[f"{path}/{files['file'][0]}"] = files["file"][1]
            return {}
        action = (query_params or {}).get("action")
        self.calls.append((method, action, path))
        if method == "GET":
            if path not in self.paths:
                raise RestAPIError("url", mock.MagicMock(status_code=404, json=lambda: {"errorMsg": "not found"}))
            return {"attributes": {"path": path}}
        if method == "DELETE":
            for name in [p for p in self.paths if p == path or p.startswith(path + "/")]:
                del self.paths[name]
            return {}
        if action == "create":  # one level: the parent must exist
            self._require_folder(path.rsplit("/", 1)[0])
            self.paths[path] = None
            return {"attributes": {"path": path}}
        if action == "move":
            target = query_params["destination_path"]
            self._require_folder(target.rsplit("/", 1)[0])
            self.paths[target] = self.paths.pop(path)
            return {}
        raise AssertionError(f"unexpected REST call {method} {path_params} {query_params}")

    def _require_folder(self, folder):
        if self.paths.get(folder, b"") is not None:
            raise RestAPIError("url", mock.MagicMock(status_code=400, json=lambda: {"errorMsg": f"no folder {folder}"}))


@pytest.fixture
def cluster(monkeypatch, tmp_path):
    """A real hsfs FeatureStore wrapped by our backend, over a FakeCluster behind the SDK's network seams."""
    monkeypatch.setenv("SML_HOME", str(tmp_path / "store"))
    monkeypatch.delenv("SML_NAMESPACE", raising=False)
    fake = FakeCluster()
    client = mock.MagicMock(_project_id=PROJECT_ID, _base_url="https://demo.cloud.hopsworks.ai")
    client._send_request.side_effect = fake.send_request
    engine = python_engine.Engine()
    patches = [
        mock.patch("hopsworks_common.client._get_instance", return_value=client),
        mock.patch.object(hsfs_engine, "_get_type", return_value="python"),
        mock.patch.object(hsfs_engine, "_get_instance", return_value=engine),
        mock.patch("hsfs.core.feature_group_api.FeatureGroupApi._get", fake.get_group),
        mock.patch("hsfs.core.feature_group_api.FeatureGroupApi._save", fake.save_group),
        mock.patch("hsfs.core.great_expectation_engine.GreatExpectationEngine._validate", return_value=None),
        mock.patch("hopsworks_common.core.job_api.JobApi.last_execution", return_value=[]),
        mock.patch.object(kafka_engine, "_kafka_get_offsets", return_value=" -initialCheckPointString t=0:0"),
        mock.patch.object(python_engine.Engine, "_write_dataframe_kafka",
                          side_effect=lambda group, frame, *args: fake.kafka.append(frame)),
        mock.patch.object(feature_group.FeatureGroup, "materialization_job", new_callable=mock.PropertyMock,
                          return_value=fake.job),
        mock.patch("hsfs.core.delta_engine.DeltaEngine",
                   side_effect=AssertionError("the client must never write Delta files itself")),
    ]
    for patch in patches:
        patch.start()
    sdk_store = feature_store.FeatureStore(
        featurestore_id=99, featurestore_name="demo_featurestore", project_name="demo", project_id=PROJECT_ID,
        created="2026-11-01", offline_featurestore_name="demo", online_enabled=False)
    fake.fs = ValidatingFeatureStore(sdk_store)
    yield fake
    for patch in reversed(patches):
        patch.stop()


def test_the_sdk_left_alone_would_write_delta_files_from_the_client(cluster):
    group = cluster.fs.get_or_create_feature_group("plain", 1, primary_key=["id"], event_time="event_time")
    assert (group.time_travel_format, group.stream) == ("DELTA", False)  # what issue 10 found: delta-rs from outside


def test_feature_stage_creates_a_hudi_stream_group_and_waits_for_its_materialization_job(cluster):
    group = features_group.feature_group(cluster.fs, "iris")
    assert (group.time_travel_format, group.stream) == ("HUDI", True)
    assert (group.primary_key, group.event_time, group.online_enabled) == (["flower_id"], "event_time", False)
    written = upsert(group, load("iris"))
    assert written == 150 and len(cluster.kafka) == 1 and len(cluster.kafka[0]) == 150
    (run,) = cluster.job.run.call_args_list
    assert run.kwargs["await_termination"] is True  # wait=True: the next stage reads every row
    assert "-initialCheckPointString" in run.kwargs["args"]
    assert cluster.groups[("iris", 1)].time_travel_format == "HUDI"


def test_a_strict_expectation_failure_sends_nothing_to_the_cluster(cluster):
    bad = load("iris").assign(petal_length=-1.0)
    with pytest.raises(ValidationError):
        upsert(features_group.feature_group(cluster.fs, "iris"), bad)
    assert cluster.kafka == [] and cluster.groups == {} and not cluster.job.run.called


def test_the_course_iris_predictions_group_stops_inference_before_any_write(cluster):
    course = feature_group.FeatureGroup(
        name="iris_predictions", version=1, featurestore_id=99, primary_key=[], foreign_key=[], partition_key=[],
        features=[feature.Feature(name, kind) for name, kind in
                  [("sepal_length", "double"), ("sepal_width", "double"), ("petal_length", "double"),
                   ("petal_width", "double"), ("variety", "string")]], id=7)
    cluster.groups[("iris_predictions", 1)] = course
    with pytest.raises(SchemaMismatchError) as error:
        predictions_group(cluster.fs, "iris")
    message = str(error.value)
    for part in ("'iris_predictions' v1", "missing columns ['event_time', 'id', 'model_version', 'outcome'",
                 "event time None instead of 'event_time'", "SML_NAMESPACE", "sml-run clean"):
        assert part in message, message
    assert cluster.kafka == [] and not cluster.job.run.called


def test_a_namespace_keeps_clear_of_the_course_objects(cluster, monkeypatch):
    cluster.groups[("iris_predictions", 1)] = feature_group.FeatureGroup(
        name="iris_predictions", version=1, featurestore_id=99, primary_key=[], foreign_key=[], partition_key=[],
        features=[feature.Feature("variety", "string")], id=7)
    monkeypatch.setenv("SML_NAMESPACE", "alice")
    group = predictions_group(cluster.fs, "iris")
    assert (group.name, group.time_travel_format, group.stream) == ("alice_iris_predictions", "HUDI", True)
    assert images_folder("iris") == "Resources/alice/images/iris"


def test_time_windows_reach_the_cluster_as_a_query_filter_on_event_time(cluster):
    group = features_group.feature_group(cluster.fs, "iris")
    upsert(group, load("iris"))
    sent = {}

    def construct_query(api, query):
        sent.update(json.loads(query.json()))
        return mock.MagicMock()

    with mock.patch("hsfs.core.query_constructor_api.QueryConstructorApi._construct_query", construct_query), \
            mock.patch.object(python_engine.Engine, "_sql", return_value=pd.DataFrame({"flower_id": [1]})):
        rows = read_since(cluster.groups[("iris", 1)], pd.Timestamp("2026-11-02 08:30:15.5", tz="UTC"))
    assert list(rows.flower_id) == [1]
    condition = sent["filter"]["leftFilter"]
    assert (condition["feature"]["name"], condition["condition"], condition["value"]) == \
        ("event_time", "GREATER_THAN_OR_EQUAL", "2026-11-02 08:30:15")  # whole seconds, any server version


def test_the_training_split_is_seeded_on_hopsworks_where_train_test_split_is_not(cluster):
    from hsfs import feature_view

    rows = load("titanic")
    view = feature_view.FeatureView(name="titanic", query=mock.MagicMock(), featurestore_id=99, version=1,
                                    labels=["survived"])
    spec = dataset_spec("titanic")
    calls = []

    def engine_training_data(engine, fv, read_options, **kwargs):
        calls.append(kwargs)
        td = mock.MagicMock(version=len(calls))
        return td, [rows[[*spec.primary_key, *spec.features]].sample(frac=1, random_state=len(calls)),
                    rows[["survived"]].sample(frac=1, random_state=len(calls))]

    with mock.patch("hsfs.core.feature_view_engine.FeatureViewEngine._get_training_data", engine_training_data):
        first = training_data(view, "titanic", 0.2, seed=42)
        again = training_data(view, "titanic", 0.2, seed=42)
    assert calls[0]["primary_keys"] is True  # the ids come back, so the split can hash them
    assert view.get_last_accessed_training_dataset() == 2
    for part_one, part_two in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(pd.DataFrame(part_one), pd.DataFrame(part_two))  # rows came back shuffled


def test_a_registered_model_carries_schema_example_lineage_and_a_skops_file(cluster):
    registry = model_registry.ModelRegistry("demo", PROJECT_ID, 13)
    rows = load("iris")
    X, y = rows[dataset_spec("iris").features], rows["variety"]
    model = models.train("iris", X, y)
    view = mock.MagicMock(version=1)
    view.name = "iris"
    view.get_last_accessed_training_dataset.return_value = 3
    saved = {}

    def engine_save(engine, model_instance, model_path, **kwargs):
        saved.update(model=model_instance, files=sorted(p.name for p in Path(model_path).iterdir()))
        return model_instance

    with mock.patch("hsml.engine.model_engine.ModelEngine._save", engine_save):
        register_model(registry, "iris", model, {"accuracy": 0.9}, pd.DataFrame(), X, y, view, b"png")
    body = json.loads(saved["model"].json())  # what the SDK sends to the registry
    assert (body["name"], body["metrics"], body["trainingDatasetVersion"], body["framework"]) == \
        ("iris_model", {"accuracy": 0.9}, 3, "PYTHON")
    assert [c["name"] for c in body["modelSchema"]["input_schema"]["columnar_schema"]] == list(X.columns)
    assert [c["name"] for c in body["modelSchema"]["output_schema"]["columnar_schema"]] == ["variety"]
    assert body["inputExample"] and body["description"].startswith("iris: ")
    assert saved["files"] == sorted([MODEL_FILE, MANIFEST_FILE, "confusion_matrix.png",
                                     drift.REFERENCE_FILE, TRAINING_RECORD])
    assert not any(name.endswith((".pkl", ".joblib")) for name in saved["files"])


def test_the_model_schema_is_the_json_hsml_writes_without_its_deprecation_warning():
    from hsml.model_schema import ModelSchema
    from hsml.schema import Schema

    rows = load("titanic")  # text, float and integer columns
    X, y = rows[dataset_spec("titanic").features], rows["survived"]
    with pytest.warns(HopsworksDeprecationWarning):
        theirs = ModelSchema(Schema(X), Schema(y)).json()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # ours warns nothing and imports no hsfs
        ours = model_schema(X, y).json()
    assert ours == theirs


def test_a_missing_resources_subfolder_is_made_level_by_level_and_a_file_is_replaced_by_a_move(cluster):
    api = DatasetApi()
    local = Path(tempfile.mkdtemp()) / "state.json"
    local.write_text('{"n": 1}')
    put_file(api, local, "Resources/monitoring/iris")
    creates = [path for method, action, path in [c for c in cluster.calls if c[0] != "upload"] if action == "create"]
    assert creates == ["Resources/monitoring", "Resources/monitoring/iris"]
    assert cluster.paths["Resources/monitoring/iris/state.json"] == b'{"n": 1}'
    cluster.calls.clear()
    local.write_text('{"n": 2}')
    put_file(api, local, "Resources/monitoring/iris")
    kinds = [c[0] if c[0] == "upload" else (c[0], c[1]) for c in cluster.calls]
    assert kinds.index("upload") < kinds.index(("DELETE", None)) < kinds.index(("POST", "move"))
    assert cluster.paths["Resources/monitoring/iris/state.json"] == b'{"n": 2}'
    assert not [p for p in cluster.paths if p.endswith(".part")]


def test_the_sdk_alone_cannot_upload_into_a_missing_folder(cluster):
    local = Path(tempfile.mkdtemp()) / "state.json"
    local.write_text("{}")
    with pytest.raises(RestAPIError):
        DatasetApi().upload(str(local), "Resources/monitoring/iris")


@pytest.fixture
def login_seam(monkeypatch):
    """`hopsworks.login`'s own code, with the connection factory and the REST client patched."""
    for name in list(os.environ):
        if name.startswith("HOPSWORKS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOPSWORKS_API_KEY", "fake-key")
    monkeypatch.setenv("HOPSWORKS_PROJECT", "demo")
    fake = FakeCluster()
    client = mock.MagicMock(_project_id=PROJECT_ID)
    client._send_request.side_effect = fake.send_request
    connection = mock.MagicMock()
    connection.return_value._get_project.return_value = mock.MagicMock(name="project")
    monkeypatch.setattr(hopsworks, "_make_connection", connection)
    monkeypatch.setattr(hopsworks, "_hw_connection", connection)
    monkeypatch.setattr(hopsworks, "_initialize_module_apis", lambda: None)
    monkeypatch.setattr(hopsworks, "_set_active_project", lambda project: None)
    monkeypatch.setattr("hopsworks_common.client._get_instance", lambda: client)
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: pytest.fail("login prompted for a key"))
    fake.connection = connection
    return fake


def test_an_empty_hopsworks_host_logs_in_to_the_hosted_service(login_seam, monkeypatch):
    monkeypatch.setenv("HOPSWORKS_HOST", "")  # what the workflow sets when the variable is unset
    monkeypatch.setenv("HOPSWORKS_PORT", "")
    login_hopsworks()
    sent = login_seam.connection.call_args.kwargs
    assert (sent["host"], sent["port"]) == (SAAS_HOST, 443)
    assert os.environ["HOPSWORKS_HOST"] == ""  # restored after the login


def test_the_sdk_alone_takes_an_empty_host_as_the_host(login_seam, monkeypatch):
    monkeypatch.setenv("HOPSWORKS_HOST", "")
    hopsworks.login(project="demo", api_key_value="fake-key")
    assert login_seam.connection.call_args.kwargs["host"] == ""  # the failure the workflow would have met


def test_a_4x_server_is_refused_at_login_with_the_client_to_install(login_seam):
    login_seam.server_version = "4.2.1"
    with pytest.raises(IncompatibleServerError, match=r"hopsworks\[python\]==4\.2\.\*"):
        login_hopsworks()


def test_a_matching_server_logs_in_and_wraps_the_project(login_seam):
    project = login_hopsworks()
    assert isinstance(project, HopsworksProject)
    assert login_seam.connection.call_args.kwargs["api_key_value"] == "fake-key"

