"""The hopsworks backend on the installed SDK, unpatched down to the network: every test logs in through the real
external client (`hopsworks.login`) to the wire fake of a Hopsworks 5.2 cluster (helpers/hopsworks_wire.py), which
answers HTTP at `requests`' transport adapter with JSON shaped like the server's (from the SDK's own test fixtures),
Kafka at `confluent_kafka.Producer`/`Consumer`, the query service at `pyarrow.flight.FlightClient`, and jobs at their
execution REST calls. Nothing above those seams is replaced: not the SDK's engines, APIs or client.

Tests named `point N` are the numbered points of issue 23; the ones with several processes are in
test_hopsworks_processes.py."""

from __future__ import annotations

import os
import re
import stat
import warnings
from pathlib import Path

import hopsworks
import pandas as pd
import pytest
from helpers import wire
from helpers.hopsworks_wire import FakeHopsworks
from hopsworks_apigen.errors import HopsworksDeprecationWarning
from hopsworks_common.client.exceptions import RestAPIError

from serverless_ml.config import utc_column
from serverless_ml.features import group as features_group
from serverless_ml.features.datasets import load
from serverless_ml.features.group import upsert
from serverless_ml.features.spec import spec as dataset_spec
from serverless_ml.inference import drift
from serverless_ml.inference.state import predictions_group
from serverless_ml.names import images_folder
from serverless_ml.store.expectations import ValidationError
from serverless_ml.store.groups import WRITE_PATH, SchemaMismatchError, read_since
from serverless_ml.store.hopsworks import (
    SAAS_HOST,
    HopsworksLoginError,
    HopsworksProject,
    HopsworksUnreachableError,
    IncompatibleServerError,
    certificate_folder,
    login_hopsworks,
)
from serverless_ml.store.login import login, logout
from serverless_ml.store.model_files import MANIFEST_FILE, MODEL_FILE
from serverless_ml.store.resources import put_file
from serverless_ml.training import models
from serverless_ml.training.registry import TRAINING_RECORD, model_schema, register_model, train_and_register
from serverless_ml.training.split import feature_view, training_data


@pytest.fixture
def cluster(tmp_path):
    "A fresh fake cluster, this process's HOPSWORKS_* variables pointing at it; logged out at the end."
    with wire.running(tmp_path / "cluster", tmp_path / "certs") as fake:
        yield fake


def calls(fake: FakeHopsworks, method: str, path_end: str) -> list[dict]:
    "The REST calls the cluster answered whose method and path (its end) match, oldest first."
    return [c for c in fake.rest_call_log() if c["method"] == method and c["path"].endswith(path_end)]


def sdk_store(project):
    "The SDK's own feature store, without our wrapper (what another tool, or the course, writes with)."
    return project.get_feature_store()._wrapped


def test_point_1_a_login_writes_the_certificates_to_a_private_folder_of_this_process_and_a_logout_removes_it(
        cluster, tmp_path):
    project = login()
    certs = Path(certificate_folder())
    assert certs.parent.parent == tmp_path / "certs"  # under HOPSWORKS_CERT_FOLDER, not /tmp/<host>/<project>/<user>
    assert stat.S_IMODE(certs.parent.stat().st_mode) == 0o700
    assert {"keyStore.jks", "trustStore.jks", "ca_chain.pem", "client_key.pem"} <= {p.name for p in certs.iterdir()}
    assert login() is project and certificate_folder() == str(certs)  # the second login: the same session and folder
    assert cluster.counters()["credentials_downloads"] == 1
    logout()
    assert wire.certificate_folders(tmp_path / "certs") == []
    login()  # a login after a logout works again, in a new folder
    assert Path(certificate_folder()).is_dir()


def test_without_the_write_path_a_group_is_delta_and_streams_nothing_from_the_client(cluster):
    group = sdk_store(login()).get_or_create_feature_group("plain", 1, primary_key=["id"], event_time="event_time")
    assert (group.time_travel_format, group.stream) == ("DELTA", False)  # what issue 10 found: delta-rs from outside


