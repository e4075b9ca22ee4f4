"""Benchmarks of the pipelines at scale, each a ratio against a floor measured side by side in this run.

- `pipeline_overhead`: `sml-run run --days 1` (4 stages x 2 datasets, datasets in parallel) against the
  same papermill executions (same parameters, same parallelism) of notebooks holding only each
  stage's parameters and imports: what the stages cost beyond kernel start and imports.
- `stage_imports`: the first cell (the imports) of each stage kernel of that `sml-run run`, summed,
  against `python -c "import pandas, duckdb"` run as many times: what a stage imports beyond the
  store's own two libraries.
- `daily_round`: `sml-run daily --rows 100` (daily + inference notebooks, both datasets) against the
  same stage functions (`daily_rows` + `add_daily_rows`, then `predict_new_rows`) for both datasets
  in one Python process that has the library imported already: what kernels, papermill and the run
  record add to a round.
- `backfill_365`: `sml-run backfill --days 365` against one `sml-run daily`, both datasets.
- `batch_inference_1m`: `predict_new_rows` over 1,000,000 new Iris rows (the whole stage:
  model loaded, lock, store read, predict (each distinct feature row once: the floor predicts every row), predictions written, monitoring counts folded, pictures
  drawn and uploaded, then the round watched: drift of the round and the 7- and 30-day windows, the
  expectations, the alerts, each written to its feature group) against reading a Parquet file of the same rows, `model.predict`, and writing a
  Parquet file of the predictions.
- `incremental_time` / `incremental_memory`: one `sml-run daily --datasets iris` round (daily +
  inference notebooks) with 1,000,000 rows of history and predictions, against the same round with
  1,000 rows; time and peak RSS (largest process of the round: runner or kernel) in a child process.
- `dashboard_1m`: `monitoring_data` (recent 5, confusion matrix, accuracy per day) over
  1,000,000 logged predictions, against one bare DuckDB GROUP BY over the same predictions table.
  `dashboard_1m_cold` reports the same call when the monitoring state is missing (a full rebuild).

Every store lives in a temporary SML_HOME (and SML_OUTPUTS), removed afterwards.

    python bench/run.py pipelines
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import nbformat
from helpers.stores import store_env, using_store
from helpers.timing import best_of

from serverless_ml.features.daily import add_daily_rows, daily_rows
from serverless_ml.inference.batch import predict_new_rows
from serverless_ml.inference.state import monitoring_data, monitoring_from_state, rebuild_state
from serverless_ml.training.registry import load_best_model

HISTORY_DAYS = 100  # the 1,000 and 1,000,000 history rows span the same days, so the charts match
LARGE, SMALL = 1_000_000, 1_000
GOALS = {"pipeline_overhead": 1.3, "stage_imports": 3.0, "daily_round": 2.5, "batch_inference_1m": 1.5, "incremental_time": 1.2, "incremental_memory": 1.2,
         "dashboard_1m": 3.0, "backfill_365": 3.0}


def row(name: str, value: float, floor: float, what: str, goal: float | None = None) -> dict:
    "One result row in bench/run.py's format."
    return {"name": name, "value_s": round(value, 3), "floor_s": round(floor, 3), "ratio": round(value / floor, 2),
            "goal": GOALS.get(name, goal), "what": what}


def environment(home: Path) -> dict:
    "The environment of a child process using the store and outputs under `home` (kernels from this venv)."
    return {**store_env(home), "JUPYTER_PREFER_ENV_PATH": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}


@contextmanager
def scratch(prefix: str = "sml-bench-"):
    "A temporary folder, removed afterwards."
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# The child samples the peak RSS (VmHWM) of itself and of every descendant (the kernels) every 50 ms.
# getrusage(RUSAGE_CHILDREN) is not used: on Linux a child's ru_maxrss starts at its parent's RSS at
# fork time, so the benchmark process's own size would leak into the figure.
MEASURED = """
import json, os, threading, time
import psutil

peaks = {{}}
def sample(stop):
    me = psutil.Process()
    while True:
        for process in [me, *me.children(recursive=True)]:
            try:
                with open(f"/proc/{{process.pid}}/status") as status:
                    kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
                peaks[process.pid] = max(peaks.get(process.pid, 0), kib)
            except (OSError, StopIteration):
                pass
        if stop.wait(0.05):
            return

