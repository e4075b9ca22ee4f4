"""The hopsworks backend against the wire fake of a Hopsworks 5.2 cluster (hopsworks_wire.py), in this process and in
child processes: the SDK runs unpatched down to `requests`, Kafka and Arrow Flight, with fake credentials and no network.

Each cluster gets a project name of its own (and hopsworks_wire a project id of its own): the SDK caches downloaded
models under /tmp/hopsworks/models/<project>/... and writes Kafka PEM files to /tmp/kafka_sc_<project id>_..., both
hard-coded, so two clusters must never share them."""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest

from .hopsworks_wire import FakeHopsworks

AUTOSTART = Path(__file__).with_name("wire_autostart")  # its sitecustomize.py starts the fake in every process


def new_cluster(folder: Path) -> FakeHopsworks:
    "A fresh fake cluster whose state lives in `folder` (shared by every process pointed at it), not started."
    return FakeHopsworks(str(folder), project=f"wire{uuid.uuid4().hex[:8]}")


def settings(fake: FakeHopsworks, certs: Path) -> dict:
    "The HOPSWORKS_* variables that log in to `fake`, each process's certificate folder made under `certs`."
    return {"HOPSWORKS_HOST": fake.host, "HOPSWORKS_API_KEY": fake.api_key, "HOPSWORKS_PROJECT": fake.project_name,
            "HOPSWORKS_CERT_FOLDER": str(certs)}


def child_env(fake: FakeHopsworks, root: Path, **extra: str) -> dict:
    "The environment of a child process (sml-run, its kernels) on `fake`: the backend, outputs and temp under `root`."
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HOPSWORKS_", "SML_"))}
    python_path = os.pathsep.join(p for p in (str(AUTOSTART), os.environ.get("PYTHONPATH", "")) if p)
    temp = Path(root) / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    return {**clean, **settings(fake, Path(root) / "certs"), "HOPSWORKS_WIRE_STATE": fake.store.root,
            "PYTHONPATH": python_path, "TMPDIR": str(temp), "SML_BACKEND": "hopsworks",
            "SML_OUTPUTS": str(Path(root) / "outputs"), "SML_HOME": str(Path(root) / "store"), **extra}


@contextmanager
def running(folder: Path, certs: Path):
    "A started fake cluster in `folder`, this process's HOPSWORKS_* variables pointing at it; logged out after."
    from serverless_ml.store.login import logout

    fake = new_cluster(folder).start()
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name in [name for name in os.environ if name.startswith(("HOPSWORKS_", "SML_NAMESPACE"))]:
                patch.delenv(name)
            for name, value in settings(fake, certs).items():
                patch.setenv(name, value)
            patch.setenv("SML_BACKEND", "hopsworks")
            yield fake
            logout()
    finally:
        fake.stop()
        fake.remove_sdk_leftovers()


@contextmanager
def leaving_nothing(fake: FakeHopsworks):
    "A block using `fake` from child processes, after which what the SDK wrote for it under /tmp is removed."
    try:
        yield fake
    finally:
        fake.remove_sdk_leftovers()


def certificate_folders(certs: Path) -> list[str]:
    "The per-process certificate folders left under `certs` (every process removes its own when it logs out)."
    return sorted(p.name for p in Path(certs).glob("sml-hopsworks-*")) if Path(certs).exists() else []
