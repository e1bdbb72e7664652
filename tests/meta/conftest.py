"""Fixtures of the meta-analysis tests: a Neurosynth v7 subset and its NiMARE reference."""

from pathlib import Path

import pandas as pd
import pytest

from mirrorflow.meta.reference import NEUROSYNTH_FILES, build_reference

NEUROSYNTH = Path(__file__).parents[2].parent / "shared" / "neurosynth"
N_STUDIES = 400  # subset of the 14,371 studies, so conversion and ALE take seconds

# The Neurosynth files are beside the project in every checkout and in CI (../shared):
# a missing file fails the tests rather than skipping them.


@pytest.fixture(scope="session")
def subset(tmp_path_factory):
    """The first N_STUDIES studies of Neurosynth v7, written under the v7 file names."""
    folder = tmp_path_factory.mktemp("neurosynth")
    coords = pd.read_csv(NEUROSYNTH / NEUROSYNTH_FILES["coordinates"], sep="\t")
    meta = pd.read_csv(NEUROSYNTH / NEUROSYNTH_FILES["metadata"], sep="\t")
    keep = meta["id"].iloc[:N_STUDIES]
    coords = coords[coords["id"].isin(keep)]
    coords.to_csv(folder / NEUROSYNTH_FILES["coordinates"], sep="\t", index=False)
    meta = meta[meta["id"].isin(keep)]
    meta.to_csv(folder / NEUROSYNTH_FILES["metadata"], sep="\t", index=False)
    return folder, coords


@pytest.fixture(scope="session")
def reference(subset, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "dataset.pkl"
    info = build_reference(reference_dir=subset[0], output_file=out)
    assert info["n_studies"] == N_STUDIES
    return out


@pytest.fixture(scope="session")
def reference_subset(reference, subset):
    """(pickled reference Dataset, the subset's coordinates table)."""
    return reference, subset[1]
