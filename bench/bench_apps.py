"""The Voila apps in headless Chromium: time to first render and click-to-result latency.

One Voila server with the `make serve` settings (preheated kernels) serves, side by side, copies of
the two apps and a trivial notebook (a button and a label), over a temporary store filled by the
runner with 30 days of predictions. The trivial notebook is the floor: what any Voila page costs on
this machine in this run.

A second server (the apps only, the `make serve` settings with a culling time of 20 s instead of
300 s) takes `MEMORY_VISITS` plain page visits; its memory once the culler has done its work is set
against its memory at rest, before the visits (the floor).

A third server (the `make serve` command and settings on the real apps folder) is measured from its
start: the first visit to the predictor right after the server answers (`app_cold_render`, the
"starting" page and its reloads included), then, once the preheated kernels are back at rest, 5
visits 1 s apart (`app_burst_render`, their median); both against a warm render (median of 3
visits at rest, each on a freshly preheated kernel). The launcher opens the port only once every app
has a preheated kernel, so `app_start_to_render` (no goal) shows the whole wait: from launching the
server to the first visit's inputs on screen.

    python bench/run.py apps
    PYTHONPATH=tests:bench .venv/bin/python -c "import bench_apps; print(bench_apps.memory_rows())"  # the memory row
    PYTHONPATH=tests:bench .venv/bin/python -c "import bench_apps; print(bench_apps.visit_rows())"   # cold, burst, start
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
from helpers import voila

from serverless_ml.apps.voila import APPS_URL_PATH, apps_folder

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic", "--no-first-run"]
RENDERS = 3  # first renders per notebook (each on a freshly preheated kernel)
CLICKS = 20  # clicks per notebook
SETTLE_S = 8  # seconds for the kernel pool to refill and preheat between renders
TIMEOUT_MS = 180_000
MEMORY_VISITS = 50  # plain page visits, the two apps in turn
CULL_IDLE_S, CULL_INTERVAL_S = 20, 5  # the server's culling shortened from 300 s and 60 s, so the bench is short
CULLING = (f"--MappingKernelManager.cull_idle_timeout={CULL_IDLE_S}",
           f"--MappingKernelManager.cull_interval={CULL_INTERVAL_S}")
POOLS = {"predict": 3, "dashboard": 1, "models": 1}  # voila.py POOL_SIZES: preheated kernels of each app at rest
POOL = sum(POOLS.values())  # preheated kernels at rest on the apps folder
BURST_VISITS, BURST_GAP_S = 5, 1.0

TRIVIAL = """import ipywidgets as widgets

count = [0]
clicks = widgets.HTML('<p class="done">0</p>')
button = widgets.Button(description="Go")


def on_click(_):
    count[0] += 1
    clicks.value = f'<p class="done">{count[0]}</p>'


button.on_click(on_click)
widgets.VBox([button, clicks])"""


def served_folder(folder: Path) -> Path:
    "A folder holding copies of the two apps and the trivial notebook."
    for app in ("predict", "dashboard"):
        shutil.copy(apps_folder() / f"{app}.ipynb", folder / f"{app}.ipynb")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(TRIVIAL)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "python3", "language": "python"}
    nbformat.write(notebook, folder / "trivial.ipynb")
    return folder


def filled_store_env(home: Path, days: int = 30) -> dict:
    "The environment of a temporary store filled by `sml-run run --days <days>` (as `make run`)."
    env = {**os.environ, "SML_HOME": str(home / "store"), "SML_OUTPUTS": str(home / "outputs"),
           "SML_BACKEND": "local", "JUPYTER_PREFER_ENV_PATH": "1"}
    subprocess.run([sys.executable, "-m", "serverless_ml.runs.cli", "run", "--days", str(days)], env=env, check=True,
                   capture_output=True)
    return env


READY = {"trivial": "text=Go", "predict": ".sml-page >> text=Predict", "dashboard": ".sml-counts"}


def first_render(browser, url: str, notebook: str) -> float:
    "Seconds from navigation to the notebook's main widget on screen, in a fresh context."
    page = browser.new_context().new_page()
    started = time.perf_counter()
    page.goto(f"{url}/voila/render/{notebook}.ipynb", wait_until="commit")
    page.locator(READY[notebook]).first.wait_for(timeout=TIMEOUT_MS)
    elapsed = time.perf_counter() - started
    leave(page)
    return elapsed


def leave(page) -> None:
    """Close `page` as a person closes the tab (the page says goodbye, so the server shuts its kernel down), then
    its context. Closing only the context says nothing, and the kernels would pile up to the server's cap."""
    page.close(run_before_unload=True)
    page.context.close()


def trivial_clicks(page) -> list[float]:
    "Seconds from a click on Go to the label's update, `CLICKS` times."
    times = []
    for n in range(1, CLICKS + 1):
        started = time.perf_counter()
        page.get_by_role("button", name="Go").click()
        page.locator(f"p.done:text-is('{n}')").wait_for(timeout=TIMEOUT_MS)
        times.append(time.perf_counter() - started)
    return times


