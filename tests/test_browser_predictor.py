"""The predictor's links, explanations and title input in headless Chromium, as a visitor uses them.

The server and its filled temporary store are conftest's (`apps_store`, `apps_server`): a real `voila`
with the `make serve` settings. Each test opens its own page, most of them from a link. Screenshots
go under the test's temporary folder and, when SML_SCREENSHOTS names a folder, there too (for the README).
"""

from __future__ import annotations

import re

import pytest
from helpers.pages import CLICK_TIMEOUT_MS, RENDER_TIMEOUT_MS, drawn_width, no_traceback, refused

from serverless_ml.apps.voila import APPS_URL_PATH

pytestmark = pytest.mark.browser

IRIS_LINK = "?dataset=iris&sepal_length=5.1&sepal_width=3.5&petal_length=1.4&petal_width=0.2"
TITANIC_LINK = "?dataset=titanic&pclass=1&sex=female&age=29&sibsp=0&parch=0&fare=211.34&embarked=C&title=Miss"


@pytest.fixture
def visit(browser, apps_server):
    "Open an app at a query string in a fresh browser context that may use the clipboard; closed after the test."
    opened = []

    def open_page(app: str, query: str = ""):
        context = browser.new_context(viewport={"width": 1280, "height": 1000},
                                      permissions=["clipboard-read", "clipboard-write"])
        context.set_default_timeout(CLICK_TIMEOUT_MS)
        page = context.new_page()
        opened.append((context, page))
        page.goto(apps_server + APPS_URL_PATH.format(app=app) + query, wait_until="commit")
        page.get_by_role("tab", name="Titanic").wait_for(timeout=RENDER_TIMEOUT_MS)
        return page

    yield open_page
    for context, page in opened:  # as a person closing the tab: its kernel is shut down at once, not culled later,
        page.close(run_before_unload=True)  # so this module's many visits stay under the server's kernel cap
        context.close()


def shown_tab(page) -> str:
    return page.get_by_role("tab", selected=True).inner_text()


def survival(page) -> float:
    "The Survived probability the visible result shows, in percent."
    row = page.locator(".sml-probabilities:visible tr", has_text="Survived")
    return float(re.search(r"([\d.]+) %", row.inner_text()).group(1))


def test_a_shared_iris_link_fills_the_inputs_predicts_and_shows_the_flowers_that_voted(visit, shot):
    page = visit("predict", IRIS_LINK)
    assert shown_tab(page) == "Iris"
    page.locator(".sml-class:visible").wait_for()
    assert page.locator(".sml-class:visible").inner_text() == "Setosa"
    typed = [page.get_by_label(label).input_value() for label in
             ("Sepal length (cm)", "Sepal width (cm)", "Petal length (cm)", "Petal width (cm)")]
    assert typed == ["5.1", "3.5", "1.4", "0.2"]
    plane = page.get_by_alt_text(re.compile("The training flowers by petal length and width"))
    assert drawn_width(plane) > 300  # the why comes after the answer: wait for it before reading it
    assert page.get_by_text("Why this prediction").is_visible()
    voters = page.get_by_role("table", name="The nearest training flowers").locator("tbody tr")
    assert voters.count() >= 1 and all("Setosa" in text for text in voters.all_inner_texts())
    no_traceback(page)
    shot(page, "predict_link_iris")


def test_a_shared_titanic_link_opens_its_tab_with_the_title_and_the_pushes_chart(visit, shot):
    page = visit("predict", TITANIC_LINK)
    assert shown_tab(page) == "Titanic"
    page.locator(".sml-class:visible").wait_for()
    assert page.locator(".sml-class:visible").inner_text() == "Survived"
    assert page.get_by_label("Title", exact=True).input_value() == "Miss"
    assert page.get_by_label("Port of embarkation").input_value() == "Cherbourg"
    assert page.get_by_label("Fare, whole ticket (£)").input_value() == "211.34"
    assert drawn_width(page.get_by_alt_text("Bar chart: how each detail pushed the prediction Survived")) > 300
    no_traceback(page)
    shot(page, "predict_why_titanic")


