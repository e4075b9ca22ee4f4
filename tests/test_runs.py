"""Run records: unique run ids, the run manifest, the commands over the records, reproducing a run.

The real stages run here (papermill kernels on a temporary store): one module fixture records a
`sml-run run` of iris; each test runs only the stages it checks. The commands that only read the
records (runs, show, compare, a refused reproduce) call `main`, what `sml-run` runs, in this process.
One `sml-run reproduce` re-executes the recorded run for real, which is also the proof that two runs from the
same commit and clock agree; the tampered record's reproduce then compares against that record instead of
re-executing the same stages a second time."""

from __future__ import annotations

import json
import os
import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from helpers import stores
from helpers.runs import sml_run
from helpers.stores import using_store

from serverless_ml import config
from serverless_ml.runs import cli
from serverless_ml.runs.cli import main
from serverless_ml.runs.manifest import MANIFEST, read_manifest
from serverless_ml.runs.records import recorded_runs, write_index
from serverless_ml.runs.stage_report import write_json
from serverless_ml.store.login import login

FAKE_KEY = "sml-test-fake-api-key-5d0c2a"  # set while the runs run; must never reach a record
FIRST = "2026-11-20T12:00:00Z"  # the recorded run's pinned clock


def keyed(**more: str) -> dict:
    "The test's environment with a (fake) Hopsworks key set, which no record may show, plus `more`."
    return {**os.environ, "HOPSWORKS_API_KEY": FAKE_KEY, **more}


def sml_main(*argv: str, capsys) -> tuple[int, str]:
    "`sml-run argv` in this process: its exit code and what it printed."
    code = main(list(argv))
    return code, capsys.readouterr().out


def said_by(*argv: str, capsys) -> tuple[int, str, str]:
    "`sml-run argv` in this process: its exit code, and what it printed on stdout and on stderr."
    code = main(list(argv))
    said = capsys.readouterr()
    return code, said.out, said.err


def run_folders(prefix: str = "") -> list:
    "The record folders whose run id starts with `prefix`, oldest first."
    return sorted(p for p in config.runs_dir().iterdir() if p.is_dir() and p.name.startswith(prefix))


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    "A store made by `sml-run run --days 2 --datasets iris` with the clock pinned by `SML_NOW=FIRST`; yields that run's folder."
    root = tmp_path_factory.mktemp("runs")
    with using_store(root):
        done = sml_run("run", "--days", "2", "--datasets", "iris", env=keyed(SML_NOW=FIRST))  # the other runs use --now
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        [folder] = run_folders("20261120T120000Z")
        yield folder


def test_two_runs_started_in_the_same_second_keep_two_complete_records(recorded):
    same = "2026-11-21T08:00:00Z"  # one pinned clock: the two runs share the same stamp, at the same time
    with ThreadPoolExecutor(2) as pool:
        done = list(pool.map(lambda _: sml_run("daily", "--datasets", "iris", "--now", same, env=keyed()), range(2)))
    assert [d.returncode for d in done] == [0, 0], [d.stderr[-2000:] for d in done]
    folders = run_folders("20261121T080000Z")
    assert len(folders) == 2, [p.name for p in run_folders()]
    for folder in folders:
        assert sorted(p.name for p in (folder / "iris").iterdir() if p.suffix != ".csv") == [
            "3_daily_feature_pipeline.html", "3_daily_feature_pipeline.ipynb",
            "4_batch_inference_pipeline.html", "4_batch_inference_pipeline.ipynb", "daily.json", "inference.json"]
        assert read_manifest(folder)["status"] == "ok"
    printed = {line for d in done for line in d.stdout.splitlines() if line.startswith("Run records:")}
    assert len(printed) == 2, printed  # each run names its own folder


