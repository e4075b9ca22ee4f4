"""The Voila apps' logic without a browser: inputs, checks, the predict callback, the dashboard's data."""

from __future__ import annotations

import html
import re
import shutil

import nbformat
import pandas as pd
import pytest
from helpers import voila
from helpers.server_settings import voila_settings
from helpers.stores import daily_and_inference
from nbclient import NotebookClient

from serverless_ml import params
from serverless_ml.apps import dashboard_data, serving
from serverless_ml.apps.dashboard import DashboardPage, DashboardTab
from serverless_ml.apps.dashboard_data import DASHBOARD_PICTURES, read_dashboard
from serverless_ml.apps.html import dataset_tabs, open_link
from serverless_ml.apps.inputs import (
    APP_INPUTS,
    InputError,
    check_inputs,
    input_specs,
    input_widget,
    parse_input,
)
from serverless_ml.apps.links import url_parameters
from serverless_ml.apps.predictor import PredictorTab, predict_one
from serverless_ml.apps.serving import class_name, serve_models
from serverless_ml.apps.voila import apps_folder, voila_command
from serverless_ml.features import datasets
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.features.spec import DATASETS
from serverless_ml.features.spec import spec as dataset_spec
from serverless_ml.inference import batch
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.inference.images import draw_pictures
from serverless_ml.store.login import login
from serverless_ml.training import models
from serverless_ml.training.registry import load_best_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def trained(sml_home, trained_store_env):
    "A fresh copy of the session's trained store as this test's SML_HOME (no predictions yet); its project."
    shutil.copytree(trained_store_env["SML_HOME"], sml_home)
    return login("local")


# ---- inputs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset", DATASETS)
def test_every_input_has_a_label_with_its_unit_and_a_default_it_accepts(dataset):
    history = datasets.load(dataset)
    for spec in input_specs(dataset):
        name, unit = APP_INPUTS[dataset][spec.name]
        assert spec.label.startswith(name) and (unit in spec.label), spec
        assert parse_input(spec, input_widget(spec).value) == spec.default, spec
        if not spec.choices:
            assert (spec.low, spec.high) == dataset_spec(dataset).ranges[spec.name]
            assert spec.default == pytest.approx(history[spec.name].median(), abs=0.5)


def test_titanic_inputs_are_the_ones_a_person_knows():
    labels = [spec.label for spec in input_specs("titanic")]
    assert labels == ["Passenger class", "Sex", "Title", "Age (years)", "Siblings/spouses aboard (people)",
                      "Parents/children aboard (people)", "Fare, whole ticket (£)", "Port of embarkation"]
    port = input_specs("titanic")[-1]
    assert [words for words, _ in port.choices] == ["Southampton", "Cherbourg", "Queenstown"]


@pytest.mark.parametrize("typed, message", [
    ("", "Empty: enter a number from 0.1 to 100 years."),
    ("old", "'old' is not a number: enter a number from 0.1 to 100 years."),
    ("inf", "'inf' is not a number"),
    ("130", "130 is out of range: enter a number from 0.1 to 100 years."),
    ("-1", "-1 is out of range"),
])
def test_a_bad_age_is_refused_with_a_message_saying_what_to_enter(typed, message):
    age = {spec.name: spec for spec in input_specs("titanic")}["age"]
    with pytest.raises(InputError, match=re.escape(message)):
        parse_input(age, typed)


def test_app_values_within_bounds_are_accepted_by_the_feature_code():
    "Every value the app lets through builds a feature row: the app's bounds are the store's."
    for dataset in DATASETS:
        specs = input_specs(dataset)
        for pick in (0, -1):
            raw = {s.name: (s.choices[pick][1] if s.choices else str(s.low if pick == 0 else s.high)) for s in specs}
            values, problems = check_inputs(specs, raw)
            assert problems == {}
            assert len(datasets.app_row(dataset, **values)) == 1


# ---- predicting ---------------------------------------------------------------------------------

