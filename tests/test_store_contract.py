"""The local backend keeps the Hopsworks 5.2 contract: names, return shapes and the semantics a user notices."""

from __future__ import annotations

import warnings

import pandas as pd
import pandera.pandas as pa
import pytest
from hopsworks_common.util import VersionWarning
from hsml.model_schema import ModelSchema
from hsml.schema import Schema

from serverless_ml.features import datasets, spec
from serverless_ml.store.expectations import ValidationError, expectation_suite
from serverless_ml.store.local.file import FeatureStoreError
from serverless_ml.store.login import login

T0 = pd.Timestamp("2020-01-01", tz="UTC")


def flowers(n: int = 30, start: int = 1, when=T0) -> pd.DataFrame:
    varieties = ["Setosa", "Versicolor", "Virginica"]
    return pd.DataFrame({
        "flower_id": range(start, start + n),
        "petal_length": [1.0 + (i % 60) / 10 for i in range(n)],
        "variety": [varieties[i % 3] for i in range(n)],
        "event_time": when,
    })


@pytest.fixture
def project(sml_home):
    return login()


@pytest.fixture
def fs(project):
    return project.get_feature_store()


def new_group(fs, name="iris", **kwargs):
    return fs.get_or_create_feature_group(name, version=1, description="flowers", primary_key=["flower_id"],
                                          event_time="event_time", **kwargs)


