"""A stage pays only for what it uses: the daily stage's kernel never imports a model, statistics or plotting library,
and the app kernels import, while they wait for a visitor, what their first render needs and nothing more."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nbformat
import papermill
import pytest
from helpers.stores import using_store

from serverless_ml.apps.voila import apps_folder
from serverless_ml.runs.runner import KERNEL, notebook_path

HEAVY = ("sklearn", "skops", "xgboost", "matplotlib", "seaborn", "scipy")
LOADED = f"import sys, json\nprint('LOADED', json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"


def loaded(notebook) -> list[str]:
    "The heavy libraries the last cell of an executed notebook printed as loaded."
    text = "".join(output.get("text", "") for output in notebook.cells[-1].outputs)
    return json.loads(text.split("LOADED", 1)[1])


@pytest.mark.parametrize("dataset", ["iris", "titanic"])
def test_the_daily_stage_kernel_imports_no_model_statistics_or_plotting_library(tmp_path, trained_store_env, dataset):
    shutil.copytree(trained_store_env["SML_HOME"], tmp_path / "store")
    stage = nbformat.read(notebook_path("daily"), as_version=4)
    stage.cells.append(nbformat.v4.new_code_cell(LOADED))  # after the stage: what its cells imported
    nbformat.write(stage, tmp_path / "daily.ipynb")
    with using_store(tmp_path):
        papermill.execute_notebook(str(tmp_path / "daily.ipynb"), str(tmp_path / "ran.ipynb"), kernel_name=KERNEL,
                                   parameters={"dataset": dataset, "n_rows": 5}, progress_bar=False,
                                   cwd=str(notebook_path("daily").parent))
    assert loaded(nbformat.read(tmp_path / "ran.ipynb", as_version=4)) == []


FIRST_RENDER = {  # app -> what its preheated kernel must hold before the visit, and must not
    "predict": ({"sklearn", "skops", "xgboost"}, {"matplotlib", "seaborn"}),  # the model; its drawings at Predict
    "dashboard": ({"matplotlib", "seaborn"}, {"sklearn", "skops", "xgboost"}),  # the drift heatmap; no model
    "models": ({"sklearn", "skops", "xgboost"}, {"matplotlib", "seaborn"}),  # the versions' models; no drawing
}


@pytest.mark.parametrize("app", FIRST_RENDER)
def test_a_preheated_app_kernel_holds_what_its_first_render_needs_and_no_more(app):
    app_notebook = nbformat.read(apps_folder() / f"{app}.ipynb", as_version=4)
    preheat = next(cell.source for cell in app_notebook.cells if cell.cell_type == "code")  # the cell before the visit
    done = subprocess.run([sys.executable, "-c", preheat + "\n" + LOADED], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    held = set(json.loads(done.stdout.split("LOADED", 1)[1]))
    needed, not_yet = FIRST_RENDER[app]
    assert needed <= held and not (not_yet & held), held
