"""The papermill runner: plans, chains in order per dataset, records, failures, the command line.

The chain tests run stand-in notebooks (a parameters cell and one line of code) so that they check the
runner's behaviour in a second or two per kernel; tests/test_pipelines.py runs the real stages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from serverless_ml import config
from serverless_ml.runs import cli, runner
from serverless_ml.runs.cli import main, parse_args


def stand_in(folder, stage: str, code: str):
    "A throw-away notebook for `stage`: a `parameters` cell like the real ones, then `code`."
    notebook = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
    notebook.cells = [
        nbformat.v4.new_code_cell('dataset: str = "iris"  # iris or titanic\nn_days: int = 1  # days',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(notebook, folder / runner.STAGES[stage])


@pytest.fixture
def stages(tmp_path, sml_home, monkeypatch):
    "Stand-in stage notebooks: daily fails for titanic only, the others print what they got."
    folder = tmp_path / "stages"
    folder.mkdir()
    stand_in(folder, "daily", 'if dataset == "titanic":\n    raise ValueError(f"no rows for {dataset}")\n'
                              'print(f"daily {dataset} {n_days}")')
    for stage in ("feature", "training", "inference"):
        stand_in(folder, stage, f'print(f"{stage} {{dataset}}")')
    real = runner.notebook_path
    monkeypatch.setattr(runner, "notebook_path", lambda stage, _=None: real(stage, folder))
    return folder


def test_plans_name_the_stages_in_order():
    assert [step.stage for step in runner.plan("run", "iris", 30)] == ["feature", "training", "daily", "inference"]
    assert runner.plan("run", "iris", 30)[2].parameters == {"dataset": "iris", "n_days": 30}
    assert runner.plan("daily", "titanic", 30)[0].parameters == {"dataset": "titanic", "n_days": 1}
    assert [step.stage for step in runner.plan("backfill", "iris", 7)] == ["daily", "inference"]


def test_every_planned_notebook_exists_in_the_checkout():
    for stage in runner.STAGES:
        assert runner.notebook_path(stage).is_file(), stage


def test_a_failing_stage_stops_its_chain_only_and_is_reported(stages, capsys):
    code = main(["backfill", "--days", "3", "--datasets", "iris", "titanic"])
    out = capsys.readouterr().out
    assert code == 1
    [stamp] = [p.name for p in config.runs_dir().iterdir() if p.is_dir()]
    iris, titanic = config.run_dir(stamp, "iris"), config.run_dir(stamp, "titanic")
    assert sorted(p.name for p in iris.iterdir()) == [
        "3_daily_feature_pipeline.html", "3_daily_feature_pipeline.ipynb",
        "4_batch_inference_pipeline.html", "4_batch_inference_pipeline.ipynb"]
    assert "daily iris 3" in (iris / "3_daily_feature_pipeline.ipynb").read_text()  # --days reached the notebook
    # titanic stopped at the failing daily stage: inference never ran, the failed notebook is kept
    assert sorted(p.name for p in titanic.iterdir()) == ["3_daily_feature_pipeline.html",
                                                         "3_daily_feature_pipeline.ipynb"]
    assert "ValueError" in (titanic / "3_daily_feature_pipeline.ipynb").read_text()
    assert "titanic: 3_daily_feature_pipeline.ipynb failed in cell In [" in out
    assert "ValueError: no rows for titanic" in out
    assert str(titanic / "3_daily_feature_pipeline.ipynb") in out
    assert "iris: ok, 2 notebook(s)" in out


def test_a_successful_run_exits_zero_and_says_how_to_open_the_apps(stages, capsys):
    assert main(["run", "--days", "0", "--datasets", "iris"]) == 0
    out = capsys.readouterr().out
    [stamp] = [p.name for p in config.runs_dir().iterdir() if p.is_dir()]
    assert sorted(p.name for p in config.run_dir(stamp, "iris").glob("*.ipynb")) == [
        "1_feature_pipeline.ipynb", "2_training_pipeline.ipynb"]
    assert "make serve" in out and "http://127.0.0.1:8866/voila/render/dashboard.ipynb" in out
    assert "predict.ipynb" in out and str(config.runs_dir()) in out


@pytest.mark.parametrize("argv", [["backfill", "--days", "0"], ["daily", "--datasets", "mnist"], ["train"]])
def test_bad_arguments_exit_with_usage(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(argv)
    assert stop.value.code == 2
    assert "sml-run" in capsys.readouterr().err


def test_the_module_runs_as_a_script():
    def help_text(*command: str) -> str:
        return subprocess.run([sys.executable, "-m", "serverless_ml.runs.cli", *command, "--help"],
                              capture_output=True, text=True, check=True).stdout
    assert "run,daily,backfill" in help_text() and "--datasets" in help_text("daily")


def test_parallel_stage_kernels_listen_on_their_own_unix_sockets(stages, capsys):
    # Over TCP, a port picked for one dataset's kernel could be taken before the kernel bound it, and the
    # kernel died with "Address already in use" (seen in CI). Stage kernels use Unix sockets instead.
    code = ('from ipykernel import get_connection_info\nimport json\n'
            'info = json.loads(get_connection_info())\nprint("endpoint", info["transport"], info["ip"])')
    for stage in ("daily", "inference"):
        stand_in(stages, stage, code)
    assert main(["daily", "--datasets", "iris", "titanic"]) == 0
    [stamp] = [p.name for p in config.runs_dir().iterdir() if p.is_dir()]
    endpoints = set()
    for dataset in ("iris", "titanic"):
        for notebook in sorted(config.run_dir(stamp, dataset).glob("*.ipynb")):
            [line] = [line for line in nbformat.read(notebook, as_version=4).cells[-1].outputs[0]["text"].splitlines()
                      if line.startswith("endpoint")]
            _, transport, prefix = line.split(" ", 2)
            assert transport == "ipc", notebook
            endpoints.add(prefix)
    assert len(endpoints) == 4  # one socket prefix per kernel, never shared
    for prefix in endpoints:  # the socket files are gone once the kernel has shut down
        assert not list(Path(prefix).parent.glob(Path(prefix).name + "-*")), prefix


# Writing the index never changes a stage's exit code (issue 26): whatever is wrong with the other records or the
# index file, an alert's exit 3 reaches cron. `run_alerts` stands in for a round that raised an alert.
INDEX_TROUBLE = {"a record cut short": "{broken", "an empty record": "{}", "a list": "[]",
                 "a run id edited to a script": "javascript", "an index that is a folder": None}


@pytest.mark.parametrize("trouble", INDEX_TROUBLE)
def test_writing_the_index_never_changes_the_exit_code(trouble, stages, monkeypatch, capsys):
    runs = config.runs_dir()
    if INDEX_TROUBLE[trouble] is None:
        (runs / "index.html").mkdir(parents=True)
    else:
        assert main(["daily", "--datasets", "iris"]) == 0  # a run whose record the trouble is in
        [older] = [p for p in runs.iterdir() if p.is_dir()]
        text = INDEX_TROUBLE[trouble]
        if text == "javascript":
            text = (older / "run.json").read_text().replace(f'"{older.name}"', '"javascript:alert(1)"', 1)
        (older / "run.json").write_text(text)
        capsys.readouterr()
    monkeypatch.setattr(cli, "run_alerts", lambda results, stamp: {"iris": ["an alert"]})
    monkeypatch.setattr(cli, "alert_exit", lambda found, fail_on_alert: cli.ALERT_EXIT if found else 0)
    assert main(["daily", "--datasets", "iris"]) == cli.ALERT_EXIT
    warning = capsys.readouterr().err
    assert "Warning: " in warning and ("skipped " in warning or "index page" in warning), warning