def test_predict_shows_class_probabilities_picture_and_model_like_batch_inference(trained):
    served = serve_models(DATASETS)
    for dataset in DATASETS:
        tab = PredictorTab(dataset, served[dataset])
        tab.button.click()
        spec = dataset_spec(dataset)
        values, _ = tab.checked()
        row = datasets.app_row(dataset, **values)
        expected = class_name(dataset, models.predict(dataset, served[dataset].estimator, row)[0])
        assert f'<strong class="sml-class">{expected}</strong>' in tab.result.value
        assert all(name in tab.result.value for name in spec.class_names)
        assert f"{dataset}_model version 1 (test accuracy" in tab.result.value
        assert tab.picture.value.startswith('<img class="sml-picture" alt="Drawing of the')
        assert "Traceback" not in tab.result.value + tab.status.value


def test_prediction_probabilities_sum_to_one_and_the_picture_is_a_png(trained):
    served = serve_models(("titanic",))["titanic"]
    values = {"pclass": 1, "sex": "female", "age": 30.0, "sibsp": 0, "parch": 0, "fare": 80.0, "embarked": "Cherbourg"}
    prediction = predict_one(served, values)
    assert prediction.class_name == "Survived"  # a first-class woman: most of them survived, and so says the model
    assert prediction.probabilities["Survived"] > 0.5
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0)
    assert prediction.picture.startswith(PNG_MAGIC)


def test_the_model_is_loaded_once_per_visitor_not_per_click(trained, monkeypatch):
    loads = []
    real = load_best_model
    monkeypatch.setattr(serving, "load_best_model", lambda *args, **kw: loads.append(args[1]) or real(*args, **kw))
    tab = PredictorTab("iris", serve_models(("iris",))["iris"])
    for typed in ("5.0", "6.1", "7.2"):
        tab.inputs["petal_length"].value = typed
        tab.button.click()
        assert "sml-class" in tab.result.value
    assert loads == ["iris"]


def test_a_bad_input_shows_its_message_and_no_prediction(trained):
    tab = PredictorTab("iris", serve_models(("iris",))["iris"])
    tab.button.click()
    assert tab.result.value
    tab.inputs["sepal_width"].value = "wide"
    tab.button.click()
    assert "'wide' is not a number: enter a number from 1.5 to 5 cm." in tab.notes["sepal_width"].value
    assert tab.result.value == "" and tab.picture.value == ""
    assert "Fix the 1 input(s) marked in red" in tab.status.value


def test_a_failing_prediction_shows_a_sentence_and_logs_the_details(trained, capfd, monkeypatch):
    tab = PredictorTab("iris", serve_models(("iris",))["iris"])

    def broken(*args, **kwargs):
        raise ValueError("feature mismatch in column petal_width")

    monkeypatch.setattr(models, "predict", broken)
    tab.button.click()
    assert "Sorry, this prediction failed" in tab.status.value
    assert "petal_width" not in tab.status.value and "Traceback" not in tab.status.value
    assert "Traceback" in capfd.readouterr().err


@pytest.mark.parametrize("dataset", DATASETS)
def test_the_answer_is_on_the_page_before_the_drawings_never_beside_old_ones(trained, dataset):
    tab = PredictorTab(dataset, serve_models((dataset,))[dataset])
    tab.button.click()
    assert tab.picture.value.startswith("<img") and "Why this prediction" in tab.why.value  # the first prediction's
    seen = []
    tab.result.observe(lambda change: seen.append((change.new, tab.picture.value, tab.why.value)), names="value")
    tab.result.value = ""  # so that the same answer again is a change the page is sent
    tab.button.click()
    answered = [(picture, why) for result, picture, why in seen if "sml-class" in result]
    assert len(answered) == 1
    picture, why = answered[0]
    assert "Drawing the picture" in picture and 'role="status"' in picture and "<img" not in picture
    assert "Working out why" in why and "<img" not in why
    assert tab.picture.value.startswith('<img class="sml-picture"') and 'class="sml-chart"' in tab.why.value


