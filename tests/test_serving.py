"""Served apps stay bounded in memory, turn visitors away politely when full but never for a request that
starts no kernel, free a kernel no page connects to within seconds, and load nothing from another host.

Real `voila` servers (the `make serve` command and settings, notebooks/apps_server/voila.py) run on
free ports over a temporary store, with a shorter unconnected timeout given on the command line (the idle
culling keeps the server's 5 minutes, so only the unconnected rule can free a kernel within a test). The
kernels are the server process's children, the server's memory is the resident memory of the server
and its children (`helpers.voila.kernel_count`, `resident_memory`). Every wait is a bounded loop that
stops as soon as its condition holds.
"""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request
from html.parser import HTMLParser
from types import SimpleNamespace
from urllib.parse import urlparse

import nbformat
import pytest
from helpers import voila
from helpers.server_settings import voila_settings
from helpers.stores import copy_store

from serverless_ml.apps.voila import APPS_URL_PATH

APPS = ("predict", "dashboard")
POOL = sum(voila_settings()["POOL_SIZES"].values())  # preheated kernels at rest, every app's pool
CAP = POOL + 3  # the shared server's cap, given on its command line: the pool and 3 visitors (the server's own: 12)
# One visit per place, each to a ready preheated kernel (the predictor's pool holds 3, the dashboard's 1): after
# these, a predictor visit finds a ready kernel and no place, so the gate answers "busy", not "starting".
PLACE_VISITS = ("predict", "predict", "dashboard")
UNCONNECTED_S = 8  # the tests' unconnected timeout, looked at every second (the server's own: 30 s, every 5 s)
CULL_INTERVAL_S = 1
CULLING = (f"--BoundedKernelManager.unconnected_timeout={UNCONNECTED_S}",
           f"--MappingKernelManager.cull_interval={CULL_INTERVAL_S}")
UNCONNECTED_LOG = "no page has been connected to it"  # what the server logs when the unconnected rule shuts one down
SLACK_S = 90  # on a busy 2-core machine a kernel takes seconds to start or stop
MEMORY_TOLERANCE = 1.2  # back to rest: at most 20 % above the resting memory (the server's own heap may grow)
READY = {"predict": ".sml-page >> text=Predict", "dashboard": ".sml-counts"}
RENDER_TIMEOUT_MS = 120_000


# ---- servers ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served_env(filled_store_env, tmp_path_factory) -> dict:
    "A copy of the session's filled store: both models and 3 days of predictions."
    return copy_store(filled_store_env, tmp_path_factory.mktemp("serving"))


def at_rest(server) -> int:
    "The server's memory once only the preheated kernels run and their imports are done."
    count, memory = voila.settle(server, POOL, timeout=300)
    assert count == POOL, f"The server never came to rest: {count} kernels, {memory >> 20} MiB"
    return memory


def back_to_rest(server) -> tuple[int, int]:
    "`(kernels, memory)` once the visitors' kernels are shut down, or when the unconnected timeout (and slack) has passed."
    return voila.settle(server, POOL, timeout=UNCONNECTED_S + CULL_INTERVAL_S + SLACK_S)


@pytest.fixture(scope="module")
def served(served_env, tmp_path_factory):
    """The apps on a real server with the `make serve` settings, an 8-second unconnected timeout and room for 3
    visitors (`CAP`); yields (url, process, resting memory, log file)."""
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with voila.running_voila(env=served_env, log_path=log, options=(*CULLING, f"--BoundedKernelManager.max_kernels={CAP}")) as url:
        process = voila.voila_process(url)
        yield url, process, at_rest(process), log


@pytest.fixture
def server(served):
    "`served` without its log: (url, process, resting memory)."
    return served[:3]


def unconnected_shutdowns(log, since: int) -> int:
    "How many kernels the server shut down for having no page connected, in its log after byte `since`."
    return log.read_text(errors="replace")[since:].count(UNCONNECTED_LOG)


# ---- visiting -----------------------------------------------------------------------------------

def get(url: str) -> tuple[int, str]:
    "`(status, body)` of a plain HTTP GET, as curl or a crawler makes it."
    try:
        with urllib.request.urlopen(url, timeout=RENDER_TIMEOUT_MS / 1000) as answer:
            return answer.status, answer.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode("utf-8", "replace")


def page_url(url: str, app: str) -> str:
    "The address of `app` on the server at `url`."
    return url + APPS_URL_PATH.format(app=app)


PLAIN_GETS = 12  # a crawler, a link preview, curl: none of them connects to the kernel or says goodbye


