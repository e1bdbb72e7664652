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

The suite runs in one pytest-xdist worker per CPU (``-n auto --dist loadscope`` in
pyproject.toml; ``-n 0`` runs it in this process). A worker takes a whole module at a
time, so a module's fixtures are made once; the modules that read the reduced end-to-end
run form one unit (:func:`pytest_xdist_make_scheduler`). The longest units go out first
(:data:`LONGEST_FIRST`), and what units share across workers (the executors' bare run,
the MACM reference slice) is made once per session under a file lock
(:func:`once_per_session`); apt-get runs one at a time (tests/deploy/conftest.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from filelock import FileLock

# ANTs registration is repeatable only with one ITK thread, which ITK reads once, before its
# first use in a process: set it for the test process as rule preproc_bold does for its job.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

GROUPS = ("unit", "workflow", "e2e", "system")
#: Folders whose tests run Snakemake: a group must be named there, not defaulted.
EXPLICIT = ("workflow", "deploy")


#: Modules whose tests read the reduced end-to-end run (the session fixture ``run``): one
#: xdist unit, so that one worker makes the run and serves them all.
E2E_RUN = (
    "tests/workflow/test_end_to_end.py",
    "tests/workflow/test_reruns.py",
    "tests/workflow/test_report.py",
    "tests/workflow/test_report_browser.py",
)
#: xdist units that take longest, in the order they go out (pytest's --durations on this
#: 2-core machine, in the clean-clone runs of issue 19's notes).
LONGEST_FIRST = (
    "e2e-run",
    "tests/deploy/test_slurm.py",
    "tests/workflow/test_fmriprep_mode.py",
    "tests/deploy/test_containers.py",
    "tests/deploy/test_cloud.py",
    "tests/preproc/test_realdata.py",
)


def xdist_unit(nodeid: str) -> str:
    """The xdist unit of a test: ``e2e-run`` for the modules of :data:`E2E_RUN`,
    otherwise its module (so a module's fixtures are made once)."""
    module = nodeid.split("::")[0]
    return "e2e-run" if module in E2E_RUN else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """With ``--dist loadscope`` (pyproject.toml), scopes are :func:`xdist_unit`: whole
    modules, and the reduced run's modules together; in the order of the collection
    (longest first: :func:`pytest_collection_modifyitems`)."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    config.option.loadscopereorder = False  # not by the number of tests in a unit

    class UnitScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return UnitScheduling(config, log)


def pytest_collection_modifyitems(config, items):
    """Give each test its group (``unit`` by default), and refuse a test with two groups,
    a test of the workflow or deploy folders without one, or a test that reads the
    reduced run outside :data:`E2E_RUN`; sort the longest xdist units first."""
    problems = []
    for item in items:
        # tests/workflow/conftest.py's ``run`` (a module elsewhere may have its own).
        if ("run" in item.fixturenames and item.nodeid.startswith("tests/workflow/")
                and xdist_unit(item.nodeid) != "e2e-run"):
            problems.append(f"{item.nodeid}: reads the reduced run; add its module to "
                            "E2E_RUN")
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
    rank = {unit: i for i, unit in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(xdist_unit(item.nodeid), len(rank)))  # stable


def session_root(tmp_path_factory) -> Path:
    """This test session's temporary folder, the same for every xdist worker."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def once_per_session(tmp_path_factory, name: str, make) -> None:
    """Call ``make()`` once in this test session, in whichever xdist worker asks first;
    the others wait for it (a file lock) and then find it done. If it failed, they fail
    at once with its error instead of repeating it."""
    root = session_root(tmp_path_factory)
    done, failed = root / f"{name}.done", root / f"{name}.failed"
    with FileLock(root / f"{name}.lock"):
        if failed.exists():
            pytest.fail(f"{name} failed in another xdist worker:\n{failed.read_text()}")
        if not done.exists():
            try:
                make()
            except BaseException as error:
                failed.write_text(f"{type(error).__name__}: {error}"[-6000:])
                raise
            done.touch()


@pytest.fixture(autouse=True)
def frozen_collector():
    """Each test with the objects alive when it starts frozen for the garbage collector
    (:func:`mirrorflow.jobs.frozen_gc`), as in the workflow's jobs.

    nilearn runs a full collection each time it reads an image, and in the test process
    (every test module imported: millions of objects) one costs ~0.09 s: 200 of the 590
    CPU seconds of the unit tests in one process. Frozen objects are skipped; results do
    not change, and what the test makes is collected as before. A module's fixture that
    reads images freezes for itself (it is made before this fixture)."""
    from mirrorflow.jobs import frozen_gc

    with frozen_gc():
        yield


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """Four participants, one run of four blocks each, written as raw BIDS with its truth."""
    from mirrorflow.simulate.study import SimulationParams, simulate_study

    root = tmp_path_factory.mktemp("study")
    params = SimulationParams(n_subjects=4, n_runs=1, n_blocks=4, seed=3)
    simulate_study(root / "bids", root / "truth", params)
    return {"bids": root / "bids", "truth": root / "truth", "params": params}