def test_point_4_the_feature_stage_makes_a_hudi_stream_group_with_statistics_off_and_waits_for_its_one_job(cluster):
    written = upsert(features_group.feature_group(login().get_feature_store(), "iris"), load("iris"))
    (created,) = calls(cluster, "POST", "/featuregroups")
    body = created["body"]
    assert (body["type"], body["timeTravelFormat"], body["onlineEnabled"]) == ("streamFeatureGroupDTO", "HUDI", False)
    assert body["statisticsConfig"]["enabled"] is False
    assert written == 150 and len(cluster.kafka_messages()) == 150
    assert cluster.jobs_started_per_group() == {"iris_1": 1}
    assert len(cluster.offline_table("iris", 1)) == 150  # wait=True: the job had run when insert returned
    assert cluster.state().get("statistics", {}) == {}  # the job computed none


def test_point_4_a_group_left_at_the_sdk_default_has_its_statistics_computed_by_the_job(cluster):
    "What statistics_config=False saves: the job's statistics step, the one a hosted user saw fail."
    write_path = {key: value for key, value in WRITE_PATH.items() if key != "statistics_config"}
    group = sdk_store(login()).get_or_create_feature_group("plain", 1, primary_key=["flower_id"],
                                                           event_time="event_time", **write_path)
    group.insert(load("iris"), wait=True)
    assert [len(entries) for entries in cluster.state()["statistics"].values()] == [1]


def test_a_strict_expectation_failure_sends_nothing_to_the_cluster(cluster):
    bad = load("iris").assign(petal_length=-1.0)
    with pytest.raises(ValidationError):
        upsert(features_group.feature_group(login().get_feature_store(), "iris"), bad)
    assert calls(cluster, "POST", "/featuregroups") == [] and cluster.kafka_messages() == []
    assert cluster.total_jobs_started() == 0


def test_point_3_a_group_that_already_exists_checks_every_insert_too(cluster):
    "The daily stage fetches the group stage 1 made: its inserts must be checked as the first one was."
    upsert(features_group.feature_group(login().get_feature_store(), "iris"), load("iris"))
    logout()  # the next stage: another login, the group fetched from the cluster
    fetched = features_group.feature_group(login().get_feature_store(), "iris")
    rows = load("iris").head(3).assign(flower_id=[901, 902, 903], petal_length=-1.0)
    with pytest.raises(ValidationError, match="petal_length"):
        upsert(fetched, rows)
    assert len(cluster.kafka_messages()) == 150 and cluster.total_jobs_started() == 1  # nothing more was sent


def test_titanic_missing_text_values_reach_the_offline_table_as_nulls(cluster):
    "fastavro refuses pandas' NaN for a [\"null\", \"string\"] field: the frame goes to the SDK with None."
    rows = load("titanic")
    assert rows.embarked.isna().sum() == 2
    upsert(features_group.feature_group(login().get_feature_store(), "titanic"), rows)
    offline = cluster.offline_table("titanic", 1)
    assert len(offline) == len(rows) and offline.embarked.isna().sum() == 2
    assert offline.age.isna().sum() == rows.age.isna().sum()  # numbers: NaN, as Avro's double takes it


def test_the_course_iris_predictions_group_stops_inference_before_any_write(cluster):
    course = sdk_store(login()).get_or_create_feature_group(
        "iris_predictions", 1, primary_key=["sepal_length"], **WRITE_PATH)
    course.insert(load("iris")[["sepal_length", "sepal_width", "petal_length", "petal_width", "variety"]].head(3))
    before = cluster.snapshot()
    with pytest.raises(SchemaMismatchError) as error:
        predictions_group(login().get_feature_store(), "iris")
    message = str(error.value)
    for part in ("'iris_predictions' v1", "missing columns ['event_time', 'id', 'model_version', 'outcome'",
                 "primary key ['sepal_length'] instead of ['id']", "SML_NAMESPACE", "sml-run clean"):
        assert part in message, message
    assert cluster.delta(before)["jobs_started_total"] == 0 and cluster.delta(before)["kafka_messages"] == 0


