"""The container image for the tests and the benchmark (`make image-test`, `bench/bench_image.py`): run a built image's
server with image/run_image.sh (a real `podman run` through image/crun-norlimit, or `RUN_MODE=chroot`), run a
command in it, measure it, and copy its demo store out."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from helpers.voila import free_port
from serverless_ml.config import project_root

IMAGE_VARIABLE = "SML_IMAGE"  # names the built image to test, e.g. localhost/serverless-ml:test (make image-test sets it)
START_TIMEOUT_S = 180  # the port opens once every app has a preheated kernel (60 s at most), on a busy machine


def run_image_script() -> Path:
    "image/run_image.sh of this checkout."
    return project_root() / "image" / "run_image.sh"


def built_image() -> str | None:
    "The image `SML_IMAGE` names, or None."
    return os.environ.get(IMAGE_VARIABLE) or None


def _script(*args: str, timeout: float = 60, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    "image/run_image.sh with `args`; its output."
    return subprocess.run([str(run_image_script()), *args], capture_output=True, text=True, timeout=timeout,
                          check=check, env=env, stdin=subprocess.DEVNULL)


@contextmanager
def running_image(image: str,  # e.g. localhost/serverless-ml:test
                  variables: dict | None = None,  # set in the container, as `docker run -e`: a mode, a secret
                  ):
    "The image's server on a free port of 127.0.0.1 for a `with` block; yields `(url, name)`; stopped after."
    port = free_port()
    name = f"sml-test-{port}"
    env = {**os.environ, "START_TIMEOUT": str(START_TIMEOUT_S),
           "CONTAINER_ENV": " ".join(f"{key}={value}" for key, value in (variables or {}).items())}
    started = _script("start", image, str(port), name, timeout=START_TIMEOUT_S + 60, check=False, env=env)
    if started.returncode != 0:
        raise RuntimeError(f"The image {image} did not start:\n{started.stderr[-3000:]}")
    try:
        yield f"http://127.0.0.1:{port}", name
    finally:
        _script("stop", name, timeout=120, check=False, env=env)


def in_container(name: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
    "`command` run in the running container `name` as the image's user; its output (not checked)."
    return _script("exec", name, *command, timeout=timeout, check=False)


def healthy(name: str) -> bool:
    "True when the image's own HEALTHCHECK, run in container `name`, passes."
    return _script("health", name, check=False).returncode == 0


def container_log(name: str) -> str:
    "The server's output so far in container `name`."
    logs = _script("logs", name, check=False)
    return logs.stdout + logs.stderr


def inspected(image: str) -> dict:
    "What `podman image inspect` says of `image`: Config (User, Env, Cmd, ExposedPorts), Healthcheck, Size..."
    found = subprocess.run(["podman", "image", "inspect", image], capture_output=True, text=True, check=True)
    return json.loads(found.stdout)[0]


def image_config(image: str) -> dict:
    "The image's configuration (User, Env, Cmd, ExposedPorts, ...)."
    return inspected(image)["Config"]


def image_healthcheck(image: str) -> list[str]:
    "The image's HEALTHCHECK test, e.g. ['CMD-SHELL', 'python -c ...']; [] without one."
    return (inspected(image).get("Healthcheck") or {}).get("Test") or []


def image_size_mb(image: str) -> float:
    "The image's size, all layers unpacked, in MB (10^6 bytes), as `podman images` counts it."
    return inspected(image)["Size"] / 1e6


def copy_demo(image: str, where: Path) -> dict:
    """A copy of the image's demo store and outputs (/app/demo) under `where`, writable; the environment of a
    local store there, as `make serve` would read it."""
    mounted = subprocess.run(["podman", "image", "mount", image], capture_output=True, text=True, check=True)
    try:
        shutil.copytree(Path(mounted.stdout.strip()) / "app" / "demo", where, dirs_exist_ok=True)
    finally:
        subprocess.run(["podman", "image", "unmount", image], capture_output=True, check=False)
    for folder, _, names in os.walk(where):
        os.chmod(folder, 0o755)
        for file in names:
            os.chmod(Path(folder) / file, 0o644)
    return {**os.environ, "SML_HOME": str(where / "store"), "SML_OUTPUTS": str(where / "outputs"),
            "SML_BACKEND": "local"}
