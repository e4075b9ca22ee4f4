"""Voila settings for `make serve` and the browser tests, loaded with
`--Voila.config_file_paths=notebooks/apps_server`: outside the served folder `notebooks/apps`,
so no visitor can list or read them. Only modules Voila has already loaded are imported here, so
the server starts fast; the apps' own imports run in their preheated kernels.

Every visit runs its own kernel (about 0.4 GB). Four settings keep the server bounded, and each
number below says what it protects: at most `MAX_KERNELS` kernels run at once, counted as kernels, not
requests (a visitor beyond that gets a short "busy, try again in a minute" page); a closed tab shuts its
kernel down at once; a kernel no page has connected to is shut down after `UNCONNECTED_TIMEOUT` seconds
(a plain GET, a crawler, a killed browser); and idle kernels are culled after `CULL_IDLE_TIMEOUT`.

Visits are fast because each app keeps `POOL_SIZES` preheated kernels waiting. The launcher
(serve.py) opens the port only once every app has one ready (`every_app_ready`); a visit that still
finds none (in a burst that drained the pool, or when the launcher stopped waiting) gets a page saying
the app is starting, which reloads itself, instead of a blank page."""

import os
import time
from datetime import timedelta
from pathlib import Path

from jupyter_server._tz import utcnow
from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from jupyter_server.utils import ensure_async
from tornado.ioloop import IOLoop
from tornado.web import HTTPError
from traitlets import Integer
from voila.handler import VoilaHandler
from voila.utils import ENV_VARIABLE

CELL_TIMEOUT = 120  # seconds an app cell may run before Voila stops it

# Culling protects memory from visitors who have gone. A kernel is culled after `CULL_IDLE_TIMEOUT` seconds
# without a message (a click, a refresh), whether or not a tab is still connected: a visitor who has not
# touched the page for 5 minutes has most likely gone, and reloading gives a fresh, preheated kernel in a
# second or two.
CULL_IDLE_TIMEOUT = 300
# A page that never connects to its kernel protects nothing by keeping it: a plain GET (curl, a crawler, a
# link preview) or a killed browser never sends the closed tab's signal, and its kernel would hold a place
# under the cap until idle culling, 5 minutes later (7 such GETs filled the server). So a visitor's kernel
# that no page is connected to is shut down once it has been quiet (no message, no connection) for
# `UNCONNECTED_TIMEOUT` seconds. Chromium here connected 0.3-0.7 s after the page loaded; 30 s leaves room
# for a slow phone to fetch the page's scripts and styles (about 5 MB in 95 requests, most of it Voila's).
UNCONNECTED_TIMEOUT = 30
# The culler looks every `CULL_INTERVAL` seconds (a look costs microseconds a kernel), so an unconnected
# kernel is gone at most 35 s after its page's last message, and an idle one at most 5 minutes 5 s after
# its last use.
CULL_INTERVAL = 5

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

# The cap protects the machine's memory and CPU from a crowd, or from someone reloading in a loop: 12
# kernels are about 5 GB, the 5 preheated ones and 7 visitors at a time. It counts kernels, not requests:
# kernels running, kernels starting, preheated kernels waiting to start (a visit's refill), and visits the
# gate has just let through that have not taken their kernel yet. A request that starts no kernel (a missing
# page, an error, the starting page) holds no place once it is answered.
MAX_KERNELS = 12
# A visit the gate lets through holds a place until it takes its kernel (a preheated one: its refill then
# holds the place) or its request ends, which is at once in practice. This bounds the hold should a request
# never end; it is a safety net, never a wait.
ADMISSION_SECONDS = 30

TEMPLATES = Path(__file__).resolve().parent / "share"  # holds nbconvert/templates/serverless-ml


def cell_timeout(cell) -> int | None:
    "Voila's time limit for `cell`: none for the cell waiting for a visitor, else `CELL_TIMEOUT`."
    return None if "wait_for_request(" in cell.source else CELL_TIMEOUT