def test_a_namespace_keeps_clear_of_the_course_objects(cluster, monkeypatch):
    sdk_store(login()).get_or_create_feature_group("iris_predictions", 1, primary_key=["variety"], **WRITE_PATH) \
        .insert(pd.DataFrame({"variety": ["Setosa"]}))
    monkeypatch.setenv("SML_NAMESPACE", "alice")
    group = predictions_group(login().get_feature_store(), "iris")
    assert (group.name, group.time_travel_format, group.stream) == ("alice_iris_predictions", "HUDI", True)
    assert images_folder("iris") == "Resources/alice/images/iris"


def test_time_windows_reach_the_cluster_as_a_query_filter_on_event_time_in_whole_seconds(cluster):
    start = pd.Timestamp("2026-11-02 08:30:00", tz="UTC")
    rows = load("iris").assign(event_time=lambda d: start + pd.to_timedelta(d.index * 0.5, unit="s"))
    group = features_group.feature_group(login().get_feature_store(), "iris")
    upsert(group, rows)
    since = start + pd.Timedelta(seconds=15.5)
    back = read_since(group, since)
    condition = calls(cluster, "PUT", "/featurestores/query")[-1]["body"]["filter"]["leftFilter"]
    assert (condition["feature"]["name"], condition["condition"], condition["value"]) == \
        ("event_time", "GREATER_THAN_OR_EQUAL", "2026-11-02 08:30:15")  # whole seconds, any server version
    expected = rows.flower_id[rows.event_time >= since.floor("s")]
    assert sorted(back.flower_id) == sorted(expected) and len(back) == 120  # the row at 15.0 s comes back too


@pytest.mark.parametrize("dataset, key", [("iris", "flower_id"), ("titanic", "passenger_id")])
def test_point_2_the_training_split_gets_the_key_back_from_its_fully_qualified_name(cluster, dataset, key):
    fs = login().get_feature_store()
    upsert(features_group.feature_group(fs, dataset), load(dataset))
    view = feature_view(fs, dataset)
    X, _ = view.training_data(primary_key=True)  # what the cluster returns: the key it was not asked to select
    assert f"{cluster.project_name}_{dataset}_1_{key}" in X.columns and key not in X.columns
    first = training_data(view, dataset, 0.2, seed=42)
    again = training_data(view, dataset, 0.2, seed=42)
    for part_one, part_two in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(pd.DataFrame(part_one), pd.DataFrame(part_two))  # seeded: the same split
    assert list(first[0].columns) == dataset_spec(dataset).features and len(first[0]) + len(first[1]) == len(X)
    assert view.get_last_accessed_training_dataset() == 3  # one in-memory training dataset per call, no job
    assert cluster.jobs_started_per_group() == {f"{dataset}_1": 1}


def test_a_registered_model_carries_schema_example_lineage_and_a_skops_file(cluster):
    project = login()
    fs = project.get_feature_store()
    upsert(features_group.feature_group(fs, "iris"), load("iris"))
    view = feature_view(fs, "iris")
    X_train, X_test, y_train, y_test = training_data(view, "iris")
    model = models.train("iris", X_train, y_train)
    register_model(project.get_model_registry(), "iris", model, {"accuracy": 0.9}, pd.DataFrame(), X_train, y_train,
                   view, b"png")
    body = calls(cluster, "PUT", "/models/iris_model_1")[-1]["body"]  # what the SDK sent the registry
    assert (body["name"], body["metrics"], body["trainingDatasetVersion"], body["framework"]) == \
        ("iris_model", {"accuracy": 0.9}, 1, "PYTHON")
    assert body["featureView"]["name"] == "iris" and body["description"].startswith("iris: ")
    files = Path(cluster.store.root, "hopsfs", "Projects", cluster.project_name, "Models", "iris_model", "1")
    assert sorted(p.name for p in (files / "Files").iterdir()) == sorted(
        [MODEL_FILE, MANIFEST_FILE, "confusion_matrix.png", drift.REFERENCE_FILE, TRAINING_RECORD])
    assert (files / "input_example.json").is_file() and (files / "model_schema.json").is_file()
    schema = (files / "model_schema.json").read_text()
    assert all(f'"{column}"' in schema for column in [*X_train.columns, "variety"])


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