stop = threading.Event()
sampler = threading.Thread(target=sample, args=(stop,), daemon=True)
sampler.start()
started = time.perf_counter()
{body}
elapsed = time.perf_counter() - started
stop.set()
sampler.join()
print("BENCH" + json.dumps({{"seconds": elapsed, "peak_mib": max(peaks.values()) / 1024, "code": code}}))
"""


def measured(body: str, home: Path) -> dict:
    "Run `body` (which sets `code`) in a child Python on the store under `home`: seconds, peak RSS, exit code."
    script = MEASURED.format(body=textwrap.dedent(body))
    done = subprocess.run([sys.executable, "-c", script], env=environment(home), capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH")]
    if done.returncode or not lines or json.loads(lines[-1][5:])["code"]:
        raise RuntimeError(f"The benchmarked run failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][5:])


def measured_sml_run(home: Path, *args: str) -> dict:
    "`sml-run *args` on the store under `home`, in a child process: seconds and peak RSS (`measured`)."
    return measured(f"from serverless_ml.runs import cli\ncode = cli.main({list(args)!r})", home)


def stub_notebooks(folder: Path) -> Path:
    "Copies of the stage notebooks holding only their imports and parameters cell: the floor's notebooks."
    from serverless_ml.runs.runner import STAGES, notebook_path
    for stage, name in STAGES.items():
        notebook = nbformat.read(notebook_path(stage), as_version=4)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        kept = [code[0]] + [cell for cell in code if "parameters" in cell.metadata.get("tags", [])]
        notebook.cells = kept
        nbformat.write(notebook, folder / name)
    return folder


FLOOR_RUN = """
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import papermill
from serverless_ml.runs.runner import IPCKernelManager, KERNEL, plan

def chain(dataset):
    for step in plan("run", dataset, 1):
        papermill.execute_notebook(str(Path({folder!r}) / step.notebook), str(Path({out!r}) / f"{{dataset}}-{{step.notebook}}"),
                                   parameters=step.parameters, kernel_name=KERNEL,
                                   kernel_manager_class=IPCKernelManager, cwd={folder!r}, progress_bar=False)

with ThreadPoolExecutor(max_workers=2) as pool:
    list(pool.map(chain, ["iris", "titanic"]))
