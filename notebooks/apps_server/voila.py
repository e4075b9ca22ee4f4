"""Voila settings for `make serve` and the browser tests, loaded with
`--Voila.config_file_paths=notebooks/apps_server`: outside the served folder `notebooks/apps`,
so no visitor can list or read them. Only modules Voila has already loaded are imported here, so
the server starts fast; the apps' own imports run in their preheated kernels.

Every visit runs its own kernel (about 0.4 GB). Three settings keep the server bounded:
idle kernels are culled, at most `MAX_KERNELS` run at once (a visitor beyond that gets a short
"busy, try again in a minute" page), and a closed tab shuts its kernel down at once."""

import os
import time
from pathlib import Path

from jupyter_server.auth.identity import PasswordIdentityProvider
from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
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

# The cap. 12 kernels are about 5 GB: the 2 preheated ones (one per app) and 10 visitors at a time.
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


class VisitGate(PasswordIdentityProvider):
    """Voila's identity provider (no login) that turns a visit away when the kernels are all in use.
    Voila has no hook that runs before a visit takes a preheated kernel; jupyter_server asks the identity
    provider first on every request, so the gate sits here. The 503 page is the template's `503.html`."""

    def get_user(self, handler):
        "The anonymous visitor; a 503 (busy) for a page visit while the server has `max_kernels` kernels."
        user = super().get_user(handler)
        if isinstance(handler, VoilaHandler) and not handler.kernel_manager.admit():
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
# (voila.utils.wait_for_request) before it reads the store, so data and model are fresh per visitor.
# The pool holds 1 kernel per app; they count towards MAX_KERNELS, and the culler leaves them alone.
c.VoilaConfiguration.preheat_kernel = True
c.VoilaConfiguration.default_pool_size = 1

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

# The notebooks' prose is for readers in JupyterLab; visitors see only the apps.
c.VoilaExporter.exclude_markdown = True

# Only pictures are served as files; notebooks, code and store files never are.
c.VoilaConfiguration.file_allowlist = [r".*\.(png|jpg|gif|svg)"]
c.VoilaConfiguration.file_denylist = [r".*\.(ipynb|py|json|db|duckdb)"]