def test_plain_gets_hold_no_kernel_past_the_unconnected_timeout(served):
    url, process, rest, log = served
    at_rest(process)  # no earlier visitor holds a place
    since, peak, served_visits = log.stat().st_size, 0, 0
    for n in range(PLAIN_GETS):
        status, body = get(page_url(url, APPS[n % len(APPS)]))
        assert status in (200, 503), (n, status, body[:500])  # an app page, or the starting or busy page
        assert "Traceback" not in body
        served_visits += status == 200
        peak = max(peak, voila.kernel_count(process))
    refills_started = time.monotonic() + voila_settings()["REFILL_DELAY"] + 10  # the pools refill a little later
    while time.monotonic() < refills_started:
        peak = max(peak, voila.kernel_count(process))
        time.sleep(0.5)
    assert served_visits >= len(PLACE_VISITS)  # every place went to a visit
    assert POOL < peak <= CAP  # visits ran kernels of their own, never more than the cap
    count, after = back_to_rest(process)
    assert count == POOL, f"{count} kernels still run after the unconnected timeout (at rest: {POOL})"
    # idle culling takes the server's 5 minutes here: each visit's kernel went by the unconnected rule
    assert unconnected_shutdowns(log, since) == served_visits
    assert after <= MEMORY_TOLERANCE * rest, f"{after >> 20} MiB after the visits, {rest >> 20} MiB at rest"
    assert get(page_url(url, "dashboard"))[0] == 200  # the places are free again


MISSING_PAGES = 100


def test_requests_for_missing_pages_hold_no_place(server):
    url, process, _ = server
    at_rest(process)
    answers = {get(url + APPS_URL_PATH.format(app=f"nope{n}"))[0] for n in range(MISSING_PAGES)}
    assert answers == {404}  # never "busy": a request that starts no kernel takes no place
    assert voila.kernel_count(process) == POOL
    status, body = get(page_url(url, "predict"))
    assert status == 200 and "The apps are busy" not in body, body[:500]  # the next real visit is served


# ---- nothing from another host ------------------------------------------------------------------

class Links(HTMLParser):
    "Every address a page makes the browser load: src and href attributes, script imports, CSS url()."

    def __init__(self):
        super().__init__()
        self.addresses = []

    def handle_starttag(self, tag, attrs):
        self.addresses += [value for name, value in attrs if name in ("src", "href") and value]

    def handle_data(self, data):
        self.addresses += re.findall(r"""(?:import\(|url\()\s*["']?([^"')\s]+)""", data)


def foreign_hosts(body: str) -> set[str]:
    "Hosts other than this server that `body` loads anything from."
    links = Links()
    links.feed(body)
    return {urlparse(address).hostname for address in links.addresses
            if urlparse(address).hostname not in (None, "127.0.0.1")}


def test_pages_load_nothing_from_another_host(server):
    url, process, _ = server
    at_rest(process)  # earlier visitors' kernels culled: the three pages below each take one of the 3 places
    pages = {app: get(page_url(url, app)) for app in APPS}
    pages["list of apps"] = get(url + "/voila/")
    pages["missing page"] = get(url + "/voila/render/missing.ipynb")
    for name, (status, body) in pages.items():
        assert status in (200, 404), (name, status)
        assert foreign_hosts(body) == set(), name
    assert "fontawesome" not in pages["predict"][1].lower()  # the icons come from Voila's own bundle


# ---- the cap ------------------------------------------------------------------------------------

def test_the_gate_counts_kernels_and_holds_a_visit_s_place_only_until_it_takes_its_kernel_or_ends(monkeypatch):
    settings = voila_settings()
    loop = asyncio.new_event_loop()
    manager = settings["BoundedKernelManager"](max_kernels=3)
    ready, refill = preheating(loop, "ready"), preheating(loop, "starting")
    manager._pools = {"predict.ipynb": [ready]}  # one preheated kernel, counted among the running ones below
    monkeypatch.setattr(type(manager), "__len__", lambda self: 1)
    missing, visit, third = object(), object(), object()
    assert manager.admit(missing, "nope.ipynb") and manager.admit(visit, "predict.ipynb")
    assert manager.places() == {"running": 1, "starting": 0, "preheating": 0, "admitted": 2}
    assert not manager.admit(third, "predict.ipynb")  # 3 places taken: busy
    manager.release(missing)  # the missing page's 404 is sent: its place is free at once
    assert manager.admit(third, "predict.ipynb")
    manager.release(third)
    manager._pools["predict.ipynb"] = [refill]  # the visit takes its kernel; the refill waits to start
    assert manager.places() == {"running": 1, "starting": 0, "preheating": 1, "admitted": 0}
    later = time.monotonic() + settings["ADMISSION_SECONDS"] + 1
    assert manager.admit(third, "nope.ipynb")
    monkeypatch.setattr(time, "monotonic", lambda: later)  # a request that never ended: its place is free again
    assert manager.places()["admitted"] == 0
    loop.close()