def test_a_failing_drawing_leaves_the_answer_and_a_sentence(trained, capfd, monkeypatch):
    from serverless_ml import pictures

    tab = PredictorTab("iris", serve_models(("iris",))["iris"])

    def broken(*args, **kwargs):
        raise RuntimeError("the font cache is gone")

    monkeypatch.setattr(pictures, "prediction_png", broken)
    tab.button.click()
    assert "sml-class" in tab.result.value and "sml-probabilities" in tab.result.value
    assert "The picture could not be drawn" in tab.picture.value and "font cache" not in tab.picture.value
    assert tab.status.value == "" and "Drawing" not in tab.picture.value + tab.why.value
    assert "the font cache is gone" in capfd.readouterr().err


def test_a_failing_explanation_leaves_the_answer_and_the_picture(trained, capfd, monkeypatch):
    from serverless_ml.training import explain

    tab = PredictorTab("iris", serve_models(("iris",))["iris"])

    def broken(*args, **kwargs):
        raise RuntimeError("the neighbours are gone")

    monkeypatch.setattr(explain, "neighbours_png", broken)
    tab.button.click()
    assert "sml-class" in tab.result.value and tab.picture.value.startswith('<img class="sml-picture"')
    assert "The explanation could not be drawn" in tab.why.value and "Working out why" not in tab.why.value
    assert "the neighbours are gone" in capfd.readouterr().err


def test_without_a_model_the_predictor_says_to_run_make_run(sml_home):
    served = serve_models(DATASETS)
    tab = PredictorTab("titanic", served["titanic"])
    assert tab.button.disabled and "make run" in tab.status.value


# ---- dashboard ----------------------------------------------------------------------------------

def test_dashboard_without_a_model_says_to_run_make_run(sml_home):
    tab = DashboardPage([DashboardTab("iris")]).shown
    assert "make run" in tab.notice.value and tab.recent.value == ""


def test_dashboard_without_predictions_says_how_to_make_some(trained):
    tab = DashboardPage([DashboardTab("titanic")]).shown
    assert "No predictions yet" in tab.notice.value and "make daily" in tab.notice.value


