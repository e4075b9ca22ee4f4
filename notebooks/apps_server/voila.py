"""Voila settings for `make serve` and the browser tests, loaded with
`--Voila.config_file_paths=notebooks/apps_server`: outside the served folder `notebooks/apps`,
so no visitor can list or read them. Only modules Voila has already loaded are imported here, so
the server starts fast; the apps' own imports run in their preheated kernels.

Every visit runs its own kernel (about 0.4 GB). Three settings keep the server bounded:
idle kernels are culled, at most `MAX_KERNELS` run at once (a visitor beyond that gets a short
"busy, try again in a minute" page), and a closed tab shuts its kernel down at once.

Visits are fast because each app keeps `POOL_SIZES` preheated kernels waiting. The launcher
(serve.py) opens the port only once every app has one ready (`every_app_ready`); a visit that still
finds none (in a burst that drained the pool, or when the launcher stopped waiting) gets a page saying
the app is starting, which reloads itself, instead of a blank page."""

import os
import time
from pathlib import Path

from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado.ioloop import IOLoop
from tornado.web import HTTPError
from traitlets import Integer
from voila.handler import VoilaHandler

CELL_TIMEOUT = 120  # seconds an app cell may run before Voila stops it

# Culling. A kernel is culled after `CULL_IDLE_TIMEOUT` seconds without a message (a click, a refresh),
# whether or not a tab is still connected: a visitor who has not touched the page for 5 minutes has
# most likely gone, and reloading gives a fresh, preheated kernel in a second or two. The culler looks
# every `CULL_INTERVAL` seconds, so a kernel is gone at most 6 minutes after its last use.
CULL_IDLE_TIMEOUT = 300
CULL_INTERVAL = 60

# The pools. A preheated kernel takes 5-15 s to start and import; a visit takes one in about a second
# and its refill starts `REFILL_DELAY` s later, so the refill does not slow the visit down. The predictor
# is the page people share and open in bursts: 3 waiting kernels serve 3 visits in a row while the
# refills start. The other apps keep one each.
# At start every app preheats one kernel (`DEFAULT_POOL_SIZE`), so the server opens as soon as possible
# on a small machine; the pools grow to `POOL_SIZES` `REFILL_DELAY` s after each app has its first one
# ready, so the first visit, right after the port opens, renders before the growth competes for the CPU.
POOL_SIZES = {"predict.ipynb": 3, "dashboard.ipynb": 1, "models.ipynb": 1}
DEFAULT_POOL_SIZE = 1  # any other notebook in the served folder, and every app at start
GROW_CHECK_SECONDS = 1  # how often the server looks whether the first kernels are ready
REFILL_DELAY = 5  # seconds between a visit taking a preheated kernel and its refill starting: the visit renders first

# The cap. 12 kernels are about 5 GB: the 5 preheated ones and 7 visitors at a time.
MAX_KERNELS = 12
# A visit holds its place from its request until its kernel has started: longer than any kernel start.
RESERVATION_SECONDS = 60

TEMPLATES = Path(__file__).resolve().parent / "share"  # holds nbconvert/templates/serverless-ml


def cell_timeout(cell) -> int | None:
    "Voila's time limit for `cell`: none for the cell waiting for a visitor, else `CELL_TIMEOUT`."
    return None if "wait_for_request(" in cell.source else CELL_TIMEOUT


