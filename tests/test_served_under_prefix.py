"""The apps behind a reverse proxy, in headless Chromium: a real server with the `make serve` settings
and `BASE_URL=/ml/` (Voila's base_url) over a temporary store where iris was trained twice and titanic
once. Every request the browser makes, WebSockets included, stays under /ml/ on this server.
Screenshots go to the test's temporary folder and, when SML_SCREENSHOTS names a folder, there too (for the README)."""

from __future__ import annotations

import http.client
from urllib.parse import urlparse

import pytest
from helpers import voila
from helpers.stores import train, using_store

from serverless_ml.apps.voila import APPS_URL_PATH
from serverless_ml.store.login import login

pytestmark = pytest.mark.browser

PREFIX = "/ml/"
RENDER_TIMEOUT_MS = 180_000  # the first visit may meet the "starting" page while the kernels preheat
APPS = ("predict", "dashboard", "models")


@pytest.fixture(scope="module")
def store_env(tmp_path_factory) -> dict:
    "The environment of a temporary store: iris trained twice, titanic once."
    home = tmp_path_factory.mktemp("prefix")
    with using_store(home) as env:
        project = login("local")
        for dataset in ("iris", "iris", "titanic"):
            train(project, dataset)
        return env


@pytest.fixture(scope="module")
def server(browser, store_env, tmp_path_factory):
    "The apps served under /ml/; yields the URL of the prefix, without the final slash."
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with voila.running_voila(env=store_env, log_path=log, base_url=PREFIX) as url:
        yield url


def watched_page(browser):
    "A fresh context and page, and the set of every URL it asks for (pages, files, WebSockets)."
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    asked = set()
    context.on("request", lambda request: asked.add(request.url))
    page = context.new_page()
    page.on("websocket", lambda socket: asked.add(socket.url))
    return context, page, asked


def escaped(asked: set, url: str) -> set:
    "The asked URLs that leave the prefix on this server (inline data: URLs aside)."
    server = urlparse(url)
    return {address for address in asked if not address.startswith("data:")
            and (urlparse(address).port != server.port or not urlparse(address).path.startswith(PREFIX))}


def test_the_index_under_the_prefix_links_every_app_and_its_link_opens_the_app(browser, server, tmp_path):
    context, page, asked = watched_page(browser)
    page.goto(server + "/", wait_until="load")
    links = page.locator("a.sml-app-link")
    hrefs = {links.nth(n).get_attribute("href") for n in range(links.count())}
    assert hrefs == {f"{PREFIX}voila/render/{app}.ipynb" for app in APPS}
    page.get_by_role("link", name="Predict").click()
    page.get_by_label("Petal length (cm)").wait_for(timeout=RENDER_TIMEOUT_MS)  # the app's inputs, rendered
    page.get_by_role("tab", name="Titanic").wait_for()
    page.screenshot(path=str(tmp_path / "predict_under_prefix.png"))
    assert urlparse(page.url).path == f"{PREFIX}voila/render/predict.ipynb"
    assert any(address.startswith("ws") for address in asked)  # the widgets talk to the kernel...
    assert escaped(asked, server) == set()  # ...and nothing leaves the prefix
    context.close()


def test_the_models_page_marks_the_version_in_use_and_shows_two_side_by_side(browser, server, shot):
    context, page, asked = watched_page(browser)
    page.goto(server + APPS_URL_PATH.format(app="models"), wait_until="commit")
    table = page.locator(".sml-versions:visible").first
    table.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert table.locator("tbody tr").count() == 2 and "★ used by batch inference" in table.inner_text()
    cards = page.locator(".sml-version-card:visible")  # the Iris tab's (the Titanic tab is hidden)
    assert cards.count() == 1  # the version in use, at first
    page.get_by_label("Versions", exact=True).filter(visible=True).select_option(label=["version 2 (in use)", "version 1"])
    cards.nth(1).wait_for()
    assert cards.count() == 2 and "Version 1" in cards.nth(1).inner_text()
    assert "no feature importance" in cards.first.inner_text()  # iris: k nearest neighbours
    shot(page, "models_page")
    assert escaped(asked, server) == set()
    context.close()


def test_a_models_link_with_dataset_titanic_opens_its_tab_with_feature_importance(browser, server, tmp_path):
    context, page, _ = watched_page(browser)
    page.goto(server + APPS_URL_PATH.format(app="models") + "?dataset=titanic", wait_until="commit")
    importance = page.locator("[aria-label='Feature importance']:visible").first
    importance.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert "sex" in importance.inner_text()
    assert page.get_by_text("Only one version of titanic_model is registered").is_visible()
    page.screenshot(path=str(tmp_path / "models_titanic.png"), full_page=True)
    context.close()


def answer(url: str, path: str) -> tuple[int, str]:
    "`(status, Location header)` of a GET of `path` on the server at `url`, redirects not followed."
    connection = http.client.HTTPConnection(urlparse(url).hostname, urlparse(url).port, timeout=60)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Location") or ""
    finally:
        connection.close()


@pytest.mark.parametrize("query", ["", "?dataset=titanic"])
def test_the_prefix_without_its_final_slash_redirects_to_the_index(server, query):
    status, location = answer(server, PREFIX.rstrip("/") + query)  # /ml, as a person types it
    assert status in (301, 302) and urlparse(location).path == PREFIX and location.endswith(PREFIX + query)


NO_PAGE = ("voila/templates/x", "voila/templates/lab/static/", "voila/templates/lab/static//",
           "voila/templates/lab/static/..%2f..%2fvoila.js", "voila/templates/lab/static/%00", "voila/render/",
           "voila/render/%00", "voila/render/notes.txt", "voila/api/contents", "voila/api/contents/",
           "voila/files/predict.ipynb")


@pytest.mark.parametrize("path", NO_PAGE)
def test_an_address_that_names_no_page_or_file_is_a_404_never_a_500(server, path):
    # malformed template and page addresses; the served folder's listing and files (no file browsing)
    assert answer(server, PREFIX + path)[0] == 404
    assert answer(server, PREFIX + "voila/templates/lab/static/voila.js")[0] == 200  # the real files still are