LINKS_AND_SAID = {  # a shared link with one bad value, and the sentence shown beside that value's box
    "?dataset=iris&petal_width=thin": "'thin' is not a number: enter a number from 0.05 to 3.5 cm.",
    "?dataset=iris&sepal_length=42": "42 is out of range: enter a number from 3 to 9 cm.",
    "?dataset=titanic&embarked=Belfast": "'Belfast' is not one of the choices. Choose one of Southampton, Cherbourg, "
                                         "Queenstown.",
}


@pytest.mark.parametrize("query", LINKS_AND_SAID)
def test_a_bad_value_in_a_link_shows_the_fields_message_and_no_prediction(visit, shot, query):
    page = visit("predict", query)
    refused(page, LINKS_AND_SAID[query])
    if "Belfast" in query:
        shot(page, "predict_link_bad_value")


def test_a_key_the_tab_does_not_take_is_named_not_ignored(visit):
    page = visit("predict", "?dataset=iris&sepal_length=5.1&petal_lenght=1.4")
    page.get_by_text("The link has petal_lenght, which this tab does not take").wait_for()
    assert page.locator(".sml-class:visible").count() == 0


@pytest.mark.parametrize("app", ["predict", "dashboard"])
def test_the_dataset_in_a_link_opens_its_tab(visit, app):
    page = visit(app, "?dataset=titanic")
    assert shown_tab(page) == "Titanic"
    if app == "dashboard":
        page.get_by_alt_text("Titanic confusion matrix over all predictions").wait_for()
    page = visit(app, "?dataset=penguins")
    page.get_by_text("The link asks for dataset 'penguins', which this page does not have").wait_for()
    assert "use dataset=iris or dataset=titanic" in page.inner_text("body") and shown_tab(page) == "Iris"


def test_the_title_a_visitor_picks_changes_the_prediction(visit, shot):
    page = visit("predict", "?dataset=titanic&pclass=2&sex=male&age=10&sibsp=1&parch=2&fare=30&embarked=S")
    page.locator(".sml-class:visible").wait_for()
    assert page.get_by_label("Title", exact=True).input_value() == "guessed from sex and age"
    guessed = survival(page)
    page.get_by_label("Title", exact=True).select_option(label="Mr")
    page.get_by_text("Inputs changed: press Predict for a new prediction.").wait_for()
    page.get_by_role("button", name="Predict").click()
    page.locator(".sml-class:visible").wait_for()
    assert survival(page) < guessed - 5
    page.locator("img.sml-chart:visible").wait_for()  # the why follows the answer: in the screenshot too
    shot(page, "predict_title")


def test_copy_link_gives_a_link_that_reproduces_the_prediction(visit, apps_server):
    page = visit("predict")
    page.get_by_role("tab", name="Titanic").click()
    page.get_by_label("Passenger class").select_option(label="1st class")
    page.get_by_label("Sex").select_option(label="female")
    page.get_by_label("Title", exact=True).select_option(label="Mrs")
    page.get_by_label("Age (years)").fill("38")
    page.get_by_label("Port of embarkation").select_option(label="Cherbourg")
    page.get_by_role("button", name="Predict").click()
    page.locator(".sml-class:visible").wait_for()
    verdict, chance = page.locator(".sml-class:visible").inner_text(), survival(page)
    field = page.get_by_label("Link to these inputs (titanic)")
    link = field.input_value()
    assert link.startswith("?dataset=titanic&pclass=1&sex=female&title=Mrs&age=38&") and "embarked=C" in link
    page.get_by_role("button", name="Copy link").click()
    page.get_by_role("button", name="Copied").wait_for()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == apps_server + APPS_URL_PATH.format(app="predict") + link
    again = visit("predict", link)
    again.locator(".sml-class:visible").wait_for()
    assert (again.locator(".sml-class:visible").inner_text(), survival(again)) == (verdict, chance)