def test_a_dashboard_link_reads_its_own_dataset_first_and_no_other(tmp_path, monkeypatch):
    notebook = nbformat.read(apps_folder() / "dashboard.ipynb", as_version=4)
    imports = next(n for n, cell in enumerate(notebook.cells) if "from serverless_ml.apps" in cell.source)
    notebook.cells.insert(imports + 1, nbformat.v4.new_code_cell(  # count the store reads instead of making them
        "from serverless_ml.apps import dashboard as dashboard_module\n"
        "from serverless_ml.apps.dashboard_data import DashboardData\n"
        "reads = []\n"
        "dashboard_module.read_dashboard = lambda dataset, project=None: reads.append(dataset) or DashboardData(dataset)"))
    notebook.cells.append(nbformat.v4.new_code_cell("print(reads, dashboard.tabs_widget.selected_index)"))
    monkeypatch.setenv("QUERY_STRING", "dataset=titanic")  # the visit's link, as Voila hands it to the kernel
    NotebookClient(notebook, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert notebook.cells[-1].outputs[0]["text"].strip() == "['titanic'] 1"  # Iris is read only when shown


def test_dashboard_shows_counts_recent_newest_first_confusion_and_accuracy(trained):
    first = daily_and_inference(trained, "iris", n_days=4, seed=1)
    second = daily_and_inference(trained, "iris", n_days=1, seed=2)
    tab = DashboardPage([DashboardTab("iris")]).shown
    assert tab.notice.value == ""
    assert "<b>5</b> predictions" in tab.counts.value and "iris_model version 1" in tab.counts.value
    shown_ids = [int(i) for i in re.findall(r"<tr><td>[^<]*</td><td>(\d+)</td>", tab.recent.value)]
    newest_first = pd.concat([first, second]).sort_values(["event_time", "prediction_time"], ascending=False)
    assert shown_ids == newest_first.id.head(5).tolist()
    assert "Confusion matrix over the whole history" in tab.pictures["confusion_matrix.png"].value
    assert "confusion matrix over all predictions" in tab.pictures["confusion_matrix.png"].value
    for key in ("latest_prediction.png", "confusion_matrix.png", "accuracy_over_time.png"):
        assert 'src="data:image/png;base64,' in tab.pictures[key].value


def test_dashboard_shows_the_uploaded_pictures_only_while_they_show_the_current_state(trained, monkeypatch):
    add_daily_rows(trained, "iris", daily_rows("iris", 1, params.check_days(3, None), 5))
    uploaded = predict_new_rows(trained, "iris").pictures  # drawn and uploaded by the round
    drawn = []
    real = draw_pictures
    monkeypatch.setattr(dashboard_data, "draw_pictures", lambda view, names=None: drawn.append(view) or real(view, names))
    data = read_dashboard("iris", trained)
    assert drawn == []  # nothing drawn: the uploaded files were shown
    assert data.pictures == {name: uploaded[name] for name in DASHBOARD_PICTURES}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed after logging, before the upload")

    monkeypatch.setattr(batch, "upload_images", killed)
    add_daily_rows(trained, "iris", daily_rows("iris", 1, params.check_days(1, None), 6))
    with pytest.raises(KeyboardInterrupt):
        predict_new_rows(trained, "iris")  # logged; the uploaded pictures are one round old
    drawn.clear()
    data = read_dashboard("iris", trained)
    assert len(drawn) == 1 and drawn[0].n_predictions == 4  # stale files are never shown: drawn anew
    assert sorted(data.pictures) == sorted(DASHBOARD_PICTURES)


def test_refresh_shows_predictions_made_after_the_page_opened(trained):
    daily_and_inference(trained, "titanic", n_days=2, seed=3)
    tab = DashboardTab("titanic")
    page = DashboardPage([tab])
    assert "<b>2</b> predictions" in tab.counts.value
    later = daily_and_inference(trained, "titanic", n_days=1, seed=4)
    assert "<b>2</b> predictions" in tab.counts.value
    page.button.click()
    assert "<b>3</b> predictions" in tab.counts.value
    assert f"<td>{later.id.iloc[0]}</td>" in tab.recent.value


# ---- serving ------------------------------------------------------------------------------------

def test_voila_settings_hide_tracebacks_preheat_and_leave_out_prose():
    settings = voila_settings()["c"]
    assert settings.VoilaConfiguration.show_tracebacks is False
    assert settings.VoilaConfiguration.preheat_kernel is True
    assert settings.VoilaExporter.exclude_markdown is True
    assert "log" in settings.VoilaExecutor.cell_error_instruction


def test_every_cell_has_a_time_limit_but_the_one_waiting_for_a_visitor():
    settings = voila_settings()
    timeout_func, limit = settings["c"].VoilaExecutor.timeout_func, settings["CELL_TIMEOUT"]
    for app in ("predict", "dashboard", "models"):
        cells = [c for c in nbformat.read(apps_folder() / f"{app}.ipynb", as_version=4).cells
                 if c.cell_type == "code"]
        limits = [timeout_func(cell) for cell in cells]
        assert limits.count(None) == 1 and "wait_for_request()" in cells[limits.index(None)].source
        assert set(limits) == {None, limit} and 0 < limit <= 300


def test_only_the_apps_are_in_the_served_folder():
    served = sorted(p.name for p in apps_folder().iterdir() if not p.name.startswith("."))
    assert served == ["dashboard.ipynb", "models.ipynb", "predict.ipynb"]
    assert voila_command(8866)[2] == str(apps_folder())


def test_a_server_that_loses_its_port_starts_again_on_another(tmp_path, monkeypatch):
    # A port found free can be taken by another process before Voila binds it; the server then exits at once.
    import socket
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken, free = squatter.getsockname()[1], voila.free_port()
    ports = iter([taken, free])
    monkeypatch.setattr(voila, "free_port", lambda: next(ports))
    (tmp_path / "hello.ipynb").write_text(nbformat.writes(nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("hello")])))
    log = tmp_path / "voila.log"
    try:
        with voila.running_voila(tmp_path, log_path=log) as url:
            assert url == f"http://127.0.0.1:{free}"
            assert voila.answers(url + "/voila/")
    finally:
        squatter.close()
    assert "is already in use" in log.read_text()  # the first attempt met the squatter and exited


