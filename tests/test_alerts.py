"""Alerts end to end: a run whose inference round wrote alerts exits 3 and prints them; thresholds come from
the environment with errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import nbformat
import pytest

from serverless_ml.inference import alerts
from serverless_ml.runs import runner
from serverless_ml.runs.cli import ALERT_EXIT, main

RAISE_ONE = """
import pandas as pd
from serverless_ml.inference.alerts import ALERTS_RECORD, alert_rows
from serverless_ml.store.login import login

found = pd.DataFrame([{"kind": "drift", "feature": "petal_width", "time_window": "7d", "value": 0.9,
                       "threshold": 0.2, "message": "petal_width drifted: PSI 0.90 over the 7d window"}])
ALERTS_RECORD.add(login().get_dataset_api(), dataset, alert_rows(found, pd.Timestamp.now(tz="UTC")))
"""


@pytest.fixture
def stages(tmp_path, sml_home, monkeypatch):
    "Stand-in stage notebooks: daily prints, inference writes one alert under the run's id (SML_RUN_ID)."
    folder = tmp_path / "stages"
    folder.mkdir()
    for stage, code in (("daily", "print('daily')"), ("inference", RAISE_ONE)):
        notebook = nbformat.v4.new_notebook(
            metadata={"kernelspec": {"name": "python3", "display_name": "python3", "language": "python"}})
        notebook.cells = [nbformat.v4.new_code_cell('dataset: str = "iris"  # iris or titanic',
                                                    metadata={"tags": ["parameters"]}),
                          nbformat.v4.new_code_cell(code)]
        nbformat.write(notebook, folder / runner.STAGES[stage])
    real = runner.notebook_path
    monkeypatch.setattr(runner, "notebook_path", lambda stage, _=None: real(stage, folder))
    return folder


def test_a_run_whose_round_raised_an_alert_exits_3_and_prints_it(stages, capsys):
    assert main(["daily", "--datasets", "iris"]) == ALERT_EXIT == 3
    out = capsys.readouterr().out
    assert "iris ALERT drift: petal_width drifted: PSI 0.90 over the 7d window" in out
    assert "--no-fail-on-alert" in out
    assert main(["daily", "--datasets", "iris", "--no-fail-on-alert"]) == 0  # a new run: its own alert
    assert "iris ALERT drift" in capsys.readouterr().out


def test_the_exit_codes_and_the_drift_options_are_in_the_help():
    shown = subprocess.run([sys.executable, "-m", "serverless_ml.runs.cli", "daily", "--help"],
                           capture_output=True, text=True, check=True).stdout
    assert "3  every stage ran, but the run's inference rounds raised monitoring" in shown
    assert "--no-fail-on-alert" in shown and "--drift" in shown and "--rows" in shown


@pytest.mark.parametrize("variable, value, says", [
    ("SML_ALERT_PSI", "high", "SML_ALERT_PSI='high' is not usable: set it to a number from 0 up"),
    ("SML_ALERT_ACCURACY_FLOOR", "1.5", "SML_ALERT_ACCURACY_FLOOR='1.5' is not usable: set it to a number from 0 to 1"),
    ("SML_ALERT_MIN_ROWS", "0", "SML_ALERT_MIN_ROWS='0' is not usable: set it to a whole number from 1 up"),
])
def test_a_bad_threshold_variable_is_refused_by_name(monkeypatch, variable, value, says):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=says.replace("(", r"\(")):
        alerts.thresholds()


def test_threshold_variables_override_the_defaults(monkeypatch):
    monkeypatch.setenv("SML_ALERT_ACCURACY_WINDOW", "20")
    monkeypatch.setenv("SML_ALERT_PSI", "0.5")
    assert (alerts.thresholds().accuracy_window, alerts.thresholds().psi) == (20, 0.5)


def test_two_failed_expectations_on_one_column_are_two_stored_alerts(sml_home):
    import pandas as pd

    from serverless_ml.features.synthetic import generate
    from serverless_ml.features.validation import expectation_results
    from serverless_ml.store.login import login
    now = pd.Timestamp("2026-11-30T12:00", tz="UTC")
    rows = generate("iris", 3, seed=2, event_time=now).assign(sepal_length=[float("nan"), 42.0, 5.0])
    found = alerts.evaluate("iris", quality=expectation_results("iris", rows))  # not null, and in range: both fail
    project = login("local")
    alerts.ALERTS_RECORD.add(project.get_dataset_api(), "iris", alerts.alert_rows(found, now, run_id="run-a"))
    stored = alerts.read_alerts(project, "iris", "run-a")
    assert sorted(stored.rule) == ["in_range(3.0, 9.0)", "not_nullable"]
    assert set(stored.feature) == {"sepal_length"}
