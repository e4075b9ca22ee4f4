"""A Voila server harness for the tests and benchmarks: start the `make serve` command on a free port,
wait until it answers (once every app has a preheated kernel ready), stop it with its kernels, and watch
its kernels, memory and CPU from outside.

The kernels are the server's child processes; its memory is the resident memory of the server and
everything under it. A visit is over for memory once the culler has shut its kernel down, and a
preheated kernel is ready once its imports are done, so `settle` waits until the server runs a given
number of kernels and has been quiet for a few seconds. psutil is a development dependency.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import psutil

from serverless_ml.apps.voila import url_prefix, voila_command

PORT_ATTEMPTS = 3  # a server that loses its port to another process is retried on a new one


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on right now."
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def answers(url: str) -> bool:
    "True when `url` answers HTTP (any status)."
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _await(server: subprocess.Popen, url: str, deadline: float) -> bool:
    "True once `server` answers at `url`; False when it exits first or `deadline` passes."
    while server.poll() is None and time.monotonic() < deadline:
        if answers(url + "/voila/"):
            return True
        time.sleep(0.2)
    return False


@contextmanager
def running_voila(folder: Path | None = None,  # the served folder; `apps_folder()` when None
                  env: dict | None = None,  # environment of the server and its kernels; this one when None
                  log_path: Path | None = None,  # where the server's output goes; discarded when None
                  timeout: float = 150,  # seconds to wait for the server to answer (it opens its port once
                  # every app has a preheated kernel, 60 s at most: see notebooks/apps_server/serve.py)
                  options: tuple = (),  # extra command-line settings, e.g. `--MappingKernelManager.cull_interval=2`
                  base_url: str = "/",  # the path prefix the server serves under, e.g. "/ml/"
                  ):
    "An `voila_command` server on a free port for a `with` block; yields its URL with the prefix (no final /)."
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL
    deadline = time.monotonic() + timeout
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()  # free now; another process may still take it before Voila binds it
            # Voila would move to the next port on its own, where we would not look: make it exit instead
            command = [*voila_command(port, folder, base_url), "--Voila.port_retries=0", *options]
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            url = f"http://127.0.0.1:{port}{url_prefix(base_url).rstrip('/')}"
            if _await(server, url, deadline):
                break
            stop(server)
            if attempt == PORT_ATTEMPTS or time.monotonic() >= deadline:
                raise RuntimeError(f"Voila did not start on {url} (exit code {server.poll()}); "
                                   f"see {log_path or 'its log'}.")
        try:
            yield url
        finally:
            stop(server)
    finally:
        if log_path:
            log.close()


def stop(server: subprocess.Popen) -> None:
    "Stop a Voila server and, through its SIGTERM handler, its kernels; kill it if it hangs."
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def voila_process(url: str) -> psutil.Process:
    "The `running_voila` server answering at `url`, as a psutil process (a child of this process)."
    port = f"--port={urlparse(url).port}"
    for child in psutil.Process().children():
        if port in child.cmdline():
            return child
    raise LookupError(f"No server started by this process answers at {url}: start it with running_voila.")


def kernel_count(server: psutil.Process) -> int:
    "How many kernels `server` runs now: its child processes."
    return len(server.children())


def resident_memory(server: psutil.Process) -> int:
    "Resident bytes of `server` and every process under it; a kernel that ends meanwhile counts 0."
    total = 0
    for process in [server, *server.children(recursive=True)]:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


def cpu_seconds(server: psutil.Process) -> float:
    "CPU seconds used so far by `server` and every process under it that still runs."
    total = 0.0
    for process in [server, *server.children(recursive=True)]:
        try:
            total += sum(process.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return total


def _reading(server: psutil.Process) -> tuple[int, int, float]:
    "`(kernels, memory, CPU seconds)` of `server` now."
    return kernel_count(server), resident_memory(server), cpu_seconds(server)


def calm(before: tuple, after: tuple, kernels: int) -> bool:
    "True when two readings 2 s apart show `kernels` kernels, memory within 2 % and under 0.2 CPU seconds used."
    return (before[0] == after[0] == kernels and abs(after[1] - before[1]) < 0.02 * after[1]
            and after[2] - before[2] < 0.2)


def settle(server: psutil.Process,  # e.g. `voila_process(url)`
           kernels: int,  # the kernel count to wait for, e.g. the preheated ones at rest
           timeout: float,  # seconds to wait at most
           quiet: int = 3,  # calm readings in a row (2 s apart) that make a rest
           ) -> tuple[int, int]:
    "`(kernels, memory)` of `server` once it runs `kernels` kernels and has been quiet, or at `timeout`."
    deadline, calm_readings, last = time.monotonic() + timeout, 0, _reading(server)
    while calm_readings < quiet and time.monotonic() < deadline:
        time.sleep(2)
        now = _reading(server)
        calm_readings = calm_readings + 1 if calm(last, now, kernels) else 0
        last = now
    return kernel_count(server), resident_memory(server)