def predict_clicks(page) -> tuple[list[float], list[float]]:
    """Seconds from a click on Predict to the answer on screen, and to the explanation's chart on screen (drawn after
    the answer), `CLICKS` times with new inputs. A new input clears the old prediction and its pictures first."""
    answers, charts = [], []
    for n in range(CLICKS):
        page.get_by_label("Petal length (cm)").fill(f"{1.2 + 0.25 * n:.2f}")
        page.locator(".sml-class").first.wait_for(state="detached", timeout=TIMEOUT_MS)
        page.locator("img.sml-chart").first.wait_for(state="detached", timeout=TIMEOUT_MS)
        started = time.perf_counter()
        page.get_by_role("button", name="Predict").first.click()
        page.locator(".sml-class").first.wait_for(timeout=TIMEOUT_MS)
        answers.append(time.perf_counter() - started)
        page.locator("img.sml-chart").first.wait_for(timeout=TIMEOUT_MS)
        charts.append(time.perf_counter() - started)
    return answers, charts


def clicks(browser, url: str, notebook: str) -> list[float] | tuple[list[float], list[float]]:
    "Click-to-result latencies in one opened notebook (the predictor's: to the answer, and to the why's chart)."
    page = browser.new_context().new_page()
    page.goto(f"{url}/voila/render/{notebook}.ipynb", wait_until="commit")
    page.locator(READY[notebook]).first.wait_for(timeout=TIMEOUT_MS)
    if notebook == "predict":
        page.get_by_role("button", name="Predict").first.click()
        page.locator(".sml-class").first.wait_for(timeout=TIMEOUT_MS)
    times = (predict_clicks if notebook == "predict" else trivial_clicks)(page)
    leave(page)
    return times


def measure(browser, url: str) -> dict:
    "Median first renders and click latencies, notebooks interleaved so drifts hit them alike."
    renders = {name: [] for name in READY}
    time.sleep(SETTLE_S)
    for _ in range(RENDERS):
        for name in READY:
            renders[name].append(first_render(browser, url, name))
            print(f"   first render of {name}: {renders[name][-1]:.2f} s", file=sys.stderr, flush=True)
            time.sleep(SETTLE_S)
    return {"render": {name: statistics.median(values) for name, values in renders.items()},
            "click": {"trivial": statistics.median(clicks(browser, url, "trivial")),
                      **dict(zip(("predict", "predict_pictures"), map(statistics.median, clicks(browser, url, "predict")),
                                 strict=True))}}


def row(name: str, value: float, floor: float, goal: float | None, what: str) -> dict:
    "One result row in bench/run.py's format."
    return {"name": name, "value_s": value, "floor_s": floor, "ratio": value / floor, "goal": goal, "what": what}


def visit(url: str) -> int:
    "The HTTP status of one plain visit (200 a page, 503 the busy page), the whole page read."
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_MS / 1000) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def memory_after_visits(env: dict, log: Path) -> tuple[int, int, int, dict]:
    "`(at rest, peak, after, counts)`: the server's bytes before, during and after `MEMORY_VISITS` visits; answers, kernels."
    with voila.running_voila(env=env, log_path=log, options=CULLING) as url:
        server = voila.voila_process(url)
        _, rest = voila.settle(server, POOL, timeout=300)
        peak, statuses = rest, {}
        for n in range(MEMORY_VISITS):
            status = visit(url + APPS_URL_PATH.format(app=("predict", "dashboard")[n % 2]))
            statuses[status] = statuses.get(status, 0) + 1
            peak = max(peak, voila.resident_memory(server))
        kernels, after = voila.settle(server, POOL, timeout=CULL_IDLE_S + CULL_INTERVAL_S + 120)
    return rest, peak, after, {**statuses, "kernels after": kernels}


def memory_rows() -> list[dict]:
    "The apps' server memory after `MEMORY_VISITS` visits against at rest; a row for bench/run.py."
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        rest, peak, after, statuses = memory_after_visits(filled_store_env(scratch), scratch / "voila.log")
    mib = 1 << 20
    return [row("app_memory_50_visits", after / mib, rest / mib, 1.5,
                f"server + kernels after {MEMORY_VISITS} visits and the culling, vs at rest (MiB); "
                f"peak {peak / mib:.0f} MiB; {statuses}")]


def on_screen(page, selector: str) -> bool:
    "True when `selector` is on the page now; False while it is not, or while the page reloads itself."
    from playwright.sync_api import Error

    try:
        return page.locator(selector).count() > 0
    except Error:  # the "starting" page reloading: its execution context went away mid-question
        return False