def test_the_manifest_records_code_environment_parameters_inputs_and_outputs(recorded):
    manifest = read_manifest(recorded)
    assert manifest["run_id"] == recorded.name and manifest["status"] == "ok"
    assert manifest["command"] == ["sml-run", "run", "--days", "2", "--datasets", "iris"]
    assert manifest["now"] == "2026-11-20T12:00:00+00:00" and manifest["ended"] >= manifest["started"]
    assert len(manifest["git"]["commit"]) == 40 and isinstance(manifest["git"]["dirty"], bool)
    environment = manifest["environment"]
    assert environment["backend"] == "local" and environment["namespace"] == ""
    assert {"HOPSWORKS_API_KEY", "SML_HOME", "SML_OUTPUTS"} <= set(environment["variables"])
    assert "lock_sha256" in environment and environment["python"].startswith("3.")
    stages = {s["stage"]: s for s in manifest["stages"]}
    assert list(stages) == ["feature", "training", "daily", "inference"]
    assert all(s["status"] == "ok" and s["duration_s"] > 0 and s["failure"] is None for s in stages.values())
    for stage in stages.values():  # status, times and parameters are papermill's own record of the notebook
        papermill = nbformat.read(recorded / "iris" / stage["notebook"], as_version=4).metadata.papermill
        assert (stage["started"], stage["ended"]) == (papermill["start_time"], papermill["end_time"])
        assert stage["duration_s"] == round(papermill["duration"], 3)
        assert papermill["parameters"].items() <= stage["parameters"].items()
    assert stages["training"]["parameters"] == {"dataset": "iris", "test_size": 0.2, "seed": 42, "backend": ""}
    assert stages["daily"]["parameters"]["seed"] >= 0 and stages["daily"]["parameters"]["n_days"] == 2
    assert stages["feature"]["outputs"]["rows_written"] == 150
    assert stages["feature"]["inputs"] == {"source": "scikit-learn's bundled iris", "sha256": None}
    assert stages["training"]["inputs"]["feature_view"]["rows"] == 150
    assert len(stages["training"]["inputs"]["feature_view"]["fingerprint"]) == 64
    [model] = stages["training"]["outputs"]["models"]
    assert model["version"] == 1 and 0.6 < model["metrics"]["accuracy"] <= 1
    assert len(model["model_content_sha256"]) == 64  # what a reproduction's model is compared by
    assert recorded.name in model["description"] and manifest["git"]["commit"] in model["description"]
    assert stages["daily"]["outputs"]["rows_written"] == 2
    assert stages["inference"]["inputs"] == {"model": {"name": "iris_model", "version": 1}}
    assert stages["inference"]["outputs"]["predictions_written"] == 2
    assert all(len(digest) == 64 for digest in stages["inference"]["outputs"]["images"].values())
    assert len(stages["inference"]["outputs"]["images"]) == 4
    assert (recorded / "iris" / "4_batch_inference_pipeline.html").is_file()
    assert (recorded / "iris" / "predictions.csv").read_text().count("\n") == 3  # header + the 2 predictions


def test_a_failing_stage_is_recorded_with_its_cell_and_the_rest_as_pending(recorded):
    done = sml_run("daily", "--datasets", "iris", "--now", "2001-01-01T00:00:00Z", env=keyed())  # before the history
    assert done.returncode == 1
    [folder] = run_folders("20010101T000000Z")
    manifest = read_manifest(folder)
    assert manifest["status"] == "failed" and manifest["ended"] is not None
    daily, inference = manifest["stages"]
    assert daily["status"] == "failed" and daily["failure"]["cell"] is not None
    assert "historical snapshot" in daily["failure"]["error"]
    assert daily["failure"]["source"].startswith("params = check_params(")
    assert inference["status"] == "pending"


def test_no_record_holds_the_api_key(recorded):
    for path in config.runs_dir().rglob("*"):
        if path.is_file():
            assert FAKE_KEY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert "HOPSWORKS_API_KEY" in json.dumps(read_manifest(recorded))  # the name is, the value is not


def test_runs_and_show_list_and_print_the_records(recorded, capsys):
    table = sml_main("runs", capsys=capsys)[1]
    assert recorded.name in table and "run --days 2 --datasets iris" in table and "iris_model v1 acc" in table
    shown = sml_main("show", recorded.name, capsys=capsys)[1]
    assert f"run {recorded.name}: ok" in shown and "iris training: ok" in shown and '"test_size": 0.2' in shown
    assert sml_main("show", "19990101", capsys=capsys)[0] == 2  # no such run


