"""Run every benchmark in bench/, print one table, write outputs/bench/results.json.

Each `bench/bench_*.py` module has a `run() -> list[dict]` returning rows with
`name`, `value_s`, `floor_s`, `ratio`, `goal` and `what`. A figure is a ratio against a
floor measured side by side in the same run, because machines here are noisy.

    python bench/run.py                 # all benchmarks
    python bench/run.py store apps      # only bench_store.py and bench_apps.py
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import time
from pathlib import Path

from serverless_ml.config import outputs_dir

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests"))  # the benchmarks set up their stores with the tests' helpers
FIELDS = ("name", "value_s", "floor_s", "ratio", "goal", "what")


def load(path: Path):
    "Import one benchmark module from its file."
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def selected(names: list[str]) -> list[Path]:
    "The benchmark files to run: all, or those whose name follows `bench_` in `names`."
    paths = sorted(BENCH_DIR.glob("bench_*.py"))
    if not names:
        return paths
    unknown = set(names) - {p.stem.removeprefix("bench_") for p in paths}
    if unknown:
        sys.exit(f"Unknown benchmark(s) {sorted(unknown)}; choose from {[p.stem.removeprefix('bench_') for p in paths]}.")
    return [p for p in paths if p.stem.removeprefix("bench_") in names]


def verdict(row: dict) -> str:
    "ok, MISSED, or report (no goal) for one row."
    if row.get("goal") is None or row.get("ratio") is None:
        return "report"
    return "ok" if row["ratio"] <= row["goal"] else "MISSED"


def fmt(value, digits=3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict]) -> str:
    "The results as a plain-text table."
    lines = [f"{'name':<22} {'value_s':>9} {'floor_s':>9} {'ratio':>7} {'goal':>6}  verdict  what"]
    for r in rows:
        lines.append(
            f"{r['name']:<22} {fmt(r['value_s']):>9} {fmt(r['floor_s']):>9} {fmt(r['ratio'], 2):>7} "
            f"{fmt(r['goal'], 1):>6}  {verdict(r):<7}  {r['what']}"
        )
    return "\n".join(lines)


def settle(below: float = 1.5, at_most: float = 90.0) -> None:
    """Wait (up to `at_most` seconds) for the 1-minute load average to fall below `below`: the last module's
    servers and browsers are gone, but their load would still skew the next module's first ratios."""
    deadline = time.monotonic() + at_most
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def main(argv: list[str]) -> int:
    rows = []
    for number, path in enumerate(selected(argv)):
        if number:
            settle()
        started = time.perf_counter()
        print(f"== {path.name} (load average {os.getloadavg()[0]:.1f})", flush=True)
        for row in load(path).run():
            missing = set(FIELDS) - set(row)
            if missing:
                raise ValueError(f"{path.name} returned a row without {sorted(missing)}: {row}")
            rows.append({k: row[k] for k in FIELDS})
        print(f"   done in {time.perf_counter() - started:.0f} s", flush=True)
    out = outputs_dir() / "bench" / "results.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(table(rows))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
