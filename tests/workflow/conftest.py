"""Helpers to run the real Snakemake command line on the repository's workflow."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REDUCED = REPO / "tests" / "workflow" / "config-reduced" / "config.yaml"


def snakemake(*args, check=True, timeout=1800, env=None):
    """Run ``python -m snakemake`` in the repository; return the completed process.

    ``env``: variables added to (or replacing) this process's environment."""
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", *map(str, args)],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(map(str, args))} failed ({result.returncode}):\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result