def test_reproduce_matches_the_record_and_reports_a_tampered_one(recorded, monkeypatch, capsys):
    # Two runs from the same commit and clock agree: the stages re-executed for real, in a new process, on a
    # scratch store, and compared with the record (models by content, metrics, rows, every prediction).
    done = sml_run("reproduce", recorded.name, env=keyed())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "Reproduced: metrics, rows and 2 predictions equal the record." in done.stdout, done.stdout
    tampered = recorded.parent / (recorded.name[:17] + "feed")
    tampered.mkdir()
    (tampered / "iris").mkdir()
    (tampered / "iris" / "predictions.csv").write_bytes((recorded / "iris" / "predictions.csv").read_bytes())
    manifest = read_manifest(recorded)
    manifest["run_id"] = tampered.name
    manifest["stages"][1]["outputs"]["models"][0]["metrics"]["accuracy"] = 0.5
    write_json(tampered / MANIFEST, manifest)
    # the re-execution just above matched the record: stand in for it with the record itself, not a second one
    monkeypatch.setattr(cli, "reexecute", lambda recorded_run, scratch: (read_manifest(recorded), recorded))
    code, said = sml_main("reproduce", tampered.name, capsys=capsys)
    assert code == 1 and "Differences:" in said, said
    assert said.count("\n  ") == 1 and "iris training: iris_model accuracy 0.5 recorded" in said  # that one only
    code, compared = sml_main("compare", tampered.name, recorded.name, capsys=capsys)
    assert code == 1 and "iris_model accuracy 0.5 recorded" in compared
    assert sml_main("compare", recorded.name, recorded.name, capsys=capsys)[1].strip() == "No differences."


def test_reproduce_refuses_a_run_that_did_not_start_from_the_historical_data(recorded, tmp_path, monkeypatch, capsys):
    manifest = read_manifest(recorded)  # the record of a `sml-run daily`: the daily and inference stages only
    manifest["run_id"] = recorded.name[:17] + "da11"
    manifest["stages"] = [s for s in manifest["stages"] if s["stage"] in ("daily", "inference")]
    monkeypatch.setenv("SML_OUTPUTS", str(tmp_path / "outputs"))  # beside no other record
    daily = config.runs_dir() / manifest["run_id"]
    daily.mkdir(parents=True)
    write_json(daily / MANIFEST, manifest)
    code, said = sml_main("reproduce", daily.name, capsys=capsys)
    assert code == 2 and "starts at the daily stage" in said


def test_the_index_page_links_every_executed_notebook(recorded, browser):
    index = config.runs_dir() / "index.html"
    assert index.is_file()
    hrefs = re.findall(r'href="([^"]*)"', index.read_text())
    assert hrefs and all(href.startswith("./") for href in hrefs), hrefs  # relative paths the page built itself
    page = browser.new_page()
    page.goto(index.as_uri())
    links = page.eval_on_selector_all("a", "links => links.map(a => a.href)")
    assert f"{recorded.name}/iris/2_training_pipeline.html" in " ".join(links)
    for link in links:
        page.goto(link)
        assert page.locator("body").inner_text(), link  # the HTML copy opened
    page.close()
    page = index.read_text()
    made_by_the_runner = [m["run_id"] for m in recorded_runs() if not m["run_id"].endswith("feed")]
    assert all(f"<td>{run_id}</td>" in page for run_id in made_by_the_runner)  # rewritten at the end of each run


# The probe's damaged records (issue 26): each is skipped with a warning naming it, by every command.
DAMAGED = {"cut short": "{broken", "empty object": "{}", "a list": "[]",
           "run id edited to a script": "javascript"}


def damaged_record(case: str, recorded) -> Path:
    "A run folder beside `recorded` whose run.json is damaged as `case` says."
    folder = recorded.parent / f"20261119T00000{list(DAMAGED).index(case)}Z-bad{list(DAMAGED).index(case)}"
    folder.mkdir(exist_ok=True)
    if DAMAGED[case] == "javascript":
        text = json.dumps({**read_manifest(recorded), "run_id": "javascript:alert(document.domain)"})
    else:
        text = DAMAGED[case]
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return folder


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_record_is_skipped_with_a_warning_naming_it(case, recorded, capsys):
    damaged = damaged_record(case, recorded)
    try:
        code, table, warning = said_by("runs", capsys=capsys)
        assert code == 0 and recorded.name in table and damaged.name not in table, table
        assert f"Warning: skipped {damaged / MANIFEST}" in warning, warning
        assert said_by("show", recorded.name, capsys=capsys)[0] == 0  # another run reads as ever
        for argv in (["show", damaged.name], ["compare", recorded.name, damaged.name]):
            code, _, warning = said_by(*argv, capsys=capsys)
            assert code == 2 and str(damaged / MANIFEST) in warning, (argv, warning)
        page = write_index(warn=lambda message: None).read_text()
        assert str(damaged / MANIFEST) in page  # listed apart as damaged
        assert all(href.startswith("./") for href in re.findall(r'href="([^"]*)"', page))
    finally:
        shutil.rmtree(damaged)
        write_index()


