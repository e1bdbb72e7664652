"""Snakemake's command line for the tests, each call a fresh process started in a fraction
of a second instead of ~3 s.

Every ``python -m snakemake`` start imports Snakemake and every installed plugin (the
executor and storage plugins of requirements-test.lock: ~3 s of a 5 s dry run on this 2-core
machine), and the suite calls Snakemake about a hundred times. :func:`run` forks each call
from one server process that has imported them once (multiprocessing's forkserver, which
preloads :mod:`tests._snakemake_preload`); the child takes the call's environment and
working directory, sends stdout and stderr to files, and runs ``snakemake.cli.main`` with
the call's arguments: the same command line and exit status as ``python -m snakemake``,
one process per call, in its own session (a timeout kills its process group).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["tests._snakemake_preload"])


def _main(argv: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str):
    """The child: a new session, the call's environment and folder, output to files."""
    os.setsid()
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, path in ((1, stdout), (2, stderr)):
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(handle, fd)
        os.close(handle)
    sys.argv = ["snakemake", *argv]
    from snakemake.cli import main

    main(argv)  # exits with Snakemake's status


def run(argv: list[str], *, cwd: Path, env: dict[str, str],
        timeout: float) -> subprocess.CompletedProcess:
    """``python -m snakemake *argv`` in ``cwd`` with ``env``; its completed process (text
    output). Raises :class:`subprocess.TimeoutExpired` after killing it and its jobs."""
    with tempfile.TemporaryDirectory(prefix="snakemake-call-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        child = _CONTEXT.Process(target=_main, args=(argv, str(cwd), env, str(out), str(err)))
        child.start()
        child.join(timeout)
        if child.is_alive():
            os.killpg(child.pid, signal.SIGKILL)
            child.join()
            raise subprocess.TimeoutExpired(["snakemake", *argv], timeout)
        text = [path.read_text(errors="replace") if path.exists() else ""
                for path in (out, err)]
        return subprocess.CompletedProcess(["snakemake", *argv], child.exitcode, *text)
