"""What a job asks its scheduler for, and what it was granted, checked before the heavy
work starts.

Each rule states its threads, ``mem_mb`` and ``runtime`` (minutes) itself, so they come
with the workflow wherever it runs, a Snakemake module included (a profile is not loaded
there); a profile or ``--set-resources`` can still override them. Most rules' memory and
time grow with the attempt (:func:`per_attempt`), so a job killed for memory or time is
resubmitted with more.

On a cluster that enforces memory limits (cgroups), a job that needs more than it asked
for is killed mid-way and Snakemake resubmits it with more (``mem_mb`` grows with
``attempt``). A job that can estimate its need does better: it fails at
once, with a message saying how much it needs. That also covers schedulers that do not
enforce limits, where an oversubscribed node would otherwise swap.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys

LGR = logging.getLogger(__name__)

__all__ = ["granted_memory_mb", "per_attempt", "require_memory"]


def per_attempt(base: int):
    """A rule's resource that grows with the attempt: ``base`` on the first, twice
    ``base`` on the second, and so on (Snakemake calls it with the job's wildcards and
    attempt)."""

    def grown(wildcards, attempt):
        return base * attempt

    grown.__name__ = grown.__qualname__ = f"per_attempt_{base}"
    return grown


def granted_memory_mb(environ=None) -> int | None:
    """Memory (MB) SLURM granted this job, or None when not running under SLURM.

    From SLURM's job environment, or, in a job step whose environment was trimmed (the
    Snakemake SLURM plugin keeps only the job id for its nested srun), from
    ``scontrol show job``."""
    environ = os.environ if environ is None else environ
    if environ.get("SLURM_MEM_PER_NODE"):
        return int(environ["SLURM_MEM_PER_NODE"])
    if environ.get("SLURM_MEM_PER_CPU"):
        cpus = int(environ.get("SLURM_CPUS_ON_NODE") or environ.get("SLURM_CPUS_PER_TASK") or 1)
        return int(environ["SLURM_MEM_PER_CPU"]) * cpus
    if environ.get("SLURM_JOB_ID") and shutil.which("scontrol"):
        shown = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", environ["SLURM_JOB_ID"]],
            capture_output=True, text=True, check=False,
        ).stdout
        found = re.search(r"MinMemoryNode=(\d+(?:\.\d+)?)([KMGT]?)", shown)
        if found:
            scale = {"K": 1 / 1024, "": 1, "M": 1, "G": 1024, "T": 1024**2}[found.group(2)]
            return int(float(found.group(1)) * scale)
    return None


def require_memory(needed_mb: float, what: str, environ=None) -> None:
    """Raise :class:`MemoryError` if the scheduler granted less than ``needed_mb``.

    Parameters
    ----------
    needed_mb : :obj:`float`
        Estimated peak memory of the job, in MB.
    what : :obj:`str`
        What needs it (for the message).
    """
    granted = granted_memory_mb(environ)
    if granted is None:
        LGR.info("%s needs about %.0f MB (no scheduler limit to check)", what, needed_mb)
        return
    if granted < needed_mb:
        message = (
            f"{what} needs about {needed_mb:.0f} MB but the scheduler granted {granted} MB "
            "(resources.mem_mb); Snakemake retries with more memory when the profile sets "
            "retries and mem_mb grows with attempt"
        )
        # Also in the scheduler's own job log (the rule's log is rewritten on a retry).
        print(f"MemoryError: {message}", file=sys.__stderr__, flush=True)
        raise MemoryError(message)
    LGR.info("%s needs about %.0f MB; granted %d MB", what, needed_mb, granted)
