"""The `make serve` launcher: Voila that opens its port only once every app has a preheated kernel ready.

A visit right after the server starts would otherwise wait for its kernel to start and import (the
"starting" page). Like a readiness probe, this launcher runs Voila's event loop, filling the pools,
before it listens: the first visitor finds a kernel waiting. After `READY_TIMEOUT` seconds it listens
anyway, and the starting page covers the apps still importing. It prints "Serving the apps at <url>"
once the port is open.

A preheated kernel asks the server for its visitor's request (`apps.wait_for_request`) on the
port it was given when it started; a refused connection would let it run on without its visitor. So
until the public port opens, kernels are started with a private one that serves only that question.

It serves the apps' pages only, and answers what a visitor may type with a page, never a 500:
- the base URL without its final slash (`/ml`) redirects to it (`/ml/`), with the query string;
- Voila's listing of the served folder (`/voila/api/contents`) and its file server (`/voila/files/`) are
  left out: the apps need neither (their pictures are inline), and no visitor browses files;
- a malformed template address (`/voila/templates/x`) or app address (`/voila/render/%00`) is a 404, not
  Voila's 500.

    python notebooks/apps_server/serve.py notebooks/apps --port=8866 --Voila.config_file_paths=notebooks/apps_server
"""

import asyncio
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
if sys.path and Path(sys.path[0] or ".").resolve() == HERE:
    sys.path.pop(0)  # this folder's voila.py is the settings file, not the voila package

from jupyter_server.utils import url_path_join  # noqa: E402
from tornado.httpserver import HTTPServer  # noqa: E402
from tornado.ioloop import IOLoop  # noqa: E402
from tornado.netutil import bind_sockets  # noqa: E402
from tornado.web import Application, HTTPError, RedirectHandler  # noqa: E402
from traitlets import Float  # noqa: E402
from voila.app import Voila, _kernel_id_regex  # noqa: E402
from voila.request_info_handler import RequestInfoSocketHandler  # noqa: E402
from voila.static_file_handler import AllowListFileHandler, TemplateStaticFileHandler  # noqa: E402
from voila.tornado.contentshandler import VoilaContentsHandler  # noqa: E402
from voila.tornado.handler import TornadoVoilaHandler  # noqa: E402

READY_TIMEOUT = 60  # seconds to wait for every app's first preheated kernel before listening anyway
READY_CHECK_SECONDS = 0.2  # how often the launcher looks


def open_query_port(server_url: str) -> int:
    "A port on 127.0.0.1 serving only the preheated kernels' question for their visitor's request."
    route = url_path_join(server_url, f"/voila/query/{_kernel_id_regex}")
    sockets = bind_sockets(0, "127.0.0.1")
    HTTPServer(Application([(route, RequestInfoSocketHandler)])).add_sockets(sockets)
    return sockets[0].getsockname()[1]


class TemplateFiles(TemplateStaticFileHandler):
    "Voila's template files (`/voila/templates/<template>/static/<file>`), with a 404 for any other address."

    async def get(self, path, include_body=True):
        "The file; a 404 where Voila's handler fails on the address (too few parts, `..`, a NUL byte): a 500 there."
        try:
            return await super().get(path, include_body)
        except (ValueError, AssertionError):  # Voila splits the path into exactly <template>/static/<file>
            raise HTTPError(404) from None


class AppPages(TornadoVoilaHandler):
    "Voila's page of a notebook (`/voila/render/<name>.ipynb`), with a 404 for any other address."

    async def get(self, path=None):
        "The app's page; a 404 for an address that names no notebook (Voila redirects those to its file server)."
        if not path or not APP_PATH.fullmatch(path):
            raise HTTPError(404)
        return await super().get(path)


APP_PATH = re.compile(r"[^\x00-\x1f/\\]+\.ipynb")  # a notebook in the served folder, e.g. predict.ipynb
MENDED = {TemplateStaticFileHandler: TemplateFiles, TornadoVoilaHandler: AppPages}
LEFT_OUT = (VoilaContentsHandler, AllowListFileHandler)  # the folder's listing and its files: no file browsing


def public_handlers(handlers: list, base_url: str) -> list:
    """Voila's `handlers` as this server serves them: without `LEFT_OUT`, template files and app pages that 404 for
    a malformed address (`MENDED`), and `base_url` without its final slash redirecting to `base_url`."""
    kept = [(route, MENDED.get(handler, handler), *rest) for route, handler, *rest in handlers if handler not in LEFT_OUT]
    bare = base_url.rstrip("/")
    return ([(bare, RedirectHandler, {"url": base_url, "permanent": False})] if bare else []) + kept


def every_app_ready(kernel_manager) -> bool:
    "True when the settings' kernel manager says every app has a preheated kernel ready (always without one)."
    check = getattr(kernel_manager, "every_app_ready", None)
    return check is None or check()


class ReadyFirstVoila(Voila):
    "Voila that fills its kernel pools before it opens its port, `ready_timeout` seconds at most."

    ready_timeout = Float(READY_TIMEOUT, config=True, help="Seconds to wait for every app's first kernel.")

    def init_handlers(self):
        "Voila's handlers, as `public_handlers` trims and mends them."
        return public_handlers(super().init_handlers(), self.server_url or self.base_url)

    def init_settings(self):
        "Voila's settings; the pools, filled from here, are started with the private query port."
        self.public_port, self.port = self.port, open_query_port(self.server_url or self.base_url)
        return super().init_settings()

    async def until_ready(self) -> float:
        "Seconds until every app has a preheated kernel ready, or `ready_timeout`."
        started = time.monotonic()
        while not every_app_ready(self.kernel_manager) and time.monotonic() - started < self.ready_timeout:
            await asyncio.sleep(READY_CHECK_SECONDS)
        return time.monotonic() - started

    def listen(self):
        "Wait for the pools, then open the public port (later kernels are given it) and serve."
        self.ioloop = IOLoop.current()  # Voila's SIGTERM handler stops this loop, also while waiting
        self.log.info("Opening port %d once every app has a preheated kernel (%g s at most).",
                      self.public_port, self.ready_timeout)
        try:
            waited = self.ioloop.run_sync(self.until_ready)
        except RuntimeError:  # tornado: "Event loop stopped before Future completed" (SIGTERM while waiting)
            self.stop()
            return
        ready = every_app_ready(self.kernel_manager)
        self.log.info("%s after %.1f s.", "Every app has a preheated kernel" if ready
                      else "Not every app is ready: visitors see the starting page until it is", waited)
        self.port = self.public_port
        self.ioloop.add_callback(lambda: print(f"Serving the apps at {self.display_url}", flush=True))
        try:
            super().listen()
        except SystemExit:  # no port: shut the preheated kernels down before exiting
            self.stop()
            raise


main = ReadyFirstVoila.launch_instance

if __name__ == "__main__":
    main()
