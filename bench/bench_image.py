"""The container image: its size, and from the container's start to the first visit's inputs on screen, against the
same from launching `make serve` on a copy of the image's own store, in the same run.

Needs a built image: `SML_IMAGE`, else the one `make image-test` builds (localhost/serverless-ml:test). Without one
the rows say so and hold no figure. Runs as root (podman), like `make image-test`."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers import voila
from helpers.image import built_image, copy_demo, image_size_mb, running_image

from serverless_ml.apps.voila import APPS_URL_PATH

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TEST_IMAGE = "localhost/serverless-ml:test"  # what `make image-test` builds
ROUNDS = 2  # starts of each, interleaved: container, serve, container, serve
SIZE_GOAL_MB = 1500  # issue 27: under 1.5 GB
START_GOAL_S = 30  # issue 27: container start to the first visit's inputs on screen, on 2 cores
TIMEOUT_MS = 180_000
INPUTS = "text=Petal length (cm)"  # the predictor's first tab, its inputs on screen


def the_image() -> str | None:
    "The image to measure: `SML_IMAGE`, or `make image-test`'s when it exists; None when there is none."
    named = built_image()
    if named:
        return named
    found = subprocess.run(["podman", "image", "exists", TEST_IMAGE], capture_output=True)
    return TEST_IMAGE if found.returncode == 0 else None


def first_inputs(browser, url: str) -> None:
    "Open the predictor at `url` and wait until its inputs are on screen (the starting page reloads until then)."
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + APPS_URL_PATH.format(app="predict"), wait_until="commit", timeout=TIMEOUT_MS)
    page.locator(INPUTS).first.wait_for(timeout=TIMEOUT_MS)
    page.close(run_before_unload=True)
    context.close()


def container_start(browser, image: str) -> float:
    "Seconds from starting the container to the first visit's inputs on screen."
    started = time.perf_counter()
    with running_image(image) as (url, _):
        first_inputs(browser, url)
        return time.perf_counter() - started


def serve_start(browser, env: dict, log: Path) -> float:
    "Seconds from launching `make serve` (the same command, this checkout) to the first visit's inputs on screen."
    started = time.perf_counter()
    with voila.running_voila(env=env, log_path=log, timeout=TIMEOUT_MS / 1000) as url:
        first_inputs(browser, url)
        return time.perf_counter() - started


def row(name: str, value, floor, goal, what: str) -> dict:
    return {"name": name, "value_s": value, "floor_s": floor,
            "ratio": value / floor if value is not None and floor else None, "goal": goal, "what": what}


def run() -> list[dict]:
    image = the_image()
    if image is None:
        why = "no image: run `make image-test` (or set SML_IMAGE) first"
        return [row("image_size_mb", None, None, None, why), row("image_start", None, None, None, why)]
    from playwright.sync_api import sync_playwright

    size = image_size_mb(image)
    container, serve = [], []
    with tempfile.TemporaryDirectory() as scratch, sync_playwright() as playwright:
        env = copy_demo(image, Path(scratch) / "demo")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for n in range(ROUNDS):
            container.append(container_start(browser, image))
            serve.append(serve_start(browser, env, Path(scratch) / f"voila{n}.log"))
            print(f"   container {container[-1]:.1f} s, make serve {serve[-1]:.1f} s", file=sys.stderr, flush=True)
        browser.close()
    value, floor = statistics.median(container), statistics.median(serve)
    return [
        row("image_size_mb", size, SIZE_GOAL_MB, 1.0,
            f"{image}: every layer unpacked, in MB (10^6 bytes), against the goal of {SIZE_GOAL_MB} MB"),
        row("image_start", value, floor, None,
            f"container start to the first visit's inputs on screen (median of {ROUNDS}) vs launching `make serve` "
            f"on a copy of its store; goal under {START_GOAL_S} s: {'met' if value < START_GOAL_S else 'MISSED'}"),
    ]
