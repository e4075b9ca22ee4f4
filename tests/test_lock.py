"""requirements.lock and requirements-runtime.lock: exact, hashed pins from PyPI, and a freshness check that names
the way out."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

ROOT = Path(__file__).resolve().parents[1]
CHECKER = ROOT / ".ci" / "lockfile.py"
LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"


def run_checker(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    "Run .ci/lockfile.py with `args` from `cwd`."
    return subprocess.run([sys.executable, str(CHECKER), *args], cwd=cwd, capture_output=True, text=True)


@pytest.fixture
def pair(tmp_path) -> Path:
    "A folder holding copies of the real pyproject.toml and both locks."
    for source in (ROOT / "pyproject.toml", LOCK, RUNTIME_LOCK):
        shutil.copy(source, tmp_path / source.name)
    return tmp_path


def edit_pyproject(folder: Path, old: str, new: str):
    "Replace `old` by `new` in `folder`/pyproject.toml."
    path = folder / "pyproject.toml"
    text = path.read_text()
    assert old in text, f"{old!r} is no longer in pyproject.toml: update this test"
    path.write_text(text.replace(old, new, 1))


def locked_pins() -> dict[str, str]:
    "Each package the lock pins (normalised name) -> its whole entry."
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text())
    pins = {}
    for entry in entries:
        if match := re.match(r"([A-Za-z0-9._-]+)==", entry):
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = entry
    return pins


def test_the_committed_lock_matches_pyproject():
    result = run_checker("check")
    assert result.returncode == 0, result.stderr


def test_a_changed_dependency_makes_the_check_fail_and_say_make_lock(pair):
    edit_pyproject(pair, '"pandas>=2.1,<2.4"', '"pandas>=2.2,<2.4"')
    result = run_checker("check", cwd=pair)
    assert result.returncode == 1
    assert "requirements.lock is stale" in result.stderr and "make lock" in result.stderr


def test_a_new_dev_dependency_makes_the_check_fail(pair):
    edit_pyproject(pair, '    "pytest>=8,<10",', '    "pytest>=8,<10",\n    "hypothesis>=6,<7",')
    assert run_checker("check", cwd=pair).returncode == 1


def test_settings_and_reformatting_outside_the_dependencies_pass(pair):
    edit_pyproject(pair, "line-length = 110", "line-length = 100")
    edit_pyproject(pair, '"pandas>=2.1,<2.4"', '"pandas >= 2.1, < 2.4"')
    result = run_checker("check", cwd=pair)
    assert result.returncode == 0, result.stderr


def test_stamping_after_a_relock_makes_the_pair_pass_again(pair):
    edit_pyproject(pair, '"pandas>=2.1,<2.4"', '"pandas>=2.2,<2.4"')
    assert run_checker("stamp", cwd=pair).returncode == 0
    assert run_checker("check", cwd=pair).returncode == 0
    assert (pair / "requirements.lock").read_text().count("# pyproject-dependencies-sha256: ") == 1
    assert (pair / "requirements-runtime.lock").read_text().count("# pyproject-dependencies-sha256: ") == 1


def test_a_runtime_lock_at_another_version_than_the_full_lock_fails_and_names_the_package(pair):
    runtime = pair / "requirements-runtime.lock"
    text = runtime.read_text()
    pandas = re.search(r"^pandas==([0-9.]+)", text, flags=re.M)[1]
    runtime.write_text(text.replace(f"pandas=={pandas}", "pandas==2.1.0", 1))
    result = run_checker("check", cwd=pair)
    assert result.returncode == 1
    assert "pandas" in result.stderr and "make lock" in result.stderr, result.stderr


def test_a_missing_runtime_lock_fails_and_says_make_lock(pair):
    (pair / "requirements-runtime.lock").unlink()
    result = run_checker("check", cwd=pair)
    assert result.returncode == 1 and "make lock" in result.stderr, result.stderr


def test_a_lock_without_a_fingerprint_is_refused(pair):
    lock = pair / "requirements.lock"
    lines = lock.read_text().splitlines(True)
    lock.write_text("".join(line for line in lines if not line.startswith("# pyproject-dependencies-sha256")))
    result = run_checker("check", cwd=pair)
    assert result.returncode == 1 and "make lock" in result.stderr


def test_every_direct_dependency_is_pinned_exactly():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["dev"]
    names = {re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", req)[0]).lower() for req in wanted}
    assert names - set(locked_pins()) == set()


def test_every_pin_has_hashes_and_no_other_package_host():
    pins = locked_pins()
    assert len(pins) > 100
    assert all("--hash=sha256:" in entry for entry in pins.values())
    options = [line for line in LOCK.read_text().splitlines() if line.startswith("-") or "://" in line]
    assert options == [], "the lock must name no index, find-links or URL: every file comes from PyPI"
