"""Keep requirements.lock in step with pyproject.toml.

`make lock` resolves the lock with uv, then `stamp` writes a fingerprint of pyproject.toml's dependency
tables into the lock's header. `check` (run first by `make test` and `make setup`) recomputes the
fingerprint and fails, saying what to run, when pyproject.toml's dependencies changed but the lock did not.
Edits elsewhere in pyproject.toml (ruff, pytest, nbdev settings) leave the fingerprint alone.

    python .ci/lockfile.py check [--pyproject pyproject.toml] [--lock requirements.lock]
    python .ci/lockfile.py stamp [--pyproject pyproject.toml] [--lock requirements.lock]
"""

import argparse
import hashlib
import json
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
    args = parser.parse_args(argv)
    if args.command == "stamp":
        return stamp(args.pyproject, args.lock)
    problem = staleness(args.pyproject, args.lock)
    if problem:
        sys.exit(problem)
    print(f"{args.lock} matches the dependencies in {args.pyproject}.")


if __name__ == "__main__":
    main()
