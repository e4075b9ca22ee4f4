"""The static site (`make site`), opened from disk in headless Chromium with the network off: every page loads,
every picture decodes, every link resolves, and every table holds what the store holds, read here on its own.

The site is made as `make site` makes it, in a child process (`python -m serverless_ml.apps.site`), from a copy
of the session's filled store (both models, 3 days of predictions) and a run record made by the runner's
`Manifest`, with the
clock pinned."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
from helpers.stores import copy_store, using_store

from serverless_ml.features.spec import DATASETS
from serverless_ml.names import PREDICTIONS_VERSION, model_name, predictions_name
from serverless_ml.runs.manifest import Manifest
from serverless_ml.runs.provenance import git_state
from serverless_ml.store.login import login
from serverless_ml.training.registry import best_model

pytestmark = pytest.mark.browser

NOW = "2026-12-01T06:30:00Z"
RUN_ID = "20261201T061700Z-5a7e"
PAGES = ["index.html", *(f"{kind}-{dataset}.html" for kind in ("dashboard", "models") for dataset in DATASETS)]
LIVE = "https://apps.example.org/ml/"


def make_site(env: dict, out: Path, public_url: str = "", exit_code: int = 0) -> subprocess.CompletedProcess:
    "`make site` in a child process: the store and outputs of `env`, the clock pinned, written to `out`."
    done = subprocess.run([sys.executable, "-m", "serverless_ml.apps.site", "--out", str(out)],
                          env={**env, "SML_NOW": NOW, "SML_PUBLIC_URL": public_url}, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == exit_code, done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def site_env(filled_store_env, tmp_path_factory) -> dict:
    "A copy of the filled store, with the record of the daily run that last wrote it."
    env = copy_store(filled_store_env, tmp_path_factory.mktemp("site"))
    (Path(env["SML_OUTPUTS"]) / "runs" / RUN_ID).mkdir(parents=True)
    record = Manifest(Path(env["SML_OUTPUTS"]) / "runs" / RUN_ID, "daily", ["daily"], pd.Timestamp(NOW).to_pydatetime())
    record.data["git"] = {"commit": "0123456789abcdef", "dirty": False}  # a run made by another commit
    record.finish()
    return env


@pytest.fixture(scope="module")
def site(site_env, tmp_path_factory) -> Path:
    "The site made without a public address."
    out = tmp_path_factory.mktemp("made") / "site"
    make_site(site_env, out)
    return out


@pytest.fixture(scope="module")
def offline(browser):
    "A browser context with the network off: a page that needs anything but its own folder fails here."
    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 1000})
    asked = []
    context.on("request", lambda request: asked.append(request.url))
    yield context, asked
    context.close()


def test_every_page_opens_from_disk_offline_every_picture_decodes_and_every_link_resolves(site, offline):
    context, asked = offline
    assert sorted(path.name for path in site.glob("*.html")) == sorted(PAGES)
    page = context.new_page()
    for name in PAGES:
        page.goto((site / name).as_uri())
        pictures = page.locator("img")
        for n in range(pictures.count()):  # each decoded, at its drawn size
            assert pictures.nth(n).evaluate("img => img.complete && img.naturalWidth > 50"), (name, n)
        if name.startswith("dashboard"):
            assert pictures.count() == 4, name  # newest prediction, confusion matrix, accuracy, drift heatmap
        if name.startswith("models"):
            assert pictures.count() >= 1, name  # each version's confusion matrix
        for href in page.locator("a").evaluate_all("links => links.map(a => a.getAttribute('href'))"):
            assert not urlparse(href).scheme and (site / href).is_file(), (name, href)  # a page of this site
        assert "Traceback" not in page.inner_text("body")
    page.close()
    assert {urlparse(url).scheme for url in asked} <= {"file", "data"}, asked  # nothing from any host


def store_figures(env: dict, dataset: str) -> dict:
    "What the store holds for `dataset`, read here without the site's code: predictions, newest ids, versions."
    with using_store(env):
        project = login("local")
        predictions = project.get_feature_store().get_feature_group(predictions_name(dataset),
                                                                     version=PREDICTIONS_VERSION).read()
        registry = project.get_model_registry()
        versions = sorted(registry.get_models(model_name(dataset)), key=lambda entry: -entry.version)
        best = best_model(registry, dataset).version
    newest = predictions.sort_values(["event_time", "prediction_time", "id"], ascending=False).head(5)
    return {"predictions": len(predictions), "correct": int((predictions.prediction == predictions.outcome).sum()),
            "newest": [str(int(i)) for i in newest.id],
            "versions": [(f"{entry.version}{' ★ used by batch inference' if entry.version == best else ''}",
                          f"{entry.training_metrics['accuracy']:.3f}") for entry in versions]}


@pytest.mark.parametrize("dataset", DATASETS)
def test_every_table_holds_the_store_s_figures(site, site_env, offline, dataset):
    context, _ = offline
    held = store_figures(site_env, dataset)
    page = context.new_page()
    page.goto((site / f"dashboard-{dataset}.html").as_uri())
    counts = page.locator(".sml-counts").inner_text()
    assert counts.startswith(f"{held['predictions']} predictions · {held['correct']} correct"), counts
    recent = page.get_by_role("table", name="Most recent predictions")
    assert recent.locator("tbody tr td:nth-child(2)").all_inner_texts() == held["newest"]  # the Id column, in order
    page.goto((site / f"models-{dataset}.html").as_uri())
    rows = page.get_by_role("table", name="Registered versions").locator("tbody tr")
    shown = [(rows.nth(n).locator("td").nth(0).inner_text(), rows.nth(n).locator("td").nth(2).inner_text())
             for n in range(rows.count())]
    assert shown == held["versions"]  # version (★ on the one inference uses), test accuracy
    assert page.locator(".sml-version-card").count() == len(held["versions"])
    page.close()


def test_each_page_says_when_it_was_made_by_which_commit_and_after_which_run(site):
    commit = git_state()["commit"]
    for name in PAGES:
        text = (site / name).read_text()
        assert "Made 2026-12-01 06:30 UTC by commit " in text, name
        assert f"run {RUN_ID} (daily, ok, commit 0123456789)" in text, name
        if commit:
            assert f"by commit {commit[:10]}" in text, name


def test_with_a_public_url_each_page_links_its_live_app_and_without_one_no_page_leaves_the_site(site, site_env,
                                                                                                  tmp_path):
    for name in PAGES:  # the site made without the setting
        assert "://" not in "".join(re.findall(r'href="([^"]*)"', (site / name).read_text())), name
    live = tmp_path / "site"
    make_site(site_env, live, public_url=LIVE)
    assert f'href="{LIVE}"' in (live / "index.html").read_text()
    for kind in ("dashboard", "models"):
        for dataset in DATASETS:
            assert f'href="{LIVE}voila/render/{kind}.ipynb?dataset={dataset}"' in \
                (live / f"{kind}-{dataset}.html").read_text()


def test_a_store_that_cannot_be_read_gives_pages_that_say_so_and_exit_code_1(site_env, tmp_path):
    damaged = copy_store(site_env, tmp_path / "damaged")
    with open(Path(damaged["SML_HOME"]) / "feature_store.duckdb", "r+b") as store:
        store.write(b"\xde\xad\xbe\xef" * 64)
    done = make_site(damaged, tmp_path / "site", exit_code=1)  # the daily workflow then keeps the last good site
    assert "the iris dashboard, the titanic dashboard could not be read" in done.stderr
    assert "could not be read when this site was made" in (tmp_path / "site" / "dashboard-iris.html").read_text()