code = 0
"""


def cell_seconds(home: Path) -> dict:
    "Papermill's cell times in the run records under `home`, summed over datasets: imports, and work per stage."
    from serverless_ml.runs.runner import STAGES
    stage_of = {name: stage for stage, name in STAGES.items()}
    times = {"imports": 0.0} | dict.fromkeys(STAGES, 0.0)
    for notebook in (home / "outputs" / "runs").glob("*/*/*.ipynb"):
        code = [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
        seconds = [cell.metadata.get("papermill", {}).get("duration") or 0.0 for cell in code]
        times["imports"] += seconds[0]
        times[stage_of[notebook.name]] += sum(seconds[1:])
    return times


def pipeline_overhead(template: Path, repeats: int = 3) -> dict:
    "`sml-run run --days 1` (the last one into `template`) against papermill running import-only stage notebooks."
    floors, values = [], []
    with scratch() as folder:
        stubs, out = stub_notebooks(Path(tempfile.mkdtemp(dir=folder))), Path(tempfile.mkdtemp(dir=folder))
        floor_body = FLOOR_RUN.format(folder=str(stubs), out=str(out))
        for attempt in range(repeats):  # interleaved, so that load from elsewhere hits both alike
            floors.append(measured(floor_body, folder)["seconds"])
            home = template if attempt == repeats - 1 else folder / f"run-{attempt}"
            values.append(measured_sml_run(home, "run", "--days", "1")["seconds"])
            shutil.rmtree(folder / f"run-{attempt}", ignore_errors=True)
    times = cell_seconds(template)
    work = ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in times.items() if stage != "imports")
    return row("pipeline_overhead", min(values), min(floors),
               "sml-run run --days 1: feature, training, daily, inference x iris, titanic (datasets in parallel), "
               "vs papermill running notebooks of only each stage's imports, same parameters and parallelism; "
               f"best of {repeats}, interleaved. Cell times of the last run, both datasets summed: imports "
               f"{times['imports']:.1f} s (in the floor too), stage work beyond them {work}")


def stage_imports(template: Path) -> dict:
    "The first cells of the stage kernels of the run in `template`, summed, against as many bare pandas + duckdb imports."
    firsts = first_cells(template)
    floors = []
    for _ in firsts:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import pandas, duckdb"], check=True)
        floors.append(time.perf_counter() - started)
    value = sum(firsts.values())
    slowest = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in sorted(firsts.items(), key=lambda kv: -kv[1])[:3])
    return row("stage_imports", value, sum(floors),
               f"the first cell (imports) of the {len(firsts)} stage kernels of sml-run run --days 1, summed, "
               f"vs python -c 'import pandas, duckdb' run {len(floors)} times (interpreter start included); "
               f"slowest: {slowest}")


def first_cells(home: Path) -> dict:
    "Papermill's time of the first code cell of each executed stage notebook in the run records under `home`."
    firsts = {}
    for notebook in sorted((home / "outputs" / "runs").glob("*/*/*.ipynb")):
        code = [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
        firsts[f"{notebook.parent.name}/{notebook.stem}"] = code[0].metadata.get("papermill", {}).get("duration") or 0.0
    return firsts


def in_process_round(home: Path, rows: int = 100) -> float:
    "Seconds of one daily + inference round for both datasets, by the stage functions, in this process."
    from serverless_ml.params import check_days
    from serverless_ml.store.login import login
    with using_store(home):
        project = login("local")
        started = time.perf_counter()
        for dataset in ("iris", "titanic"):
            add_daily_rows(project, dataset, daily_rows(dataset, rows, check_days(1, None)))
            predict_new_rows(project, dataset)
        return time.perf_counter() - started


def daily_round(template: Path, repeats: int = 3) -> dict:
    "`sml-run daily --rows 100` against the same stage functions in this process, each on a copy of `template`."
    values, floors = [], []
    with scratch() as folder:
        shutil.copytree(template, folder / "warm-up")
        in_process_round(folder / "warm-up")  # the floor's process has every library it uses imported
        for attempt in range(repeats):  # interleaved, so that load from elsewhere hits both alike
            shutil.copytree(template, folder / f"cli-{attempt}")
            shutil.copytree(template, folder / f"floor-{attempt}")
            values.append(measured_sml_run(folder / f"cli-{attempt}", "daily", "--rows", "100")["seconds"])
            floors.append(in_process_round(folder / f"floor-{attempt}"))
    return row("daily_round", min(values), min(floors),
               "sml-run daily --rows 100 (daily + inference notebooks, both datasets, run record included; what "
               "make daily runs) vs daily_rows + add_daily_rows + predict_new_rows for both datasets in one "
               f"process with the library imported; best of {repeats}, interleaved")


def backfill_365(template: Path) -> dict:
    "`sml-run backfill --days 365` against one `sml-run daily`, each on a copy of the trained `template`."
    with scratch() as folder:
        shutil.copytree(template, folder / "daily")
        shutil.copytree(template, folder / "backfill")
        daily = measured_sml_run(folder / "daily", "daily")["seconds"]
        backfill = measured_sml_run(folder / "backfill", "backfill", "--days", "365")["seconds"]
    return row("backfill_365", backfill, daily,
               "sml-run backfill --days 365 (365 rows a dataset in one vectorised pass per stage) "
               "vs one sml-run daily, both datasets")


def add_history(n_rows: int, days: int = HISTORY_DAYS, seed: int = 7) -> None:
    "Add `n_rows` Iris rows spread over the last `days` days through the daily stage's function."
    from serverless_ml.params import check_days
    from serverless_ml.store.login import login
    rows = daily_rows("iris", n_rows // days, check_days(days, None), seed=seed)
    add_daily_rows(login("local"), "iris", rows)


def inference_round() -> float:
    "Seconds of the batch-inference stage, `predict_new_rows`, monitoring included."
    from serverless_ml.store.login import login
    started = time.perf_counter()
    predictions = predict_new_rows(login("local"), "iris").predictions
    elapsed = time.perf_counter() - started
    assert len(predictions) >= LARGE, f"predicted {len(predictions)} rows, expected {LARGE:,} new ones"
    return elapsed


def parquet_floor(model, folder: Path) -> float:
    "Seconds to read the new rows from a Parquet file, `model.predict` them, write the predictions to Parquet."
    import pandas as pd

    from serverless_ml.features.spec import HISTORICAL_TIME, spec
    from serverless_ml.store.login import login
    group = login("local").get_feature_store().get_feature_group("iris", 1)
    group.read(start_time=HISTORICAL_TIME + pd.Timedelta(seconds=1)).to_parquet(folder / "rows.parquet")
    features = spec("iris").features
    started = time.perf_counter()
    rows = pd.read_parquet(folder / "rows.parquet")
    out = pd.DataFrame({"id": rows.flower_id, "event_time": rows.event_time, "prediction": model.predict(rows[features]),
                        "outcome": rows.variety, "model_version": 1, "prediction_time": pd.Timestamp.now(tz="UTC")})
    out.to_parquet(folder / "predictions.parquet")
    return time.perf_counter() - started


def batch_inference_1m(folder: Path, repeats: int = 2) -> dict:
    "Inference over 1,000,000 new rows through the store, against the Parquet floor; leaves them predicted."
    from serverless_ml.store.login import login
    store, pristine = folder / "store", folder.parent / f"{folder.name}-pristine"
    values, floors = [], []
    with using_store(folder):
        add_history(LARGE)
        shutil.copytree(store, pristine)
        model, _ = load_best_model(login("local").get_model_registry(), "iris")
        for attempt in range(repeats):  # floor and store interleaved, the store reset to the unpredicted rows
            if attempt:
                shutil.rmtree(store)
                shutil.copytree(pristine, store)
            floors.append(parquet_floor(model, folder))
            values.append(inference_round())
    shutil.rmtree(pristine)
    return row("batch_inference_1m", min(values), min(floors),
               f"{LARGE:,} new iris rows, predict_new_rows: model loaded, store read after the watermark, "
               f"predict (each distinct feature row once), upsert the predictions, fold the monitoring counts, draw and upload the pictures, drift + quality + "
               f"alerts of the round and its 7/30-day windows, vs read_parquet + model.predict + to_parquet (model loaded in both); best of {repeats}")


def small_history(folder: Path) -> None:
    "1,000 rows of history over the same days, predicted, in the store under `folder`."
    from serverless_ml.store.login import login
    with using_store(folder):
        add_history(SMALL)
        predict_new_rows(login("local"), "iris")


def incremental(small: Path, large: Path, repeats: int = 3) -> list[dict]:
    "One `sml-run daily --datasets iris` round on each store, interleaved `repeats` times: time and peak RSS."
    runs = {"small": [], "large": []}
    order = (("small", small), ("large", large))
    for attempt in range(repeats):  # small-large, then large-small: a drift in load hits both alike
        for name, home in (order if attempt % 2 == 0 else order[::-1]):
            runs[name].append(measured_sml_run(home, "daily", "--datasets", "iris"))
    seconds = {name: min(r["seconds"] for r in found) for name, found in runs.items()}
    peak = {name: statistics.median(r["peak_mib"] for r in found) for name, found in runs.items()}
    what = (f"one sml-run daily --datasets iris round (daily + inference notebooks) with {LARGE:,} rows of history "
            f"and predictions, vs {SMALL:,}")
    return [row("incremental_time", seconds["large"], seconds["small"], what + f"; best of {repeats}, seconds"),
            {**row("incremental_memory", peak["large"], peak["small"], what + f"; peak RSS in MiB (value_s and "
                   f"floor_s hold MiB), largest process of the round (the runner or a kernel), median of {repeats}")}]




def dashboard_1m(folder: Path) -> list[dict]:
    "`monitoring_data` over the 1,000,000 predictions against one bare DuckDB GROUP BY over their table."
    import duckdb

    from serverless_ml.store.local.file import store_file
    from serverless_ml.store.login import login
    with using_store(folder):
        project = login("local")
        view = monitoring_data(project, "iris")
        assert view.n_predictions >= LARGE, f"the dashboard sees {view.n_predictions} predictions"
        value = best_of(lambda: monitoring_data(project, "iris"))
        cold = best_of(lambda: monitoring_from_state("iris", rebuild_state(project, "iris", False)), 3)

        def group_by():
            with duckdb.connect(str(store_file()), read_only=True) as con:
                counts = con.execute("SELECT outcome, prediction, count(*) FROM iris_predictions_1 "
                                     "GROUP BY outcome, prediction").fetchall()
            assert sum(n for *_, n in counts) == view.n_predictions
        floor = best_of(group_by)
    what = f"monitoring_data (recent 5, confusion matrix, accuracy per day) over {view.n_predictions:,} " \
           "predictions, vs one bare DuckDB GROUP BY outcome, prediction over the predictions table; best of 5"
    return [row("dashboard_1m", value, floor, what),
            row("dashboard_1m_cold", cold, floor, "the same when the monitoring state is missing: rebuilt from "
                "a full read of the predictions (what happens once, after the state file is lost); best of 3")]


def run() -> list[dict]:
    "All the pipeline benchmarks; every store is temporary."
    rows = []
    print(f"   load average before: {os.getloadavg()[0]:.1f} (2 cores; other work on the machine skews the ratios)",
          flush=True)
    with scratch() as folder:
        template = folder / "template"
        rows.append(pipeline_overhead(template))
        print(f"   {rows[-1]['name']}: {rows[-1]['ratio']}", flush=True)
        rows.append(stage_imports(template))
        print(f"   {rows[-1]['name']}: {rows[-1]['ratio']}", flush=True)
        rows.append(daily_round(template))
        print(f"   {rows[-1]['name']}: {rows[-1]['ratio']}", flush=True)
        rows.append(backfill_365(template))
        print(f"   {rows[-1]['name']}: {rows[-1]['ratio']}", flush=True)
        small, large = folder / "small", folder / "large"
        shutil.copytree(template, small)
        shutil.copytree(template, large)
        shutil.rmtree(template)
        small_history(small)
        rows.append(batch_inference_1m(large))
        print(f"   {rows[-1]['name']}: {rows[-1]['ratio']}", flush=True)
        rows += incremental(small, large)
        rows += dashboard_1m(large)
    return rows