def test_stage_2_trains_and_registers_on_the_cluster_and_loads_the_model_back(cluster):
    project = login()
    upsert(features_group.feature_group(project.get_feature_store(), "titanic"), load("titanic"))
    trained = train_and_register(project, "titanic")
    entry = project.get_model_registry().get_best_model("titanic_model", "accuracy", "max")
    assert entry.version == trained.registered.version == 1
    loaded = models.load_model(entry.download())
    X = load("titanic")[dataset_spec("titanic").features].head(20)
    assert list(loaded.predict(X)) == list(trained.model.predict(X))


def test_a_missing_resources_subfolder_is_made_level_by_level_and_a_file_is_replaced_by_a_move(cluster, tmp_path):
    api = login().get_dataset_api()
    local = tmp_path / "state.json"
    local.write_text('{"n": 1}')
    put_file(api, local, "Resources/monitoring/iris")
    made = [c["path"].split("/dataset/")[1] for c in calls(cluster, "POST", "") if "create" in c["query"].get("action", [])]
    assert made == ["Resources/monitoring", "Resources/monitoring/iris"]
    remote = Path(cluster.store.root, "hopsfs", "Projects", cluster.project_name, "Resources", "monitoring", "iris")
    assert (remote / "state.json").read_text() == '{"n": 1}'
    seen = len(cluster.rest_call_log())
    local.write_text('{"n": 2}')
    put_file(api, local, "Resources/monitoring/iris")
    kinds = [("upload" if "/dataset/upload/" in c["path"] else c["method"], c["query"].get("action", [""])[0])
             for c in cluster.rest_call_log()[seen:] if c["method"] != "GET"]
    assert kinds.index(("upload", "")) < kinds.index(("DELETE", "")) < kinds.index(("POST", "move")), kinds
    assert (remote / "state.json").read_text() == '{"n": 2}' and sorted(p.name for p in remote.iterdir()) == ["state.json"]


def test_the_sdk_alone_cannot_upload_into_a_missing_folder(cluster, tmp_path):
    local = tmp_path / "state.json"
    local.write_text("{}")
    with pytest.raises(RestAPIError):
        login().get_dataset_api().upload(str(local), "Resources/monitoring/iris")


@pytest.fixture
def saas(tmp_path, monkeypatch):
    "A fake cluster answering as the hosted service, the SDK's default host."
    for name in [name for name in os.environ if name.startswith("HOPSWORKS_")]:
        monkeypatch.delenv(name)
    fake = FakeHopsworks(str(tmp_path / "cluster"), host=SAAS_HOST, project=f"saas{os.getpid()}").start()
    monkeypatch.setenv("HOPSWORKS_API_KEY", fake.api_key)
    monkeypatch.setenv("HOPSWORKS_PROJECT", fake.project_name)
    monkeypatch.setenv("HOPSWORKS_CERT_FOLDER", str(tmp_path / "certs"))
    monkeypatch.setattr("getpass.getpass", lambda *a, **k: pytest.fail("login prompted for a key"))
    yield fake
    logout()
    fake.stop()
    fake.remove_sdk_leftovers()


