"""The `make serve` launcher: Voila that opens its port only once every app has a preheated kernel ready.

A visit right after the server starts would otherwise wait for its kernel to start and import (the
"starting" page). Like a readiness probe, this launcher runs Voila's event loop, filling the pools,
before it listens: the first visitor finds a kernel waiting. After `READY_TIMEOUT` seconds it listens
anyway, and the starting page covers the apps still importing. It prints "Serving the apps at <url>"
once the port is open.

A preheated kernel asks the server for its visitor's request (`apps.wait_for_request`) on the
port it was given when it started; a refused connection would let it run on without its visitor. So
until the public port opens, kernels are started with a private one that serves only that question.

    python notebooks/apps_server/serve.py notebooks/apps --port=8866 --Voila.config_file_paths=notebooks/apps_server
"""

import asyncio
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
from tornado.web import Application  # noqa: E402
from traitlets import Float  # noqa: E402
from voila.app import Voila, _kernel_id_regex  # noqa: E402
from voila.request_info_handler import RequestInfoSocketHandler  # noqa: E402

READY_TIMEOUT = 60  # seconds to wait for every app's first preheated kernel before listening anyway
READY_CHECK_SECONDS = 0.2  # how often the launcher looks


def open_query_port(server_url: str) -> int:
    "A port on 127.0.0.1 serving only the preheated kernels' question for their visitor's request."
    route = url_path_join(server_url, f"/voila/query/{_kernel_id_regex}")
    sockets = bind_sockets(0, "127.0.0.1")
    HTTPServer(Application([(route, RequestInfoSocketHandler)])).add_sockets(sockets)
    return sockets[0].getsockname()[1]


def every_app_ready(kernel_manager) -> bool:
    "True when the settings' kernel manager says every app has a preheated kernel ready (always without one)."
    check = getattr(kernel_manager, "every_app_ready", None)
    return check is None or check()


class ReadyFirstVoila(Voila):
    "Voila that fills its kernel pools before it opens its port, `ready_timeout` seconds at most."

    ready_timeout = Float(READY_TIMEOUT, config=True, help="Seconds to wait for every app's first kernel.")

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