def preheating(loop, state: str):
    "A pool entry as Voila keeps it: a kernel `starting`, `importing` (before the visitor's cell) or `ready`."
    entry = loop.create_future()
    if state != "starting":
        waiting = nbformat.v4.new_code_cell("wait_for_request()")
        if state == "ready":
            waiting.metadata["execution"] = {"iopub.status.busy": "2026-11-30T05:00:00Z"}
        cells = [nbformat.v4.new_code_cell("from serverless_ml.apps.voila import wait_for_request"), waiting]
        entry.set_result({"renderer": SimpleNamespace(executor=SimpleNamespace(nb=SimpleNamespace(cells=cells)))})
    return entry


def test_a_visit_takes_a_ready_kernel_first_and_with_none_ready_gets_the_starting_page():
    ready_first = voila_settings()["ready_first"]
    loop = asyncio.new_event_loop()
    pool = [preheating(loop, "starting"), preheating(loop, "importing")]
    manager = SimpleNamespace(_pools={"predict.ipynb": pool})
    assert not ready_first(manager, "predict.ipynb")  # the gate answers "The app is starting" (503)
    ready = preheating(loop, "ready")
    pool.append(ready)
    assert ready_first(manager, "predict.ipynb") and pool[0] is ready  # Voila hands out pool[0]
    assert ready_first(manager, "notes.ipynb")  # no pool: the visit starts a kernel of its own
    loop.close()


def test_the_pools_grow_to_their_sizes_only_once_every_app_has_its_first_kernel_ready():
    settings = voila_settings()
    loop = asyncio.new_event_loop()
    filled = []
    manager = SimpleNamespace(_pools={"predict.ipynb": [preheating(loop, "ready")],
                                      "dashboard.ipynb": [preheating(loop, "importing")]},
                              kernel_pools_config={"default": {"pool_size": 1}},
                              fill_if_needed=lambda delay, notebook_name: filled.append(notebook_name))
    assert not settings["grow_pools"](manager) and filled == []  # the dashboard's first kernel comes first
    manager._pools["dashboard.ipynb"] = [preheating(loop, "ready")]
    assert settings["grow_pools"](manager)
    assert manager.kernel_pools_config["predict.ipynb"] == {"pool_size": settings["POOL_SIZES"]["predict.ipynb"]}
    assert sorted(filled) == ["dashboard.ipynb", "predict.ipynb"]  # only the apps this server serves
    loop.close()


def test_a_visitor_over_the_cap_gets_a_busy_page_then_a_place(served):
    url, process, _, log = served
    at_rest(process)  # no visitor holds a place
    answers = []
    for app in (*PLACE_VISITS, "predict"):  # the places, then one visit more
        answers.append(get(page_url(url, app)))
        if answers[-1][0] == 503:
            break
    status, body = answers[-1]
    assert answers[0][0] == 200 and status == 503, [s for s, _ in answers]  # places first, then turned away
    assert "The apps are busy" in body and "try again in a minute" in body
    assert "Traceback" not in body and "Error" not in body
    assert foreign_hosts(body) == set()
    assert voila.kernel_count(process) <= CAP
    deadline = time.monotonic() + UNCONNECTED_S + CULL_INTERVAL_S + SLACK_S
    while status == 503 and time.monotonic() < deadline:  # until a visitor's kernel is shut down
        time.sleep(2)
        status, body = get(page_url(url, "dashboard"))
    assert status == 200, body[:500]  # the freed place goes to the next visitor
    assert voila.kernel_count(process) <= CAP
    assert "never awaited" not in log.read_text(errors="replace")  # the 503 pages leave no coroutine behind


# ---- in a browser -------------------------------------------------------------------------------

def kernel_of(page) -> str:
    "The id of the kernel behind the app open in `page`."
    return page.evaluate("JSON.parse(document.getElementById('jupyter-config-data').textContent).kernelId")


def visit(browser, url: str, app: str) -> set[str]:
    "Open `app` in a fresh context until it is on screen, then leave; the hosts other than the server it asked."
    context = browser.new_context()
    asked = set()
    context.on("request", lambda request: asked.add(urlparse(request.url).hostname))
    page = context.new_page()
    page.goto(page_url(url, app), wait_until="commit")
    page.locator(READY[app]).first.wait_for(timeout=RENDER_TIMEOUT_MS)
    context.close()  # the page just goes: its socket closes and the culler frees the kernel
    return asked - {"127.0.0.1", None}


@pytest.mark.browser
def test_browser_visits_leave_no_kernel_behind(server, browser):
    url, process, rest = server
    at_rest(process)  # every earlier visitor's kernel culled, the pools refilled
    for app in PLACE_VISITS:  # one visit to each place the cap leaves to visitors; the pools refill behind them
        assert visit(browser, url, app) == set(), app  # hosts other than the server the page asked
        assert voila.kernel_count(process) <= CAP
    count, after = back_to_rest(process)  # a gone page's kernel kept would hold a place past the unconnected timeout
    assert count == POOL, f"{count} kernels still run after the unconnected timeout (at rest: {POOL})"
    assert after <= MEMORY_TOLERANCE * rest, f"{after >> 20} MiB after the visits, {rest >> 20} MiB at rest"