def burst(browser, url: str) -> list[float]:
    "Seconds from navigation to the predictor's inputs for `BURST_VISITS` visits started `BURST_GAP_S` apart."
    pages, started, seconds = [], [], {}

    def look():
        for n, page in enumerate(pages):
            if n not in seconds and on_screen(page, READY["predict"]):
                seconds[n] = time.perf_counter() - started[n]

    deadline = time.perf_counter() + TIMEOUT_MS / 1000
    for _ in range(BURST_VISITS):
        pages.append(browser.new_context().new_page())
        started.append(time.perf_counter())
        pages[-1].goto(url + APPS_URL_PATH.format(app="predict"), wait_until="commit")
        next_visit = started[-1] + BURST_GAP_S
        while time.perf_counter() < next_visit:
            look()
            time.sleep(0.05)
    while len(seconds) < BURST_VISITS and time.perf_counter() < deadline:
        look()
        time.sleep(0.05)
    for page in pages:
        page.context.close()
    return [seconds.get(n, TIMEOUT_MS / 1000) for n in range(BURST_VISITS)]


def cold_warm_burst(browser, env: dict, log: Path) -> dict:
    """The predictor's first render right after the server answers (and from the server's launch), warm renders
    at rest, and a burst's renders."""
    launched = time.perf_counter()
    with voila.running_voila(env=env, log_path=log, options=CULLING, timeout=TIMEOUT_MS / 1000) as url:
        answered = time.perf_counter()
        cold = first_render(browser, url, "predict")
        start_to_render = time.perf_counter() - launched
        print(f"   answered {answered - launched:.2f} s after the launch; cold render: {cold:.2f} s; "
              f"launch to render: {start_to_render:.2f} s", file=sys.stderr, flush=True)
        server, warm = voila.voila_process(url), []
        for _ in range(RENDERS):
            at_rest(server)  # the visits' kernels culled, the pools full and quiet
            warm.append(first_render(browser, url, "predict"))
            print(f"   warm render: {warm[-1]:.2f} s", file=sys.stderr, flush=True)
        at_rest(server)
        renders = burst(browser, url)
        print(f"   burst: {renders}", file=sys.stderr, flush=True)
        return {"cold": cold, "start_to_render": start_to_render, "warm": warm, "burst": renders}


def at_rest(server) -> None:
    "Wait until only the preheated kernels run and the server is quiet (the culling time and some slack at most)."
    kernels, memory = voila.settle(server, POOL, timeout=CULL_IDLE_S + CULL_INTERVAL_S + 120)
    print(f"   at rest: {kernels} kernels, {memory >> 20} MiB", file=sys.stderr, flush=True)


def visit_rows() -> list[dict]:
    "`app_cold_render` and `app_burst_render` against a warm render, on the `make serve` folder and settings."
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        env = filled_store_env(scratch, days=3)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            figures = cold_warm_burst(browser, env, scratch / "voila.log")
            browser.close()
    warm = statistics.median(figures["warm"])
    shown = ", ".join(f"{value:.1f}" for value in figures["burst"])
    return [
        row("app_cold_render", figures["cold"], warm, 2.0,
            f"predictor: first visit right after the server answers (starting page included) vs a warm render "
            f"(median of {RENDERS} at rest: {', '.join(f'{value:.1f}' for value in figures['warm'])} s)"),
        row("app_burst_render", statistics.median(figures["burst"]), warm, 2.0,
            f"predictor: median of {BURST_VISITS} visits {BURST_GAP_S:g} s apart ({shown} s) vs a warm render"),
        row("app_start_to_render", figures["start_to_render"], warm, None,
            "predictor: from launching the server to the first visit's inputs on screen (the wait before the "
            "server answers included) vs a warm render; informational"),
    ]


def run() -> list[dict]:
    "Measure both apps against the trivial notebook, and the server's memory after visits; rows for bench/run.py."
    return browser_rows() + memory_rows() + visit_rows()


def browser_rows() -> list[dict]:
    "Measure both apps against the trivial notebook in Chromium."
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        env = filled_store_env(scratch)
        folder = served_folder(Path(tempfile.mkdtemp(dir=scratch)))
        with voila.running_voila(folder, env=env, log_path=scratch / "voila.log") as url, \
                sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            figures = measure(browser, url)
            browser.close()
    render, click = figures["render"], figures["click"]
    return [
        row("app_first_render", render["predict"], render["trivial"], 1.5,
            f"predictor: navigation to inputs on screen, median of {RENDERS}, vs a trivial Voila notebook"),
        row("dashboard_first_render", render["dashboard"], render["trivial"], 1.5,
            f"dashboard (30 days): navigation to figures on screen, median of {RENDERS}, vs a trivial notebook"),
        row("app_click", click["predict"], click["trivial"], 3.0,
            f"predictor: Predict click to the answer (class and probabilities) on screen, median of {CLICKS}; "
            f"floor = trivial button-to-label"),
        row("app_click_pictures", click["predict_pictures"], click["trivial"], None,
            f"predictor: the same clicks to the explanation's chart on screen (drawn after the answer), median of "
            f"{CLICKS}; floor = trivial button-to-label; informational"),
    ]

