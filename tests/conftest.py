"""Shared fixtures: a small seeded simulated study, made once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# ANTs registration is repeatable only with one ITK thread, which ITK reads once, before its
# first use in a process: set it for the test process as rule preproc_bold does for its job.
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def small_study(tmp_path_factory):
    """Four participants, one run of four blocks each, written as raw BIDS with its truth."""
    from mirrorflow.simulate.study import SimulationParams, simulate_study

    root = tmp_path_factory.mktemp("study")
    params = SimulationParams(n_subjects=4, n_runs=1, n_blocks=4, seed=3)
    simulate_study(root / "bids", root / "truth", params)
    return {"bids": root / "bids", "truth": root / "truth", "params": params}