def test_login_picks_backend_from_env(sml_home, monkeypatch):
    assert login().get_feature_store().__class__.__name__ == "LocalFeatureStore"
    monkeypatch.setenv("SML_BACKEND", "hopsworks")
    monkeypatch.delenv("HOPSWORKS_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="HOPSWORKS_API_KEY"):
        login()


def test_project_gives_the_three_services(project, tmp_path):
    assert project.get_feature_store().get_feature_group("nothing", version=1) is None  # answers: no such group
    assert project.get_model_registry().get_models("nothing") == []  # answers: no such model
    picture = tmp_path / "latest.png"
    picture.write_bytes(b"\x89PNG")
    files = project.get_dataset_api()
    assert not files.exists("Resources/images/latest.png")
    files.upload(str(picture), "Resources/images", overwrite=True)  # as the lab's batch script does
    assert files.exists("Resources/images/latest.png")


def test_get_or_create_is_lazy_and_keeps_settings(fs):
    fg = new_group(fs)
    assert fs.get_feature_group("iris", 1) is None
    fg.insert(flowers())
    again = fs.get_or_create_feature_group("iris", 1, description="other", primary_key=["variety"])
    assert (again.primary_key, again.description, again.event_time) == (["flower_id"], "flowers", "event_time")


def test_insert_returns_job_and_report_and_reads_back(fs):
    fg = new_group(fs)
    job, report = fg.insert(flowers())
    assert job is None and report is None
    back = fs.get_feature_group("iris", 1).read()
    pd.testing.assert_frame_equal(back.sort_values("flower_id").reset_index(drop=True), flowers(),
                                  check_dtype=False)


def test_upsert_on_key_and_event_time(fs):
    fg = new_group(fs)
    fg.insert(flowers(3))
    changed = flowers(3).assign(petal_length=9.9)
    fg.insert(changed.head(1))  # same key, same time: replaced
    fg.insert(flowers(1, when=T0 + pd.Timedelta(days=1)))  # same key, new time: history row
    offline = fg.read()
    assert len(offline) == 4
    assert offline.loc[(offline.flower_id == 1) & (offline.event_time == T0), "petal_length"].item() == 9.9
    online = fg.read(online=True)
    assert len(online) == 3 and online.loc[online.flower_id == 1, "event_time"].item() == T0 + pd.Timedelta(days=1)


def test_duplicate_keys_inside_one_insert_collapse_to_the_last(fs):
    fg = new_group(fs)
    rows = pd.concat([flowers(2), flowers(1).assign(petal_length=7.0)])
    fg.insert(rows)
    back = fg.read()
    assert len(back) == 2 and back.loc[back.flower_id == 1, "petal_length"].item() == 7.0


def test_column_names_are_lower_cased_with_a_warning(fs):
    fg = new_group(fs)
    with pytest.warns(UserWarning, match="Petal Length"):
        fg.insert(flowers().rename(columns={"petal_length": "Petal Length"}))
    assert "petal_length" in fg.read().columns


def test_first_insert_fixes_the_schema(fs):
    fg = new_group(fs)
    fg.insert(flowers(3))
    with pytest.raises(FeatureStoreError, match=r"extra columns \['colour'\]"):
        fg.insert(flowers(3, start=10).assign(colour="red"))
    with pytest.raises(FeatureStoreError, match=r"petal_length \(VARCHAR into DOUBLE\)"):
        fg.insert(flowers(3, start=10).assign(petal_length="long"))
    assert len(fg.read()) == 3


def test_read_filters_by_event_time_start_inclusive_end_exclusive(fs):
    fg = new_group(fs)
    for day in range(3):
        fg.insert(flowers(2, start=10 * day, when=T0 + pd.Timedelta(days=day)))
    window = fg.read(start_time="2020-01-02", end_time="2020-01-03")
    assert sorted(window.flower_id) == [10, 11]
    assert len(fg.select_all().read(start_time=T0 + pd.Timedelta(days=1))) == 4


def test_select_select_except_and_select_all(fs):
    fg = new_group(fs)
    fg.insert(flowers())
    assert list(fg.select(["flower_id", "variety"]).read().columns) == ["flower_id", "variety"]
    assert "event_time" not in fg.select_except(["event_time"]).read().columns
    no_ids = fg.select_all(include_primary_key=False, include_event_time=False).read()
    assert list(no_ids.columns) == ["petal_length", "variety"]
    assert len(fg.select_all().read(dataframe_type="numpy")) == 30


def test_feature_view_get_create_and_versions(fs):
    fg = new_group(fs)
    fg.insert(flowers())
    assert fs.get_feature_view("iris", 1) is None
    fv = fs.get_or_create_feature_view("iris", fg.select_except(["event_time"]), 1, "view", labels=["variety"])
    assert (fv.name, fv.version, fv.labels) == ("iris", 1, ["variety"])
    assert fs.get_or_create_feature_view("iris", fg.select_all(), 1).labels == ["variety"]
    assert fs.create_feature_view("iris", fg.select_all(), labels=["variety"]).version == 2
    with pytest.warns(VersionWarning):
        assert fs.get_feature_view("iris").version == 1


def test_train_test_split_is_deterministic_and_drops_labels(fs):
    fg = new_group(fs)
    fg.insert(flowers(150))
    fv = fs.get_or_create_feature_view("iris", fg.select_except(["event_time"]), 1, labels=["variety"])
    with pytest.warns(VersionWarning, match="Incremented version"):
        X_train, X_test, y_train, y_test = fv.train_test_split(test_size=0.2)
    assert (len(X_train), len(X_test)) == (120, 30)
    assert list(X_train.columns) == ["flower_id", "petal_length"] and list(y_train.columns) == ["variety"]
    assert y_test.variety.value_counts().tolist() == [10, 10, 10]  # stratified
    assert set(X_train.flower_id).isdisjoint(X_test.flower_id)
    again = fv.train_test_split(0.2)
    pd.testing.assert_frame_equal(again[1], X_test)
    assert fv.get_last_accessed_training_dataset() == 2


def test_train_test_split_keys_and_time_only_on_request(fs):
    fg = new_group(fs)
    fg.insert(flowers(20))
    fv = fs.get_or_create_feature_view("iris", fg.select(["petal_length", "variety"]), 1, labels=["variety"])
    X_train, *_ = fv.train_test_split(0.25)
    assert list(X_train.columns) == ["petal_length"]
    X_train, *_ = fv.train_test_split(0.25, primary_key=True, event_time=True)
    assert list(X_train.columns) == ["flower_id", "event_time", "petal_length"]


def test_train_test_split_by_time_and_bad_size(fs):
    fg = new_group(fs)
    fg.insert(flowers(4))
    fg.insert(flowers(2, start=100, when=T0 + pd.Timedelta(days=5)))
    fv = fs.get_or_create_feature_view("iris", fg.select_all(), 1, labels=["variety"])
    X_train, X_test, _, _ = fv.train_test_split(train_end="2020-01-03", test_start="2020-01-03")
    assert (len(X_train), len(X_test)) == (4, 2)
    with pytest.raises(ValueError, match="test_size"):
        fv.train_test_split(test_size=1.5)


def test_get_batch_data_has_no_labels_and_filters_time(fs):
    fg = new_group(fs)
    fg.insert(flowers(3))
    fg.insert(flowers(2, start=100, when=T0 + pd.Timedelta(days=1)))
    fv = fs.get_or_create_feature_view("iris", fg.select(["petal_length", "variety"]), 1, labels=["variety"])
    batch = fv.get_batch_data(start_time="2020-01-02")
    assert list(batch.columns) == ["petal_length"] and len(batch) == 2
    with_ids = fv.get_batch_data(primary_key=True, event_time=True)
    assert list(with_ids.columns) == ["flower_id", "event_time", "petal_length"] and len(with_ids) == 5


def test_strict_expectations_refuse_the_whole_insert(fs):
    rules = pa.DataFrameSchema({"petal_length": pa.Column(float, pa.Check.in_range(0, 10)),
                                "variety": pa.Column(str, pa.Check.isin(["Setosa", "Versicolor", "Virginica"]))})
    fg = new_group(fs, expectation_suite=expectation_suite(rules, policy="STRICT"))
    bad = flowers(5)
    bad.loc[3, "petal_length"] = 42.0
    bad.loc[4, "variety"] = "Rose"
    with pytest.raises(ValidationError, match=r"index 3, 4") as refused:
        fg.insert(bad)
    assert refused.value.report.failing_columns == ["petal_length", "variety"]
    assert fs.get_feature_group("iris", 1) is None  # nothing written, not even the group
    fg.insert(flowers(5))
    stored = fs.get_feature_group("iris", 1)  # the suite is stored with the group
    with pytest.raises(ValidationError):
        stored.insert(bad)
    assert len(stored.read()) == 5


def test_always_expectations_insert_and_report(fs):
    rules = pa.DataFrameSchema({"petal_length": pa.Column(float, pa.Check.le(5))})
    fg = new_group(fs, expectation_suite=expectation_suite(rules, policy="ALWAYS"))
    _, report = fg.insert(flowers(60))
    assert not report.success and report.ingestion_result == "INGESTED" and report.failing_columns == ["petal_length"]
    assert len(fg.read()) == 60


def test_model_registry_versions_metadata_and_best(project, fs, tmp_path):
    fg = new_group(fs)
    fg.insert(flowers())
    fv = fs.get_or_create_feature_view("iris", fg.select_all(), 1, labels=["variety"])
    X_train, _, y_train, _ = fv.train_test_split(0.2)
    folder = tmp_path / "iris_model"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    mr = project.get_model_registry()
    schema = ModelSchema(Schema(X_train), Schema(y_train))
    for accuracy in (0.8, 0.9, 0.85):
        model = mr.sklearn.create_model("iris_model", metrics={"accuracy": accuracy}, description="knn",
                                        input_example=X_train.head(1), model_schema=schema, feature_view=fv)
        model.save(str(folder))
    assert [m.version for m in mr.get_models("iris_model")] == [1, 2, 3]
    best = mr.get_best_model("iris_model", "accuracy", "max")
    assert (best.version, best.training_metrics, best.description) == (2, {"accuracy": 0.9}, "knn")
    assert mr.get_best_model("iris_model", "accuracy", "min").version == 1
    assert best.input_example[:2] == X_train.head(1).iloc[0].tolist()[:2]  # JSON, times as ISO text
    assert best.model_schema["input_schema"]["columnar_schema"][0]["name"] == "flower_id"
    assert best.training_dataset_version == 1
    assert best.get_feature_view().name == "iris"
    assert (folder / "model.json").read_text() == open(best.download() + "/model.json").read()
    with pytest.warns(VersionWarning):
        assert mr.get_model("iris_model").version == 1
    assert mr.get_model("iris_model", 9) is None and mr.get_best_model("other", "accuracy", "max") is None


def test_download_to_a_local_path_copies_the_files(project, tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.json").write_text("{}")
    model = project.get_model_registry().python.create_model("m1")
    model.save(str(tmp_path / "m"))
    target = model.download(str(tmp_path / "copy"))
    assert open(target + "/model.json").read() == "{}"


def test_dataset_api_round_trip(project, tmp_path):
    api = project.get_dataset_api()
    picture = tmp_path / "latest.png"
    picture.write_bytes(b"png")
    assert api.upload(str(picture), "Resources/images/iris") == "Resources/images/iris/latest.png"
    assert api.exists("Resources/images/iris/latest.png")
    with pytest.raises(OSError, match="overwrite=True"):
        api.upload(str(picture), "Resources/images/iris")
    out = api.download("Resources/images/iris/latest.png", str(tmp_path / "back.png"))
    assert open(out, "rb").read() == b"png"
    api.remove("Resources/images/iris/latest.png")
    assert not api.exists("Resources/images/iris/latest.png")


def test_version_none_warns_and_means_one(fs):
    new_group(fs).insert(flowers(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert fs.get_feature_group("iris").version == 1
    assert any(issubclass(w.category, VersionWarning) for w in caught)


def test_a_feature_view_read_back_splits_like_the_new_one(fs):
    fg = new_group(fs)
    fg.insert(flowers(40))
    query = fg.select(["petal_length", "variety"])
    created = fs.get_or_create_feature_view("iris", query, 1, labels=["variety"])
    first = created.train_test_split(0.25, primary_key=True)
    again = fs.get_or_create_feature_view("iris", query, 1, labels=["variety"])
    fetched = fs.get_feature_view("iris", 1)
    for view in (again, fetched):
        split = view.train_test_split(0.25, primary_key=True)
        pd.testing.assert_frame_equal(split[0], first[0])


def test_rows_read_back_insert_again_through_a_group_fetched_from_the_catalog(fs):
    strict = expectation_suite(spec.schema("iris"), policy="STRICT")
    new_group(fs, expectation_suite=strict).insert(datasets.load("iris"), wait=True)  # times in ns, as loaded
    fetched = fs.get_feature_group("iris", version=1)  # its suite read back from the catalog's JSON
    rows = fetched.read().sort_values("flower_id").head(3)
    assert str(rows.event_time.dtype) == "datetime64[us, UTC]"  # the unit the store reads times back in
    fetched.insert(rows.assign(petal_length=[1.1, 1.2, 1.3]), wait=True)  # a correction of three rows
    again = fetched.read().sort_values("flower_id")
    assert len(again) == 150 and again.petal_length.head(3).tolist() == [1.1, 1.2, 1.3]
    with pytest.raises(ValidationError, match="event_time"):  # still a UTC time, at whatever unit
        fetched.insert(rows.assign(event_time=rows.event_time.dt.tz_localize(None)), wait=True)
