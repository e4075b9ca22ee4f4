"""Voila settings for `make serve` and the browser tests, loaded with
`--Voila.config_file_paths=notebooks/apps_server`: outside the served folder `notebooks/apps`,
so no visitor can list or read them. Only the standard library is imported here, so the
server starts fast; the apps' own imports run in their preheated kernels."""

CELL_TIMEOUT = 120  # seconds an app cell may run before Voila stops it


def cell_timeout(cell) -> int | None:
    "Voila's time limit for `cell`: none for the cell waiting for a visitor, else `CELL_TIMEOUT`."
    return None if "wait_for_request(" in cell.source else CELL_TIMEOUT


c = get_config()  # noqa: F821  (traitlets provides get_config to config files)

# Visitors never see a traceback: a failed cell shows this sentence, the details go to the server log.
c.VoilaConfiguration.show_tracebacks = False
c.VoilaExecutor.cell_error_instruction = "This part of the page could not be built; the details are in the server's log."
c.VoilaExecutor.cell_timeout_instruction = "The server's log says which step was too slow."

# Preheated kernels run each app's imports before anyone visits; the app then waits for the visitor
# (voila.utils.wait_for_request) before it reads the store, so data and model are fresh per visitor.
c.VoilaConfiguration.preheat_kernel = True
c.VoilaConfiguration.default_pool_size = 1

# A time limit on every cell but the one waiting for a visitor (that one may wait for hours).
c.VoilaExecutor.timeout = CELL_TIMEOUT
c.VoilaExecutor.timeout_func = cell_timeout

# The notebooks' prose is for readers in JupyterLab; visitors see only the apps.
c.VoilaExporter.exclude_markdown = True

# Only pictures are served as files; notebooks, code and store files never are.
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)"]
c.VoilaConfiguration.file_denylist = [r".*\.(ipynb|py|json|db|duckdb)"]
