"""The original Hopsworks lab's Iris scripts (serverless-ml-course, module 1), run against the local backend.

The scripts below follow the lab's feature, training and batch-inference scripts call for call. Two lines
differ: `hopsworks.login()` becomes our `login()` (the one change the store promises), and the lab's
`joblib.dump`/`joblib.load` become skops, because the registry refuses pickle and joblib files by design
(ARCHITECTURE.md: "no pickle or joblib from the registry"); the last test shows the lab's joblib line
refused with the error a user would read. The lab read its CSV from repo.hops.works; here the same
columns come from scikit-learn's copy, since tests have no network."""

from __future__ import annotations

import datetime
import textwrap

import pytest
from sklearn.datasets import load_iris

from serverless_ml.store import model_files
from serverless_ml.store.login import login

LOGIN = "from serverless_ml.store.login import login\nproject = login()\n"  # the lab: import hopsworks; hopsworks.login()

FEATURE = LOGIN + """
import pandas as pd
fs = project.get_feature_store()
iris_df = pd.read_csv("iris.csv")
iris_fg = fs.get_or_create_feature_group(
    name="iris_modal",
    version=1,
    primary_key=["sepal_length","sepal_width","petal_length","petal_width"],
    description="Iris flower dataset")
iris_fg.insert(iris_df)
"""

TRAINING = LOGIN + """
import os
import pandas as pd
import seaborn as sns
import skops.io as sio
from sklearn.neighbors import KNeighborsClassifier
from sklearn.metrics import confusion_matrix, classification_report
from hsml.schema import Schema
from hsml.model_schema import ModelSchema

fs = project.get_feature_store()
feature_view = fs.get_feature_view(name="iris_modal", version=1)
if feature_view is None:  # Hopsworks 5.2 returns None here (the lab's older SDK raised)
    iris_fg = fs.get_feature_group(name="iris_modal", version=1)
    query = iris_fg.select_all()
    feature_view = fs.create_feature_view(name="iris_modal",
                                          version=1,
                                          description="Read from Iris flower dataset",
                                          labels=["variety"],
                                          query=query)
X_train, X_test, y_train, y_test = feature_view.train_test_split(0.2)

model = KNeighborsClassifier(n_neighbors=2)
model.fit(X_train, y_train.values.ravel())
y_pred = model.predict(X_test)
metrics = classification_report(y_test, y_pred, output_dict=True)
results = confusion_matrix(y_test, y_pred)
df_cm = pd.DataFrame(results, ['True Setosa', 'True Versicolor', 'True Virginica'],
                     ['Pred Setosa', 'Pred Versicolor', 'Pred Virginica'])
cm = sns.heatmap(df_cm, annot=True)
fig = cm.get_figure()

mr = project.get_model_registry()
model_dir = "iris_model"
if os.path.isdir(model_dir) == False:
    os.mkdir(model_dir)
sio.dump(model, model_dir + "/iris_model.skops")  # the lab: joblib.dump(model, model_dir + "/iris_model.pkl")
fig.savefig(model_dir + "/confusion_matrix.png")
input_schema = Schema(X_train)
output_schema = Schema(y_train)
model_schema = ModelSchema(input_schema, output_schema)
iris_model = mr.python.create_model(
    name="iris_modal",
    metrics={"accuracy" : metrics['accuracy']},
    model_schema=model_schema,
    description="Iris Flower Predictor")
iris_model.save(model_dir)
"""

BATCH = LOGIN + """
from datetime import datetime
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import skops.io as sio

fs = project.get_feature_store()
mr = project.get_model_registry()
model = mr.get_model("iris_modal", version=1)
model_dir = model.download()
model = sio.load(model_dir + "/iris_model.skops",
                 trusted=sio.get_untrusted_types(file=model_dir + "/iris_model.skops"))  # the lab: joblib.load

feature_view = fs.get_feature_view(name="iris_modal", version=1)
batch_data = feature_view.get_batch_data()
y_pred = model.predict(batch_data)
offset = 1
flower = y_pred[y_pred.size-offset]
plt.figure().savefig("./latest_iris.png")
dataset_api = project.get_dataset_api()
dataset_api.upload("./latest_iris.png", "Resources/images", overwrite=True)

iris_fg = fs.get_feature_group(name="iris_modal", version=1)
df = iris_fg.read()
label = df.iloc[-offset]["variety"]

monitor_fg = fs.get_or_create_feature_group(name="iris_predictions",
                                            version=1,
                                            primary_key=["datetime"],
                                            description="Iris flower Prediction/Outcome Monitoring")
now = datetime.now().strftime("%m/%d/%Y, %H:%M:%S")
data = {
    'prediction': [flower],
    'label': [label],
    'datetime': [now],
}
monitor_df = pd.DataFrame(data)
monitor_fg.insert(monitor_df, write_options={"wait_for_job" : False})
history_df = monitor_fg.read()
history_df = pd.concat([history_df, monitor_df])
df_recent = history_df.tail(4)
"""


