"""Helpers to run the real Snakemake command line on the repository's workflow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .. import snakemake_fork
from ..conftest import once_per_session, session_root

REPO = Path(__file__).resolve().parents[2]
REDUCED = REPO / "tests" / "workflow" / "config-reduced" / "config.yaml"


def snakemake(*args, check=True, timeout=1800, env=None, cwd=REPO):
    """Run Snakemake's command line (``python -m snakemake *args``) in the repository (or
    ``cwd``), each call a fresh process forked from a server that has imported Snakemake
    and its plugins once (tests/snakemake_fork.py); return the completed process.

    Runs in the repository get ``--nolock``: both xdist workers run there at once, each
    into its own output folder, and a Snakemake run that ends deletes the working folder's
    whole ``.snakemake/locks`` folder, so the other worker's run could lose its locks, or
    fail to write them (FileNotFoundError at its start, seen in a clean-clone CI). The lock
    itself is tested in a working folder of its own (:func:`own_workdir`;
    test_fmriprep_mode.py).

    ``env``: variables added to (or replacing) this process's environment."""
    if Path(cwd) == REPO and "--nolock" not in args:
        args = (*args, "--nolock")
    result = snakemake_fork.run([str(a) for a in args], cwd=cwd, timeout=timeout,
                                env={**os.environ, **(env or {})})
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(map(str, args))} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


#: Folders of Snakemake's, Python's and the tests' own state, not the project's files:
#: among them the home folder's caches of jobs run in containers (Snakemake runs apptainer
#: with ``--home`` at the working folder; the other xdist worker's container run writes
#: matplotlib's and numba's caches there) and the executor tests' MACM reference slice.
_STATE = {".git", ".snakemake", ".venv", ".pytest_cache", "__pycache__", ".cache", ".config",
          ".pytest-reference"}


def own_workdir(folder: Path) -> Path:
    """``folder``, made a working folder for Snakemake with the repository's files (links
    to them) and its own .snakemake state: its locks are only its own. (Snakemake removes
    the whole .snakemake/locks folder when a run ends, so the runs of the other xdist
    worker in the repository would remove the locks of a run there.)"""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in REPO.iterdir():
        if entry.name not in _STATE:
            (folder / entry.name).symlink_to(entry)
    return folder


def file_states(root: Path, *, content=False) -> dict[str, tuple]:
    """(size, mtime) of every file under ``root`` (its SHA-256 too with ``content``),
    skipping :data:`_STATE` folders."""
    import hashlib

    states = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _STATE]
        for name in files:
            path = Path(folder, name)
            stat = path.stat()
            state = (stat.st_size, stat.st_mtime_ns)
            if content:
                state += (hashlib.sha256(path.read_bytes()).hexdigest(),)
            states[str(path.relative_to(root))] = state
    return states


@pytest.fixture(scope="session")
def run(tmp_path_factory):
    """One real run of the whole workflow on the reduced config; its output folder.

    The run reads the repository (config, resources) and the Neurosynth release in
    ../shared and writes only under its output folder: both trees are the same, file for
    file and byte for byte, afterwards. Made once per session, by the first xdist worker
    that needs it (its tests are one xdist unit: tests/conftest.py)."""
    out = session_root(tmp_path_factory) / "e2e" / "results"

    def reduced_run():
        neurosynth = REPO.parent / "shared" / "neurosynth"
        before = file_states(REPO), file_states(neurosynth, content=True)
        snakemake("--cores", "2", "--configfile", REDUCED, "--config", f"output_dir={out}")
        after = file_states(REPO), file_states(neurosynth, content=True)
        assert after[0] == before[0], set(after[0].items()) ^ set(before[0].items())
        assert after[1] == before[1]

    once_per_session(tmp_path_factory, "e2e-run", reduced_run)
    return out
