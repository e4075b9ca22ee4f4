"""The container image, as `make image-test` proves it: the built image (`SML_IMAGE`) runs its server (a real
`podman run`, or `RUN_MODE=chroot`), and headless Chromium drives it as a visitor: the index, each app, a
prediction, the dashboard's pictures and the models page. Every shared link shows the same in the container as
under `make serve` on a copy of the container's own store. A visitor can neither write the store nor run code.

Skipped unless `SML_IMAGE` names a built image: `make test` never builds one (`make image-test` does, then runs this)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
import uuid

import pytest
from helpers import voila
from helpers.image import (
    built_image,
    container_log,
    copy_demo,
    healthy,
    image_config,
    image_healthcheck,
    image_size_mb,
    in_container,
    running_image,
)
from helpers.pages import CLICK_TIMEOUT_MS, RENDER_TIMEOUT_MS, no_traceback

from serverless_ml.apps.voila import APPS_URL_PATH

IMAGE = built_image()
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(IMAGE is None, reason="SML_IMAGE names no built image: run `make image-test`.")]

SIZE_GOAL_MB = 1500
NOT_IN_THE_IMAGE = ("jupyterlab", "pytest", "playwright", "ruff", "mutmut", "nbdev", "nvidia-nccl-cu12")
APPS = ("predict", "dashboard", "models")


@pytest.fixture(scope="module")
def container():
    "The image's server, started as a container host starts it; yields `(url, name)`."
    with running_image(IMAGE) as started:
        yield started


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    "`make serve` on this checkout over a copy of the image's demo store; yields its URL."
    env = copy_demo(IMAGE, tmp_path_factory.mktemp("demo"))
    with voila.running_voila(env=env, log_path=tmp_path_factory.mktemp("voila") / "voila.log") as url:
        yield url


# ---- the image --------------------------------------------------------------------------------------

def test_the_image_is_under_its_size_goal_runs_as_a_user_with_a_healthcheck_on_port_7860():
    config = image_config(IMAGE)
    assert image_size_mb(IMAGE) < SIZE_GOAL_MB
    assert config["User"] not in ("", "0", "root", "0:0")
    assert "PORT=7860" in config["Env"] and "7860/tcp" in config["ExposedPorts"]
    assert "--Voila.ip=0.0.0.0" in " ".join(config["Cmd"]) and '--port="$PORT"' in " ".join(config["Cmd"])
    assert image_healthcheck(IMAGE)[:1] == ["CMD-SHELL"]


def test_the_running_server_is_healthy_and_not_root_and_the_image_holds_the_runtime_lock_only(container):
    _, name = container
    assert in_container(name, "id", "-u").stdout.strip() not in ("", "0")
    assert healthy(name)  # the image's own HEALTHCHECK, run in it
    listed = in_container(name, "python", "-c", "import importlib.metadata as m, json; "
                          "print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))")
    installed = json.loads(listed.stdout)
    assert not set(NOT_IN_THE_IMAGE) & set(installed), set(NOT_IN_THE_IMAGE) & set(installed)
    assert {"voila", "ipykernel", "hopsworks", "xgboost", "duckdb"} <= set(installed)


def test_a_visitor_cannot_write_the_demo_store_nor_run_code(container):
    url, name = container
    denied = in_container(name, "sh", "-c", "touch /app/demo/store/visitor; echo $?")
    assert denied.stdout.strip().endswith("1") and "Permission denied" in denied.stderr
    write = ("from serverless_ml.store.local.file import connect, transaction\n"
             "with connect() as con, transaction(con): con.execute('CREATE TABLE visitor (a INT)')")
    assert in_container(name, "python", "-c", write).returncode != 0  # as the server's user: refused
    for path in ("voila/render/1_feature_pipeline.ipynb", "voila/render/../1_feature_pipeline.ipynb",
                 "voila/api/contents", "voila/files/predict.ipynb"):  # no pipeline page, no files
        try:
            urllib.request.urlopen(f"{url}/{path}", timeout=60)
            raise AssertionError(f"{path} answered")
        except urllib.error.HTTPError as refused:
            assert refused.code == 404, (path, refused.code)
    kernel, asked = visitor_kernel(url), "import pathlib; pathlib.Path('/tmp/ran').write_text('code')"
    replies = kernel_messages(url, kernel, [("kernel_info_request", {}), ("execute_request", {
        "code": asked, "silent": False, "store_history": False, "user_expressions": {}, "allow_stdin": False,
        "stop_on_error": True})])
    assert "kernel_info_reply" in replies and "execute_reply" not in replies  # widgets' messages pass, code does not
    assert in_container(name, "test", "-e", "/tmp/ran").returncode == 1
    assert 'Received message of type "execute_request", which is not allowed' in container_log(name)


def visitor_kernel(url: str) -> str:
    "The kernel id a plain visit to the predictor gets (the page carries it)."
    page = urllib.request.urlopen(url + APPS_URL_PATH.format(app="predict"), timeout=120).read().decode()
    found = re.search(r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S)
    return json.loads(found.group(1))["kernelId"]


def kernel_messages(url: str, kernel: str, sent: list[tuple[str, dict]], listen_s: float = 8) -> set[str]:
    "Send `sent` (type, content) on the kernel's WebSocket as a page would; the types of the replies heard."
    from websockets.sync.client import connect

    session, heard = uuid.uuid4().hex, set()
    with connect(f"{url.replace('http', 'ws', 1)}/api/kernels/{kernel}/channels?session_id={session}") as socket:
        for kind, content in sent:
            socket.send(json.dumps({"header": {"msg_id": uuid.uuid4().hex, "msg_type": kind, "session": session,
                                               "username": "visitor", "date": "2026-12-01T00:00:00Z", "version": "5.3"},
                                    "parent_header": {}, "metadata": {}, "content": content, "channel": "shell",
                                    "buffers": []}))
        deadline = time.monotonic() + listen_s
        while time.monotonic() < deadline:
            try:
                message = json.loads(socket.recv(timeout=1))
            except TimeoutError:
                continue
            if message.get("channel") == "shell":
                heard.add(message["header"]["msg_type"])
    return heard


# ---- in a browser ---------------------------------------------------------------------------------

def open_app(browser, url: str, app: str, query: str = ""):
    "A fresh page on `app` at `query`, once its tabs are on screen."
    page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
    page.set_default_timeout(CLICK_TIMEOUT_MS)
    page.goto(url + APPS_URL_PATH.format(app=app) + query, wait_until="commit")
    page.get_by_role("tab", name="Titanic").wait_for(timeout=RENDER_TIMEOUT_MS)
    return page


def leave(page) -> None:
    "Close the page as a person closes the tab: its kernel is shut down at once."
    page.close(run_before_unload=True)
    page.context.close()


def test_the_index_each_app_a_prediction_the_dashboard_pictures_and_the_models_page(container, browser):
    url, _ = container
    page = browser.new_context().new_page()
    page.goto(url + "/", wait_until="load")
    links = page.locator("a.sml-app-link")
    assert {links.nth(n).get_attribute("href") for n in range(links.count())} == \
        {f"/voila/render/{app}.ipynb" for app in APPS}
    page.context.close()
    predict = open_app(browser, url, "predict")
    for label, value in (("Sepal length (cm)", "6.3"), ("Sepal width (cm)", "3.3"), ("Petal length (cm)", "6.0"),
                         ("Petal width (cm)", "2.5")):
        predict.get_by_label(label).fill(value)
    predict.get_by_role("button", name="Predict").click()
    predict.locator(".sml-class:visible").wait_for()
    assert predict.locator(".sml-class:visible").inner_text() == "Virginica"
    no_traceback(predict)
    leave(predict)
    dashboard = open_app(browser, url, "dashboard")
    dashboard.locator(".sml-counts:visible").wait_for()
    for alt in ("Iris confusion matrix over all predictions", "Iris accuracy of the predictions over time",
                "Iris heatmap of each feature's drift (PSI) by inference round"):
        assert dashboard.get_by_alt_text(alt).evaluate("img => img.complete && img.naturalWidth > 100"), alt
    no_traceback(dashboard)
    leave(dashboard)
    models = open_app(browser, url, "models")
    table = models.locator(".sml-versions:visible").first
    table.wait_for()
    assert "★ used by batch inference" in table.inner_text()
    no_traceback(models)
    leave(models)


LINKS = {  # what each shared link shows: compared between the container and `make serve`
    "predict iris": ("predict", "?dataset=iris&sepal_length=6.1&sepal_width=2.8&petal_length=4.7&petal_width=1.2"),
    "predict titanic": ("predict", "?dataset=titanic&pclass=3&sex=male&age=22&sibsp=1&parch=0&fare=7.25&embarked=S"),
    "predict bad value": ("predict", "?dataset=iris&petal_length=abc"),
    "dashboard titanic": ("dashboard", "?dataset=titanic"),
    "models titanic": ("models", "?dataset=titanic"),
}
SHOWN = {"predict": ".sml-result:visible, .sml-problem:visible", "dashboard": ".sml-counts:visible",
         "models": ".sml-versions:visible"}


def what_a_link_shows(browser, url: str, app: str, query: str) -> dict:
    "The tab a link opens, its inputs' values, and the text of what it shows (the result, counts or versions)."
    page = open_app(browser, url, app, query)
    shown = page.locator(SHOWN[app]).first
    shown.wait_for()
    boxes = page.locator("input:visible").evaluate_all("boxes => boxes.map(box => box.value)")
    seen = {"tab": page.get_by_role("tab", selected=True).inner_text(), "shown": shown.inner_text(),
            "inputs": [value for value in boxes if "://" not in value]}  # the Copy link box names its own host
    if app == "dashboard":
        seen["recent"] = page.get_by_role("table", name="Most recent predictions").first.inner_text()
    leave(page)
    return seen


@pytest.mark.parametrize("link", list(LINKS))
def test_a_shared_link_shows_the_same_in_the_container_as_under_make_serve(container, local, browser, link):
    app, query = LINKS[link]
    in_the_container = what_a_link_shows(browser, container[0], app, query)
    assert in_the_container == what_a_link_shows(browser, local, app, query)
    assert in_the_container["tab"] == ("Titanic" if "titanic" in query else "Iris")


def test_with_sml_backend_hopsworks_the_apps_read_hopsworks_and_without_the_key_say_so(browser):
    variables = {"SML_BACKEND": "hopsworks", "HOPSWORKS_PROJECT": "serverless_ml_demo"}  # the key, a secret, unset
    with running_image(IMAGE, variables) as (url, name):
        page = open_app(browser, url, "predict")
        page.locator(".sml-empty:visible, .sml-problem:visible").first.wait_for()
        assert "could not be loaded" in page.inner_text("body")  # a sentence, not the demo store's model
        no_traceback(page)
        leave(page)
        assert "HOPSWORKS_API_KEY" in container_log(name)  # the server's log names what to set
