"""What `kill -9` leaves behind is cleaned at the next start: staging files and folders of the store, the
registry and the dataset API, and the runner's kernel socket files; what a live process owns is kept."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid

from serverless_ml.runs import cli
from serverless_ml.runs.cli import main
from serverless_ml.store.local.file import STALE_AFTER, staging_tag
from serverless_ml.store.login import login


def gone_pid() -> int:
    "The pid of a process that has exited."
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(child.stdout)


KILLED_WHILE_PLACING = textwrap.dedent("""
    import os, signal, sys
    from serverless_ml.store.local import registry as local_registry
    from serverless_ml.store.login import login
    def die(*args):  # killed with the copy made, before the rename that publishes it
        os.kill(os.getpid(), signal.SIGKILL)
    local_registry.os.rename = local_registry.os.replace = die
    project = login("local")
    if sys.argv[1] == "model":
        project.get_model_registry().python.create_model("iris_model").save(sys.argv[2])
    else:
        project.get_dataset_api().upload(sys.argv[2], "Resources/images/iris")
""")


def killed_while_placing(what: str, path) -> None:
    "Register a model (`what` = model) or upload a file, killed just before the rename."
    child = subprocess.run([sys.executable, "-c", KILLED_WHILE_PLACING, what, str(path)], capture_output=True,
                           text=True)
    assert child.returncode == -signal.SIGKILL, child.stderr


def test_staging_left_by_a_killed_process_is_removed_at_the_next_open(sml_home, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    (tmp_path / "latest.png").write_bytes(b"\x89PNG")
    killed_while_placing("model", tmp_path / "model")
    killed_while_placing("upload", tmp_path / "latest.png")
    left = [*(sml_home / "registry" / ".staging").iterdir(), *(sml_home / "resources").rglob("*.part")]
    assert len(left) == 2, left
    project = login("local")
    project.get_model_registry(), project.get_dataset_api()
    assert not any(path.exists() for path in left)
    assert project.get_model_registry().get_models("iris_model") == []


def test_only_staging_whose_process_is_gone_or_a_day_old_is_removed(sml_home):
    staging, images = sml_home / "registry" / ".staging", sml_home / "resources" / "images"
    staging.mkdir(parents=True)
    images.mkdir(parents=True)
    dead, hex32 = gone_pid(), uuid.uuid4().hex
    removed = [staging / f"iris_model-{dead}-{hex32}", staging / f"deleted-{dead}-{hex32}",
               images / f".latest.png.{dead}-{hex32}.part", sml_home / f".feature_store.writes.json.{dead}-{hex32}.part",
               staging / f"iris_model-{hex32}"]  # a pid-less name, a day old
    kept = [staging / f"iris_model-{staging_tag()}", images / f".latest.png.{staging_tag()}.part",
            staging / f"titanic_model-{uuid.uuid4().hex}"]  # ours (alive), and a pid-less name made just now
    for path in removed + kept:
        if path.name.endswith(".part"):
            path.write_text("x")
        else:
            path.mkdir()
    day_old = time.time() - STALE_AFTER - 60
    os.utime(removed[-1], (day_old, day_old))
    project = login("local")
    project.get_feature_store(), project.get_model_registry(), project.get_dataset_api()
    assert [path for path in removed if path.exists()] == []
    assert all(path.exists() for path in kept)


def test_the_runner_removes_the_sockets_of_a_killed_run_at_its_start(tmp_path, monkeypatch, sml_home):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the runner's kernels put their sockets here
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import asyncio, time
        from serverless_ml.runs.runner import IPCKernelManager
        async def start():
            manager = IPCKernelManager(kernel_name="python3")
            await manager.start_kernel()
            print(manager.ip, flush=True)
            time.sleep(600)
        asyncio.run(start())
    """)], stdout=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(tmp_path)})
    prefix = child.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("sml-kernel-*"))) < 5 and time.monotonic() < deadline:
        time.sleep(0.2)  # the kernel binds its five sockets once it has started
    child.send_signal(signal.SIGKILL)  # a run killed with kill -9; its kernel exits, leaving its sockets
    child.wait()
    left = sorted(tmp_path.glob("sml-kernel-*"))
    assert len(left) == 5 and str(left[0]).startswith(prefix)
    live = socket.socket(socket.AF_UNIX)  # another run's kernel, still listening
    live.bind(str(tmp_path / "sml-kernel-0123456789ab-1"))
    live.listen()
    monkeypatch.setattr(cli, "run_all", lambda *args, **kwargs: [])
    deadline = time.monotonic() + 60  # the sockets are left alone for their first SOCKET_GRACE seconds
    while any(path.exists() for path in left) and time.monotonic() < deadline:
        main(["daily"])  # the killed kernel needs a moment to notice its parent is gone
        time.sleep(0.5)
    assert sorted(tmp_path.glob("sml-kernel-*")) == [tmp_path / "sml-kernel-0123456789ab-1"]
    live.close()
