"""Keep requirements.lock and requirements-runtime.lock in step with pyproject.toml, and with each other.

`make lock` resolves both locks with uv from the same pyproject.toml: requirements.lock with every extra (what
`make setup` installs to develop and test), requirements-runtime.lock with the dependencies alone (what the
container image installs to run the pipelines and serve the apps), constrained to the first one's pins. Then
`stamp` writes a fingerprint of pyproject.toml's dependency tables into each lock's header. `check` (run first
by `make test` and `make setup`) recomputes the fingerprint and fails, saying what to run, when
pyproject.toml's dependencies changed but a lock did not; and fails when the runtime lock pins a package at
another version than requirements.lock, or one requirements.lock lacks (the image would then run what the
tests never ran). Edits elsewhere in pyproject.toml (ruff, pytest, nbdev settings) leave the fingerprint alone.

    python .ci/lockfile.py check [--pyproject pyproject.toml] [--lock requirements.lock] [--runtime-lock requirements-runtime.lock]
    python .ci/lockfile.py stamp [--pyproject pyproject.toml] [--lock requirements.lock] [--runtime-lock requirements-runtime.lock]
"""

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    sys.exit(f"{sys.executable} is Python {sys.version.split()[0]}: the lock needs Python 3.11 or newer "
             "(set PYTHON=python3.11 for make).")

MARK = "# pyproject-dependencies-sha256: "


def canonical(requirements: list) -> list:
    """`requirements` without spaces, sorted: reformatting or reordering them changes nothing."""
    return sorted("".join(requirement.split()) for requirement in requirements)


def dependency_tables(pyproject: Path) -> dict:
    """The parts of `pyproject` that decide what the lock holds, in a canonical order."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    return {"requires-python": project.get("requires-python"),
            "dependencies": canonical(project.get("dependencies", [])),
            "optional-dependencies": {name: canonical(reqs) for name, reqs in extras.items()}}


def fingerprint(pyproject: Path) -> str:
    """sha256 of `pyproject`'s dependency tables."""
    text = json.dumps(dependency_tables(pyproject), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def recorded(lock: Path) -> str | None:
    """The fingerprint written in `lock`'s header, or None."""
    for line in lock.read_text().splitlines():
        if line.startswith(MARK):
            return line[len(MARK):].strip()
    return None


def staleness(pyproject: Path, lock: Path) -> str | None:
    """Why `lock` does not match `pyproject`, or None when it does."""
    if not lock.exists():
        return f"{lock} is missing: run `make lock` and commit it."
    stored, current = recorded(lock), fingerprint(pyproject)
    if stored is None:
        return f"{lock} has no '{MARK.strip()}' line: it was not made by `make lock`. Run `make lock`."
    if stored != current:
        return (f"{lock} is stale: the dependencies in {pyproject} changed since it was resolved "
                f"(fingerprint {current[:12]}, the lock records {stored[:12]}). "
                f"Run `make lock`, then commit {pyproject.name} and {lock.name} together.")
    return None


PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^ \\;]+)")


def normalized(name: str) -> str:
    "A package name as PyPI compares them: lower case, runs of `-_.` as one `-`."
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(lock: Path) -> dict:
    "`{package: version}` of every `name==version` line of `lock`."
    found = (PIN.match(line) for line in lock.read_text().splitlines())
    return {normalized(match[1]): match[2] for match in found if match}


def runtime_disagreements(lock: Path, runtime: Path) -> list[str]:
    "What makes `runtime` not a part of `lock`: each pin at another version, or of a package `lock` lacks."
    full = pins(lock)
    return [f"{name}=={version} (requirements.lock: {full.get(name, 'absent')})"
            for name, version in sorted(pins(runtime).items()) if full.get(name) != version]


def stamp(pyproject: Path, lock: Path):
    """Write `pyproject`'s fingerprint into `lock`, after uv's header comment."""
    lines = [line for line in lock.read_text().splitlines() if not line.startswith(MARK)]
    header = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    lines.insert(header, MARK + fingerprint(pyproject))
    lock.write_text("\n".join(lines) + "\n")


def main(argv=None):
    """Command line: `check` or `stamp`."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["check", "stamp"])
    parser.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    parser.add_argument("--lock", type=Path, default=Path("requirements.lock"))
    parser.add_argument("--runtime-lock", type=Path, default=Path("requirements-runtime.lock"))
    args = parser.parse_args(argv)
    locks = (args.lock, args.runtime_lock)
    if args.command == "stamp":
        for lock in locks:
            stamp(args.pyproject, lock)
        return None
    problem = next((problem for lock in locks if (problem := staleness(args.pyproject, lock))), None)
    if problem:
        sys.exit(problem)
    disagreements = runtime_disagreements(args.lock, args.runtime_lock)
    if disagreements:
        sys.exit(f"{args.runtime_lock} is not a part of {args.lock}: {'; '.join(disagreements)}. "
                 "Run `make lock` (it resolves the runtime lock within requirements.lock's pins), then commit both.")
    print(f"{args.lock} and {args.runtime_lock} match the dependencies in {args.pyproject}, and agree.")


if __name__ == "__main__":
    main()