# ---- links and explanations ----------------------------------------------------------------------

def test_a_shared_link_fills_the_inputs_predicts_and_explains(trained):
    served = serve_models(DATASETS)
    predictors = {dataset: PredictorTab(dataset, served[dataset]) for dataset in DATASETS}
    tabs = dataset_tabs({dataset: tab.widget for dataset, tab in predictors.items()})
    link = "?dataset=titanic&pclass=1&sex=female&age=29&sibsp=0&parch=0&fare=211.34&embarked=C&title=Miss"
    assert open_link(tabs, predictors, url_parameters(link)) == ""
    titanic = predictors["titanic"]
    assert tabs.selected_index == 1 and titanic.inputs["title"].value == "Miss"
    assert '<strong class="sml-class">Survived</strong>' in titanic.result.value
    assert "Why this prediction" in titanic.why.value and 'alt="Bar chart: how each detail pushed' in titanic.why.value
    shown = html.unescape(re.search(r'value="([^"]*)"', titanic.link.value).group(1))
    assert url_parameters(shown) == url_parameters(link)  # the copy field gives the same link back


LADY = "?dataset=titanic&pclass=1&sex=female&age=29&sibsp=0&parch=0&embarked=C&title=Miss"


@pytest.mark.parametrize("link, said", [  # the probe's links: each was once read as a valid value
    (LADY + "&fare=1,000", "'1,000' could mean 1000 or 1.000"),  # read as fare 1: "Survived"
    (LADY.replace("age=29", "age=2_5") + "&fare=211.34", "'2_5' is not a number"),  # read as age 25
    (LADY + "&fare=211.34&age=35", "gives 'age' more than once"),  # the last value silently won
    (LADY + "&fare=211.34&" + "&".join(f"k{n}=1" for n in range(1_200)), "This link is too long"),  # an empty 400
])
def test_a_link_is_read_strictly_and_a_doubtful_one_predicts_nothing(trained, link, said):
    served = serve_models(DATASETS)
    predictors = {dataset: PredictorTab(dataset, served[dataset]) for dataset in DATASETS}
    tabs = dataset_tabs({dataset: tab.widget for dataset, tab in predictors.items()})
    notice = open_link(tabs, predictors, url_parameters(link))
    titanic = predictors["titanic"]
    assert said in notice + titanic.status.value + "".join(note.value for note in titanic.notes.values())
    assert "sml-class" not in titanic.result.value  # no prediction from a link that may not say what it meant


def test_the_title_a_visitor_picks_changes_the_prediction(trained):
    served = serve_models(("titanic",))["titanic"]
    boy = {"pclass": 2, "sex": "male", "age": 10.0, "sibsp": 1, "parch": 2, "fare": 30.0, "embarked": "Southampton"}
    guessed = predict_one(served, boy | {"title": None}).probabilities["Survived"]
    called_mister = predict_one(served, boy | {"title": "Mr"}).probabilities["Survived"]
    assert called_mister < guessed - 0.05


def test_the_dashboard_drift_section_shows_the_heatmap_alerts_and_why_after_a_drifted_round(trained):
    daily_and_inference(trained, "iris", n_days=3, seed=4)
    calm = DashboardPage([DashboardTab("iris")]).shown
    assert "No alert in the last 7 days." in calm.drift.value  # plain daily rounds stay quiet
    times = params.check_days(1, None)
    add_daily_rows(trained, "iris", daily_rows("iris", 400, times, 9, drift=1.0))
    done = predict_new_rows(trained, "iris")
    drifted = set(done.alerts[done.alerts.kind == "drift"].feature)
    assert {"petal_length", "petal_width"} <= drifted, done.alerts  # Versicolor's petals grew
    tab = DashboardPage([DashboardTab("iris")]).shown
    assert 'alt="Iris heatmap of each feature&#x27;s drift (PSI) by inference round"' in tab.drift.value
    assert "petal_length drifted: PSI" in tab.drift.value and "Alerts of the last 7 days" in tab.drift.value
    assert "Every expectation passed in every round." in tab.drift.value