def test_an_empty_hopsworks_host_logs_in_to_the_hosted_service(saas, monkeypatch):
    monkeypatch.setenv("HOPSWORKS_HOST", "")  # what the workflow sets when the variable is unset
    monkeypatch.setenv("HOPSWORKS_PORT", "")
    assert login_hopsworks().name == saas.project_name
    assert saas.counters()["credentials_downloads"] == 1
    assert os.environ["HOPSWORKS_HOST"] == ""  # restored after the login


def test_the_sdk_alone_takes_an_empty_host_as_the_host(saas, monkeypatch):
    monkeypatch.setenv("HOPSWORKS_HOST", "")
    with pytest.raises(Exception):  # noqa: B017 - whatever `requests` makes of https://:443
        hopsworks.login(project=saas.project_name, api_key_value=saas.api_key, cert_folder=str(Path(os.environ[
            "HOPSWORKS_CERT_FOLDER"]) / "sdk"))
    assert saas.rest_calls() == []  # it never reached the hosted service


def test_point_5_a_4x_cluster_is_refused_at_login_with_advice_a_user_can_follow(cluster, tmp_path):
    cluster.HOPSWORKS_VERSION = "4.2.1"  # what this cluster's versions endpoint answers
    with pytest.raises(IncompatibleServerError) as refused:
        login_hopsworks()
    message = str(refused.value)
    assert "client 5.2.1, server 4.2.1: not supported" in message and "use a Hopsworks 5.2 cluster" in message
    assert "SML_BACKEND=local" in message and "pip install" not in message  # make setup installs the lock only
    assert wire.certificate_folders(tmp_path / "certs") == []  # refused, and logged out


def test_a_matching_cluster_logs_in_and_wraps_the_project(cluster):
    project = login_hopsworks()
    assert isinstance(project, HopsworksProject) and project.name == cluster.project_name


def test_an_unreachable_host_gets_the_projects_message_naming_it(cluster, monkeypatch):
    "Issue 26, point 9: not a `requests` traceback."
    monkeypatch.setenv("HOPSWORKS_HOST", "127.0.0.1")
    monkeypatch.setenv("HOPSWORKS_PORT", "1")  # nothing listens there
    with pytest.raises(HopsworksUnreachableError, match=r"Could not reach Hopsworks at https://127\.0\.0\.1:1 .*"
                                                        r"Check HOPSWORKS_HOST and HOPSWORKS_PORT"):
        login_hopsworks()


@pytest.mark.parametrize("variable, value, says", [
    ("HOPSWORKS_API_KEY", "revoked", "refused the API key (HTTP 401)"),
    ("HOPSWORKS_PROJECT", "nope", "Could not find project nope. Set HOPSWORKS_PROJECT to a project"),
])
def test_a_refused_login_gets_the_projects_message(cluster, monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    with pytest.raises(HopsworksLoginError, match=re.escape(says)):
        login_hopsworks()


def test_count_by_on_the_cluster_counts_what_the_local_store_counts(cluster, tmp_path, monkeypatch):
    "The state's check asks `count_by` on both backends: the SDK has no aggregate read, so the wrapper counts."
    rows = load("iris").assign(event_time=pd.Timestamp("2026-11-02", tz="UTC")
                               + pd.to_timedelta(load("iris").index % 4, unit="D"))
    group = features_group.feature_group(login().get_feature_store(), "iris")
    upsert(group, rows)
    on_cluster = group.count_by(["event_time", "variety"])
    monkeypatch.setenv("SML_BACKEND", "local")
    monkeypatch.setenv("SML_HOME", str(tmp_path / "local"))
    local = features_group.feature_group(login().get_feature_store(), "iris")
    upsert(local, rows)
    on_disk = local.count_by(["event_time", "variety"])
    assert on_cluster.n.sum() == len(rows) and len(on_cluster) == 12  # 4 days x 3 varieties
    pd.testing.assert_frame_equal(on_cluster.assign(event_time=utc_column(on_cluster.event_time)), on_disk,
                                  check_dtype=False)