# ---- servers of their own -----------------------------------------------------------------------

class TestOwnServers:
    "Tests that start a server of their own: a class, so `--dist loadscope` can run them beside the shared server's."

    @pytest.mark.browser
    def test_the_first_visit_once_the_server_answers_gets_the_app_for_its_own_link(self, first_visit):
        assert first_visit.status == 200  # the app itself, not the 503 "The app is starting" page
        # the preheated kernel waited for this visitor (their query string), not for no one
        assert first_visit.tab == "Titanic" and first_visit.age == "29"

    @pytest.mark.browser
    def test_closing_the_tab_shuts_its_kernel_down(self, first_visit):
        log = first_visit.log
        first_visit.page.close(run_before_unload=True)  # as a person closing the tab: the page says goodbye
        deadline = time.monotonic() + SLACK_S
        while f"Kernel shutdown: {first_visit.kernel}" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(1)
        text = log.read_text()
        assert f"Kernel shutdown: {first_visit.kernel}" in text
        assert "_xsrf' argument missing" not in text


@pytest.fixture(scope="class")
def first_visit(browser, served_env, tmp_path_factory):
    """The first visit to a server of its own, made as soon as it answers, to a shared Titanic link; what it saw,
    and its page still open. The server culls nothing (an hour's idle time): only a closed tab shuts a kernel down."""
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    options = ("--MappingKernelManager.cull_idle_timeout=3600",)
    with voila.running_voila(env=served_env, log_path=log, options=options) as url:  # it answers: first visit
        page = browser.new_context().new_page()
        answer = page.goto(page_url(url, "predict") + "?dataset=titanic&pclass=1&sex=female&age=29", wait_until="commit")
        page.locator(".sml-class:visible").wait_for(timeout=RENDER_TIMEOUT_MS)
        yield SimpleNamespace(status=answer.status, tab=page.get_by_role("tab", selected=True).inner_text(),
                              age=page.get_by_label("Age (years)").input_value(), kernel=kernel_of(page),
                              page=page, log=log)
        page.context.close()


# ---- one person, page after page ----------------------------------------------------------------

PERSON_PAGES = 15  # pages one person opens in a row in one tab, each until its input is on screen
# in the proportions of the pools (predictor 3, the others 1), so each page finds a preheated kernel as often as can be
PERSON_ROUND = ("predict", "dashboard", "predict", "models", "predict")
LIGHT_APP = """from serverless_ml.apps.voila import wait_for_request
wait_for_request()
import ipywidgets
ipywidgets.Text(description="Your name", layout={"width": "300px"})
"""


@pytest.fixture(scope="class")
def light_server(tmp_path_factory):
    """A server of its own with the `make serve` settings and room for 3 visitors (`CAP`), over a folder of three
    one-input apps named as the real ones, so each gets its real pool. The gate is what is under test, not the
    apps: a light app starts its kernel in about a second where the predictor's imports take several, so 15
    visits take about half a minute, not a minute and a half. Yields (url, process)."""
    folder = tmp_path_factory.mktemp("light_apps")
    for app in ("predict", "dashboard", "models"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(LIGHT_APP)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, folder / f"{app}.ipynb")
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with voila.running_voila(folder, log_path=log, options=(f"--BoundedKernelManager.max_kernels={CAP}",)) as url:
        yield url, voila.voila_process(url)


class TestOnePerson:
    "A server of its own: a class, so `--dist loadscope` can run it beside the shared server's tests."

    @pytest.mark.browser
    def test_one_person_visiting_15_pages_in_a_row_is_never_told_busy(self, light_server, browser):
        url, process = light_server
        at_rest(process)
        page = browser.new_context().new_page()
        answers = []  # (status, reason) of every page the tab loaded, the "starting" pages it reloaded included
        page.on("response", lambda r: r.request.resource_type == "document" and answers.append((r.status, r.status_text)))
        for n in range(PERSON_PAGES):  # the tab moves on as a person does: the page it leaves says goodbye
            app = PERSON_ROUND[n % len(PERSON_ROUND)]
            page.goto(page_url(url, app) + f"?visit={n}", wait_until="commit")
            page.get_by_label("Your name").wait_for(timeout=RENDER_TIMEOUT_MS)  # the app's input, on screen
            assert voila.kernel_count(process) <= CAP
        page.context.close()
        assert (503, "Busy") not in answers, answers  # 3 places: a left page's kernel kept would fill them by visit 4
        assert answers.count((200, "OK")) == PERSON_PAGES  # every page was the app (a "starting" page reloads itself)