class BoundedKernelManager(AsyncMappingKernelManager):
    """Voila's kernel manager that admits a visit only while fewer than `max_kernels` places are taken (`places`),
    and shuts down a visitor's kernel that no page has connected to for `unconnected_timeout` seconds."""

    max_kernels = Integer(MAX_KERNELS, config=True, help="Kernels (preheated ones included) the server runs at most.")
    unconnected_timeout = Integer(UNCONNECTED_TIMEOUT, config=True,
                                  help="Seconds a visitor's kernel may stay quiet with no page connected to it.")

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._starting = 0  # kernels a visit started itself (not a pool's refill) that have not started yet
        self._admitted = {}  # a visit let through (its request handler) -> (when, the pool entry it takes, or None)
        self._disconnected_at = {}  # kernel id -> when its last page connection closed
        IOLoop.current().call_later(GROW_CHECK_SECONDS, self._grow_pools)

    def _grow_pools(self):
        "Grow the pools to `POOL_SIZES` once every app has a kernel ready; until then look again shortly."
        if not grow_pools(self):
            IOLoop.current().call_later(GROW_CHECK_SECONDS, self._grow_pools)

    def every_app_ready(self) -> bool:
        "True once every app has a preheated kernel ready: the launcher (serve.py) opens the port then."
        return every_app_ready(self)

    def places(self) -> dict:
        """The places taken now, by what takes them: kernels running, kernels a visit is starting, preheated kernels
        waiting to start or starting (a pool's refill), and visits let through that have not taken a kernel yet."""
        pools = getattr(self, "_pools", {})
        entries = [entry for pool in pools.values() for entry in pool]
        now = time.monotonic()
        self._admitted = {visit: (since, entry) for visit, (since, entry) in self._admitted.items()
                          if now - since < ADMISSION_SECONDS and (entry is None or entry in entries)}
        return {"running": len(self), "starting": self._starting,
                "preheating": sum(not entry.done() for entry in entries), "admitted": len(self._admitted)}

    def in_use(self) -> int:
        "How many of the `max_kernels` places are taken (`places`)."
        return sum(self.places().values())

    def admit(self, visit, notebook: str) -> bool:
        """Let `visit` (a request handler) through, holding a place until it takes `notebook`'s first preheated
        kernel, starts one, or ends (`release`); False when every place is taken."""
        if self.in_use() >= self.max_kernels:
            return False
        pool = getattr(self, "_pools", {}).get(notebook)
        self._admitted[visit] = (time.monotonic(), pool[0] if pool else None)
        return True

    def release(self, visit) -> None:
        "The request `visit` has ended: the place it held (if it took no kernel) is free."
        self._admitted.pop(visit, None)

    async def start_kernel(self, **kwargs):
        "Start a kernel; one a visit starts itself (not a pool's) takes over that visit's place while it starts."
        direct = kwargs.get("env", {}).get(ENV_VARIABLE.VOILA_PREHEAT) != "True"
        if direct:
            waiting = [visit for visit, (_, entry) in self._admitted.items() if entry is None]
            if waiting:
                self._admitted.pop(waiting[0])
            self._starting += 1
        try:
            return await super().start_kernel(**kwargs)
        finally:
            if direct:
                self._starting -= 1

    def notify_connect(self, kernel_id):
        "A page connected to `kernel_id`."
        super().notify_connect(kernel_id)
        self._disconnected_at.pop(kernel_id, None)

    def notify_disconnect(self, kernel_id):
        "A page's connection to `kernel_id` closed: with none left, the unconnected clock starts."
        super().notify_disconnect(kernel_id)
        if self._kernel_connections.get(kernel_id, 0) <= 0:
            self._disconnected_at[kernel_id] = utcnow()

    def quiet_unconnected(self, kernel_id) -> timedelta | None:
        "How long `kernel_id` has had no page connected, no message and no cell running; None while it has any."
        kernel = self._kernels.get(kernel_id)
        if kernel is None or self._kernel_connections.get(kernel_id, 0) > 0:
            return None
        if getattr(kernel, "execution_state", None) == "busy" or not hasattr(kernel, "last_activity"):
            return None
        since = max(kernel.last_activity, self._disconnected_at.get(kernel_id, kernel.last_activity))
        return utcnow() - since

    async def cull_kernel_if_idle(self, kernel_id):
        "Shut a visitor's kernel down after `unconnected_timeout` s quiet with no page connected; else cull as usual."
        quiet = self.quiet_unconnected(kernel_id)
        if quiet is not None and quiet > timedelta(seconds=self.unconnected_timeout):
            self.log.warning("Shutting down kernel %s: no page has been connected to it for %d s (a plain GET, "
                             "a crawler or a closed browser).", kernel_id, quiet.total_seconds())
            self._disconnected_at.pop(kernel_id, None)
            await ensure_async(self.shutdown_kernel(kernel_id))
            return
        await super().cull_kernel_if_idle(kernel_id)


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
    no preheated kernel ready, and turns it away when every place under the cap is taken. Voila has no hook
    that runs before a visit takes a preheated kernel; jupyter_server asks the identity provider first on every
    request, so the gate sits here. Both 503 pages are the template's `503.html`."""

    async def get_user(self, handler):
        "The anonymous visitor; a 503 for a page visit while its app is starting (no preheated kernel ready) or busy."
        user = await ensure_async(super().get_user(handler))  # awaited first: a 503 leaves no coroutine behind
        if not isinstance(handler, VoilaHandler):
            return user
        notebook = handler.path_args[0] if handler.path_args else ""
        manager = handler.kernel_manager
        if not ready_first(manager, notebook):
            handler.current_user = user  # the starting page is rendered for this visitor
            handler.set_header("Retry-After", "1")
            raise HTTPError(503, "No preheated kernel of %s is ready yet", notebook, reason="Starting")
        if not manager.admit(handler, notebook):
            handler.current_user = user  # the error page is rendered for this visitor
            places = manager.places()
            raise HTTPError(503, "All %d places are in use: %d kernels running, %d starting, %d preheating, "
                            "%d visits let through", manager.max_kernels, places["running"], places["starting"],
                            places["preheating"], places["admitted"], reason="Busy")
        finish = handler.on_finish
        handler.on_finish = lambda: (manager.release(handler), finish())  # a 404 or an error frees its place at once
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
