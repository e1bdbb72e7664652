"""Shared fixtures: a small seeded simulated study, made once per test session; and the
suite's test groups (README "Tests").

Every test belongs to exactly one group, a pytest marker:

- ``unit``: one module against planted truth or the reference library, in this process
  (the default for a test that names no group);
- ``workflow``: the Snakemake command line without running a job: dry runs, lint, the
  bad-input catalogue, the cloud profiles' dry runs;
- ``e2e``: real workflow runs on this machine (the reduced study, fMRIPrep mode, real
  data, S3 storage, reruns);
- ``system``: needs root and Debian packages that it installs with apt-get when missing
  (SLURM and munge, podman, runc and debootstrap, Chromium), and may change the machine's
  configuration (each such fixture says what in its docstring): the SLURM cluster,
  the container images, the report in a browser.

``python -m pytest`` runs every group; ``-m "not system"`` deselects the ones that need
root. Tests under tests/workflow/ and tests/deploy/ must name their group.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ANTs registration is repeatable only with one ITK thread, which ITK reads once, before its
# first use in a process: set it for the test process as rule preproc_bold does for its job.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

GROUPS = ("unit", "workflow", "e2e", "system")
#: Folders whose tests run Snakemake: a group must be named there, not defaulted.
EXPLICIT = ("workflow", "deploy")


def pytest_collection_modifyitems(config, items):
    """Give each test its group (``unit`` by default) and refuse a test with two groups,
    or a test of the workflow or deploy folders without one."""
    problems = []
    for item in items:
        groups = {mark.name for mark in item.iter_markers() if mark.name in GROUPS}
        folder = Path(item.fspath).relative_to(REPO / "tests").parts[0]
        if len(groups) > 1:
            problems.append(f"{item.nodeid}: in groups {sorted(groups)}; one only")
        elif not groups and folder in EXPLICIT:
            problems.append(f"{item.nodeid}: names no group ({', '.join(GROUPS)})")
        elif not groups:
            item.add_marker(pytest.mark.unit)
    if problems:
        raise pytest.UsageError("test groups (tests/conftest.py):\n" + "\n".join(problems))


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """Four participants, one run of four blocks each, written as raw BIDS with its truth."""
    from mirrorflow.simulate.study import SimulationParams, simulate_study

    root = tmp_path_factory.mktemp("study")
    params = SimulationParams(n_subjects=4, n_runs=1, n_blocks=4, seed=3)
    simulate_study(root / "bids", root / "truth", params)
    return {"bids": root / "bids", "truth": root / "truth", "params": params}