class BoundedKernelManager(AsyncMappingKernelManager):
    "Voila's kernel manager that admits a visit only while fewer than `max_kernels` kernels run or start."

    max_kernels = Integer(MAX_KERNELS, config=True, help="Kernels (preheated ones included) the server runs at most.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0  # kernels asked for and not started yet
        self._reserved = []  # monotonic times of admitted visits whose kernel has not been asked for yet
        IOLoop.current().call_later(GROW_CHECK_SECONDS, self._grow_pools)

    def _grow_pools(self):
        "Grow the pools to `POOL_SIZES` once every app has a kernel ready; until then look again shortly."
        if not grow_pools(self):
            IOLoop.current().call_later(GROW_CHECK_SECONDS, self._grow_pools)

    def every_app_ready(self) -> bool:
        "True once every app has a preheated kernel ready: the launcher (serve.py) opens the port then."
        return every_app_ready(self)

    def in_use(self) -> int:
        "Kernels running, starting, or promised to an admitted visit within `RESERVATION_SECONDS`."
        now = time.monotonic()
        self._reserved = [since for since in self._reserved if now - since < RESERVATION_SECONDS]
        return len(self) + self._starting + len(self._reserved)

    def admit(self) -> bool:
        "Reserve a kernel for one visit; False when the server already has `max_kernels`."
        if self.in_use() >= self.max_kernels:
            return False
        self._reserved.append(time.monotonic())
        return True

    async def start_kernel(self, **kwargs):
        "Start a kernel, turning the oldest visit's reservation (a preheated refill or a direct start) into it."
        if self._reserved:
            self._reserved.pop(0)
        self._starting += 1
        try:
            return await super().start_kernel(**kwargs)
        finally:
            self._starting -= 1


def _ready(task) -> bool:
    """True when a pool entry (an asyncio task starting a kernel) has a kernel whose imports are done: it runs
    the cell waiting for the visitor (nbclient stamps a cell's execution metadata when the kernel starts it)."""
    if not task.done() or task.cancelled() or task.exception() is not None:
        return False
    executor = getattr(task.result()["renderer"], "executor", None)
    if executor is None:
        return False
    waits = [cell for cell in executor.nb.cells if "wait_for_request(" in cell.source]
    return not waits or "iopub.status.busy" in waits[0].metadata.get("execution", {})


def ready_first(kernel_manager, notebook: str) -> bool:
    """Put a ready preheated kernel of `notebook` first in its pool, where Voila takes the visit's kernel from;
    False when none is ready yet. True for a notebook without a pool (its visit starts a kernel of its own)."""
    pool = getattr(kernel_manager, "_pools", {}).get(notebook)
    if not pool:
        return True
    ready = next((task for task in pool if _ready(task)), None)
    if ready is None:
        return False
    pool.remove(ready)
    pool.insert(0, ready)
    return True


def every_app_ready(kernel_manager) -> bool:
    "True when every pool of `kernel_manager` has a preheated kernel ready (put first), or it has no pool."
    pools = getattr(kernel_manager, "_pools", {})
    return all([ready_first(kernel_manager, notebook) for notebook in list(pools)])


def grow_pools(kernel_manager) -> bool:
    "Once every served app has a preheated kernel ready, raise its pool to `POOL_SIZES` and fill it; else False."
    pools = getattr(kernel_manager, "_pools", {})
    if not pools or not every_app_ready(kernel_manager):
        return False
    for notebook in [name for name in POOL_SIZES if name in pools]:
        kernel_manager.kernel_pools_config[notebook] = {"pool_size": POOL_SIZES[notebook]}
        kernel_manager.fill_if_needed(delay=REFILL_DELAY, notebook_name=notebook)
    return True


class VisitGate(PasswordIdentityProvider):
    """Voila's identity provider (no login) that answers a visit with the "starting" page while its app has
    no preheated kernel ready, and turns it away when the kernels are all in use. Voila has no hook that runs
    before a visit takes a preheated kernel; jupyter_server asks the identity provider first on every
    request, so the gate sits here. Both 503 pages are the template's `503.html`."""

    def get_user(self, handler):
        "The anonymous visitor; a 503 for a page visit while its app is starting (no preheated kernel ready) or busy."
        user = super().get_user(handler)
        if not isinstance(handler, VoilaHandler):
            return user
        notebook = handler.path_args[0] if handler.path_args else ""
        if not ready_first(handler.kernel_manager, notebook):
            handler.current_user = user  # the starting page is rendered for this visitor
            handler.set_header("Retry-After", "1")
            raise HTTPError(503, "No preheated kernel of %s is ready yet", notebook, reason="Starting")
        if not handler.kernel_manager.admit():
            handler.current_user = user  # the error page is rendered for this visitor
            raise HTTPError(503, "All %d kernels are in use", handler.kernel_manager.max_kernels, reason="Busy")
        return user


def with_templates(search_path: str) -> str:
    "`search_path` (a JUPYTER_PATH value) with `TEMPLATES` first, once."
    folders = [folder for folder in search_path.split(os.pathsep) if folder and folder != str(TEMPLATES)]
    return os.pathsep.join([str(TEMPLATES), *folders])


c = get_config()  # noqa: F821  (traitlets provides get_config to config files)

# Visitors never see a traceback: a failed cell shows this sentence, the details go to the server log.
c.VoilaConfiguration.show_tracebacks = False
c.VoilaExecutor.cell_error_instruction = "This part of the page could not be built; the details are in the server's log."
c.VoilaExecutor.cell_timeout_instruction = "The server's log says which step was too slow."

# Preheated kernels run each app's imports before anyone visits; the app then waits for the visitor
# (apps.wait_for_request, as voila.utils.wait_for_request) before it reads the store, so data and model are fresh per visitor.
# The pools hold POOL_SIZES kernels; they count towards MAX_KERNELS, and the culler leaves them alone.
c.VoilaConfiguration.preheat_kernel = True
c.VoilaConfiguration.default_pool_size = DEFAULT_POOL_SIZE
c.VoilaKernelManager.kernel_pools_config = {"default": {"pool_size": DEFAULT_POOL_SIZE}}  # grown by grow_pools
c.VoilaKernelManager.fill_delay = REFILL_DELAY

# A time limit on every cell but the one waiting for a visitor (that one may wait for hours).
c.VoilaExecutor.timeout = CELL_TIMEOUT
c.VoilaExecutor.timeout_func = cell_timeout

# Culling (numbers above). cull_busy stays False: a kernel still running a cell is never cut off; every
# app cell but the preheated kernel's wait has a time limit, so no kernel stays busy for long.
c.MappingKernelManager.cull_idle_timeout = CULL_IDLE_TIMEOUT
c.MappingKernelManager.cull_interval = CULL_INTERVAL
c.MappingKernelManager.cull_connected = True
c.MappingKernelManager.cull_busy = False

# The cap (MAX_KERNELS above): the kernel manager counts, the gate turns visits away.
c.VoilaConfiguration.multi_kernel_manager_class = BoundedKernelManager
c.Voila.identity_provider_class = VisitGate

# A closed tab asks the server to shut its kernel down (navigator.sendBeacon to /voila/api/shutdown/<id>),
# but the beacon cannot carry the _xsrf token, so the server refused it (voila-dashboards/voila#1458).
# This server has no login and its only other POST is the unused login form; a shutdown names a kernel id
# that only the visitor's own page knows. So the XSRF check protects nothing here and is turned off.
c.Voila.tornado_settings = {"disable_check_xsrf": True}

# The page loads nothing from another host (offline, icons still show): Voila's lab template without its
# CDN stylesheets, found through JUPYTER_PATH (Voila looks for templates there when it starts).
os.environ["JUPYTER_PATH"] = with_templates(os.environ.get("JUPYTER_PATH", ""))
c.VoilaConfiguration.template = "serverless-ml"

# The server's root (under the base URL) is a plain page linking the apps: the template's tree.html.
c.VoilaConfiguration.classic_tree = True

# The notebooks' prose is for readers in JupyterLab; visitors see only the apps.
c.VoilaExporter.exclude_markdown = True

# Only pictures are served as files; notebooks, code and store files never are.
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)"]
c.VoilaConfiguration.file_denylist = [r".*\.(ipynb|py|json|db|duckdb)"]
