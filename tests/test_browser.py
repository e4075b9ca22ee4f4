"""The Voila apps in headless Chromium, as a visitor uses them.

A real `voila` server (conftest's `apps_server`: the `make serve` command and settings) runs on a free port
over a temporary store filled by the pipelines' stage functions (the calls the stage notebooks
make; see tests/helpers/stores.py). Playwright drives Debian's /usr/bin/chromium. Screenshots go
to the test's temporary folder, and also to $SML_SCREENSHOTS when that variable names a folder.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from contextlib import contextmanager

import pandas as pd
import pytest
from helpers.pages import CLICK_TIMEOUT_MS, RENDER_TIMEOUT_MS, drawn_width, no_traceback, refused
from helpers.stores import daily_and_inference, in_store
from playwright.sync_api import expect

from serverless_ml import params
from serverless_ml.apps.voila import APPS_URL_PATH
from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.names import predictions_name

pytestmark = pytest.mark.browser

@contextmanager
def opened(browser, apps_server: str, app: str):
    "`app` open in a fresh browser context (no cookies or storage from elsewhere), its tabs on screen; closed after."
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(CLICK_TIMEOUT_MS)
    page = context.new_page()
    page.goto(apps_server + APPS_URL_PATH.format(app=app), wait_until="commit")
    page.get_by_role("tab", name="Titanic").wait_for(timeout=RENDER_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def predictor(browser, apps_server):
    "The predictor, opened once for this module's tests (each test picks its tab and sets every input it uses)."
    with opened(browser, apps_server, "predict") as page:
        yield page


@pytest.fixture(scope="module")
def dashboard(browser, apps_server):
    "The dashboard, opened once for this module's tests."
    with opened(browser, apps_server, "dashboard") as page:
        yield page


def logged_predictions(env: dict, dataset: str) -> pd.DataFrame:
    "Every prediction logged so far in the store of `env`."
    return in_store(env, lambda project: project.get_feature_store().get_feature_group(
        predictions_name(dataset), version=1).read())


def test_iris_prediction_from_typed_measurements(predictor, shot):
    page = predictor
    page.get_by_role("tab", name="Iris").click()
    page.get_by_label("Sepal length (cm)").fill("5.1")
    page.get_by_label("Sepal width (cm)").fill("3.5")
    page.get_by_label("Petal length (cm)").fill("1.4")
    page.get_by_label("Petal width (cm)").fill("0.2")
    page.get_by_role("button", name="Predict").click()
    verdict = page.locator(".sml-class:visible")
    verdict.wait_for()
    assert verdict.inner_text() == "Setosa"
    result = page.locator(".sml-result:visible").inner_text()
    assert "Versicolor" in result and "Virginica" in result and "%" in result
    assert "iris_model version 1 (test accuracy" in result
    assert drawn_width(page.get_by_alt_text("Drawing of the iris input, predicted Setosa")) > 100
    page.locator("img.sml-chart:visible").wait_for()  # the why, drawn with the picture: in the screenshot too
    no_traceback(page)
    shot(page, "predict_iris")


def test_titanic_prediction_from_chosen_details(predictor, shot):
    page = predictor
    page.get_by_role("tab", name="Titanic").click()
    page.get_by_label("Passenger class").select_option(label="1st class")
    page.get_by_label("Sex").select_option(label="female")
    page.get_by_label("Age (years)").fill("29")
    page.get_by_label("Siblings/spouses aboard (people)").fill("0")
    page.get_by_label("Parents/children aboard (people)").fill("0")
    page.get_by_label("Fare, whole ticket (£)").fill("211.34")
    page.get_by_label("Port of embarkation").select_option(label="Cherbourg")
    page.get_by_role("button", name="Predict").click()
    verdict = page.locator(".sml-class:visible")
    verdict.wait_for()
    assert verdict.inner_text() == "Survived"  # a first-class woman, as most of them did
    result = page.locator(".sml-result:visible").inner_text()
    assert "Died" in result and "Survived" in result and "titanic_model version 1" in result
    assert drawn_width(page.get_by_alt_text(f"Drawing of the titanic input, predicted {verdict.inner_text()}")) > 100
    page.locator("img.sml-chart:visible").wait_for()  # the why, drawn with the picture: in the screenshot too
    no_traceback(page)
    shot(page, "predict_titanic")


TYPED_AND_SAID = {  # what a visitor types as the petal width, and the sentence shown beside the box
    "": "Empty: enter a number from 0.05 to 3.5 cm.",
    "thin": "'thin' is not a number: enter a number from 0.05 to 3.5 cm.",
    "42": "42 is out of range: enter a number from 0.05 to 3.5 cm.",
}


@pytest.mark.parametrize("typed", TYPED_AND_SAID)
def test_a_bad_input_shows_its_message_and_no_prediction(predictor, typed, shot):
    message = TYPED_AND_SAID[typed]
    page = predictor
    page.get_by_role("tab", name="Iris").click()
    page.get_by_label("Petal width (cm)").fill("0.2")
    page.get_by_role("button", name="Predict").click()
    page.locator(".sml-class:visible").wait_for()
    page.get_by_label("Petal width (cm)").fill(typed)
    page.get_by_role("button", name="Predict").click()
    refused(page, message)
    if typed == "thin":
        shot(page, "predict_invalid_input")


def test_dashboard_shows_pictures_table_and_confusion_matrix(dashboard, apps_store, shot):
    page = dashboard
    page.get_by_role("tab", name="Iris").click()
    logged = len(logged_predictions(apps_store, "iris"))  # 3 days of one flower each, and maybe the refresh test's
    counts = page.locator(".sml-counts:visible")
    counts.wait_for()
    if not counts.inner_text().startswith(f"{logged} "):  # the refresh test ran first and left the page behind
        page.get_by_role("button", name="Refresh").click()
        page.wait_for_function("n => document.querySelector('.sml-counts').innerText.startsWith(n + ' ')", arg=logged)
    text = page.inner_text("body")  # what is visible: the Iris tab
    assert f"{logged} predictions" in text and logged in (3, 4)
    assert "Confusion matrix over the whole history" in text
    assert "The 5 most recent predictions, newest first" in text
    table = page.get_by_role("table", name="Most recent predictions")
    expect(table.locator("tbody tr")).to_have_count(logged)  # one row per prediction, up to 5 (after the counts)
    for alt in ("Drawing of the newest flower, predicted and actual class",
                "Iris confusion matrix over all predictions", "Iris accuracy of the predictions over time"):
        assert page.get_by_alt_text(alt).evaluate("img => img.complete && img.naturalWidth > 100"), alt
    no_traceback(page)
    shot(page, "dashboard_iris")
    page.get_by_role("tab", name="Titanic").click()
    page.get_by_alt_text("Titanic confusion matrix over all predictions").wait_for()
    no_traceback(page)
    shot(page, "dashboard_titanic")


def test_a_prediction_made_after_the_page_opened_appears_after_refresh(dashboard, apps_store):
    page = dashboard
    page.get_by_role("tab", name="Iris").click()
    counts = page.locator(".sml-counts:visible")
    before = counts.inner_text()
    new = in_store(apps_store, daily_and_inference, "iris", 1, 8)
    assert counts.inner_text() == before
    page.get_by_role("button", name="Refresh").click()
    page.wait_for_function("before => document.querySelector('.sml-counts').innerText !== before", arg=before)
    assert int(counts.inner_text().split()[0]) == int(before.split()[0]) + 1
    newest = page.get_by_role("table", name="Most recent predictions").locator("tbody tr").first
    # each widget's new value reaches the page in its own message: the table may follow the counts a moment later
    expect(newest).to_contain_text(str(new.id.iloc[0]), timeout=CLICK_TIMEOUT_MS)
    no_traceback(page)


def test_pipeline_notebooks_and_sources_are_unreachable(apps_server):
    for path in ("/voila/render/1_feature_pipeline.ipynb", "/voila/render/../1_feature_pipeline.ipynb",
                 "/voila/render/%2E%2E/1_feature_pipeline.ipynb", "/voila/files/predict.ipynb",
                 "/voila/files/../apps_server/voila.py", "/voila/render/../lib/08_apps.ipynb",
                 "/voila/tree/..", "/api/contents/"):
        try:
            with urllib.request.urlopen(apps_server + path, timeout=30) as answer:
                body = answer.read().decode("utf-8", "replace")
                assert "1_feature_pipeline" not in body and "wait_for_request" not in body, path
        except urllib.error.HTTPError as refused:
            assert refused.code in (403, 404), (path, refused.code)


def drifted_round(project, dataset: str, rows: int, seed: int):
    "A daily batch of `rows` rows drifted as `make daily DRIFT=1` draws them, then the inference round."
    times = params.check_days(1, None)
    add_daily_rows(project, dataset, daily_rows(dataset, rows, times, seed, drift=1.0))
    return predict_new_rows(project, dataset)


def test_the_drift_section_shows_the_heatmap_and_the_alert_after_drifted_rounds(dashboard, apps_store, shot):
    page = dashboard
    done = in_store(apps_store, drifted_round, "titanic", 400, 21)
    assert (done.alerts.kind == "drift").any(), done.alerts  # the round itself raised it
    page.get_by_role("tab", name="Titanic").click()
    page.get_by_role("button", name="Refresh").click()
    heatmap = page.get_by_alt_text("Titanic heatmap of each feature's drift (PSI) by inference round")
    heatmap.wait_for()
    assert heatmap.evaluate("img => img.complete && img.naturalWidth > 300")
    alerts = page.get_by_role("table", name="Alerts of the last 7 days")
    feature = done.alerts[done.alerts.kind == "drift"].feature.iloc[0]
    assert f"{feature} drifted: PSI" in alerts.inner_text()
    page.locator("h3:visible", has_text="Data quality: failed expectations").wait_for()
    no_traceback(page)
    shot(page, "dashboard_drift")