@pytest.fixture
def lab(sml_home, tmp_path, monkeypatch):
    "A working folder like the lab's, with its iris.csv (sepal_length ... petal_width, variety)."
    monkeypatch.chdir(tmp_path)
    iris = load_iris(as_frame=True)
    frame = iris.data.set_axis(["sepal_length", "sepal_width", "petal_length", "petal_width"], axis=1)
    frame["variety"] = iris.target.map(dict(enumerate(["Setosa", "Versicolor", "Virginica"])))
    frame.to_csv("iris.csv", index=False)
    return tmp_path


def run(script: str) -> dict:
    "Execute one lab script as `python script.py` would; its globals afterwards."
    namespace = {"__name__": "__main__"}
    exec(compile(textwrap.dedent(script), "lab_script.py", "exec"), namespace)
    return namespace


def run_at(when: str, script: str, monkeypatch) -> dict:
    "Execute a lab script with `datetime.now()` stopped at `when` (the lab reads the clock that way)."
    stopped = datetime.datetime.fromisoformat(when)

    class Clock(datetime.datetime):
        "The standard library's datetime, whose now() is `when`."

        @classmethod
        def now(cls, tz=None):
            return stopped

    with monkeypatch.context() as patch:
        patch.setattr(datetime, "datetime", Clock)
        return run(script)


def test_the_lab_scripts_run_on_the_local_backend(lab, monkeypatch):
    run(FEATURE)
    project = login()
    fs = project.get_feature_store()
    # the lab keyed rows on their feature values: the two duplicate flowers collapse, as on Hopsworks
    assert len(fs.get_feature_group("iris_modal", version=1).read()) == 149

    trained = run(TRAINING)
    assert len(trained["X_train"]) + len(trained["X_test"]) == 149
    registered = project.get_model_registry().get_model("iris_modal", version=1)
    assert registered.training_metrics["accuracy"] == pytest.approx(trained["metrics"]["accuracy"])
    assert 0.8 < registered.training_metrics["accuracy"] <= 1.0

    batch = run_at("2026-11-20 08:00:00", BATCH, monkeypatch)
    assert len(batch["y_pred"]) == 149 and set(batch["y_pred"]) <= {"Setosa", "Versicolor", "Virginica"}
    assert project.get_dataset_api().exists("Resources/images/latest_iris.png")
    assert list(batch["history_df"].columns) == ["prediction", "label", "datetime"]
    assert len(fs.get_feature_group("iris_predictions", version=1).read()) == 1
    # the lab keyed predictions on the time, to the second: a rerun in the same second replaces its row,
    run_at("2026-11-20 08:00:00", BATCH, monkeypatch)
    assert fs.get_feature_group("iris_predictions", version=1).read().datetime.tolist() == ["11/20/2026, 08:00:00"]
    run_at("2026-11-21 08:00:00", BATCH, monkeypatch)  # and the next day's run adds one
    assert fs.get_feature_group("iris_predictions", version=1).read().datetime.tolist() == [
        "11/20/2026, 08:00:00", "11/21/2026, 08:00:00"]


def test_the_labs_joblib_model_is_refused_with_the_way_out(lab):
    run(FEATURE)
    script = TRAINING.replace('sio.dump(model, model_dir + "/iris_model.skops")',
                              'import joblib\njoblib.dump(model, model_dir + "/iris_model.pkl")')
    with pytest.raises(model_files.UntrustedModelError, match=r"iris_model\.pkl.*skops") as refused:
        run(script)
    assert "arbitrary code" in str(refused.value)
    assert login().get_model_registry().get_models("iris_modal") == []  # nothing half-registered