def store_counts(env: dict, dataset: str = "iris") -> dict:
    "The feature rows and the prediction keys of `dataset` in the store of `env`."
    with using_store(env):
        fs = login("local").get_feature_store()
        predictions = fs.get_feature_group(f"{dataset}_predictions", version=1).select(["id", "event_time"]).read()
        return {"rows": len(fs.get_feature_group(dataset, version=1).select(["flower_id"]).read()),
                "predictions": set(zip(predictions.id, predictions.event_time.astype(str), strict=True))}


def test_overlapping_runs_each_record_only_what_they_wrote(recorded):
    # Three `sml-run daily --rows 100` at once used to record the store's whole change each ("+600 rows, +600
    # predictions") with three identical predictions.csv. Each stage now reports its own writes, so the three
    # records add up to the store's change, whichever round predicted the rows. A damaged record beside them
    # changes nothing in their exit codes.
    env = keyed(**{name: os.environ[name] for name in ("SML_HOME", "SML_OUTPUTS")})
    before = store_counts(env)
    broken = damaged_record("cut short", recorded)
    try:
        with ThreadPoolExecutor(3) as pool:
            done = list(pool.map(lambda _: sml_run("daily", "--datasets", "iris", "--rows", "100", env=env), range(3)))
    finally:
        shutil.rmtree(broken)
    failed = [f"exit {d.returncode}:\n{d.stdout[-1500:]}\n{d.stderr[-4000:]}" for d in done if d.returncode]
    assert not failed, "\n\n".join(failed)  # whole, where a list's repr would be cut short
    assert all(f"Warning: skipped {broken / MANIFEST}" in d.stderr for d in done)
    after = store_counts(env)
    new_predictions = after["predictions"] - before["predictions"]
    folders = [config.runs_dir() / line.split("records in ")[1].strip().rstrip("/").split("/")[-1]
               for d in done for line in d.stdout.splitlines() if "records in " in line]
    stages = [s for folder in folders for s in read_manifest(folder)["stages"]]
    assert sum(s["outputs"]["rows_written"] for s in stages if s["stage"] == "daily") == after["rows"] - before["rows"] == 300
    assert sum(s["outputs"]["predictions_written"] for s in stages if s["stage"] == "inference") == len(new_predictions)
    kept = [pd.read_csv(folder / "iris" / "predictions.csv") for folder in folders
            if (folder / "iris" / "predictions.csv").is_file()]
    keys = [key for frame in kept for key in zip(frame.id, pd.to_datetime(frame.event_time).astype(str), strict=True)]
    assert len(keys) == len(set(keys)) == len(new_predictions) and set(keys) == new_predictions  # each once, in one run


def test_a_damaged_store_stops_the_stage_with_the_projects_message(recorded, tmp_path):
    env = keyed(**stores.copy_store({name: os.environ[name] for name in stores.STORE_VARIABLES}, tmp_path / "copy"))
    store_file = Path(env["SML_HOME"]) / "feature_store.duckdb"
    data = bytearray(store_file.read_bytes())
    for at in range(4096, len(data), 4096):  # every block's checksum now fails
        data[at:at + 64] = b"\xff" * 64
    store_file.write_bytes(bytes(data))
    done = sml_run("daily", "--datasets", "iris", env=env)
    said = done.stdout + done.stderr
    assert done.returncode == 1, said
    assert "Traceback" not in said, said  # the runner itself never reads the store: no traceback of its own
    assert f"The store file {store_file} is damaged" in done.stdout and "Restore it from a backup" in done.stdout, said
