"""Import, at the image's build, every module the server and the app kernels import, so that Python writes their
bytecode once (run with PYTHONDONTWRITEBYTECODE unset, as root).

In the running container the server's user cannot write the venv, and PYTHONDONTWRITEBYTECODE is set: a module
without its bytecode here is compiled again in every kernel, seconds of CPU for each visitor. Compiling the whole
venv instead (`compileall`) would add about 300 MB to the image for modules nothing imports.

The modules: each `import` line of the apps' and stages' notebooks, the server's own (Voila, jupyter_server, the
kernel), the static site's, and the Hopsworks SDK's (the image's other mode)."""

import ast
import importlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SERVER = ["voila.app", "voila.handler", "voila.voila_kernel_manager", "jupyter_server.serverapp",
          "jupyter_server.services.kernels.websocket", "ipykernel.kernelapp", "ipykernel.ipkernel",
          "ipykernel_launcher", "ipywidgets", "nbclient", "nbconvert", "papermill", "matplotlib.pyplot"]
OTHERS = ["serverless_ml.runs.cli", "serverless_ml.apps.site", "serverless_ml.store.hopsworks", "hopsworks",
          "hsfs.feature_store", "hsml.model_registry"]


def notebook_imports(path: Path) -> set[str]:
    "The modules the code cells of notebook `path` import."
    names = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # a cell with IPython magics
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return names


def main() -> int:
    "Import them all; a module that fails to import is named, and fails the build."
    notebooks = [*(ROOT / "notebooks" / "apps").glob("*.ipynb"), *(ROOT / "notebooks").glob("[1-4]_*.ipynb")]
    wanted = sorted(set().union(*map(notebook_imports, notebooks)) | set(SERVER) | set(OTHERS))
    failed = []
    for name in wanted:
        try:
            importlib.import_module(name)
        except Exception as error:  # every failure is reported below, and fails the build
            failed.append(f"{name}: {type(error).__name__}: {error}")
    print(f"Imported {len(wanted) - len(failed)} modules ({len(sys.modules)} in all, their bytecode written).")
    if failed:
        print("Could not import:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
