"""Tests of mirrorflow.meta.reference and mirrorflow.meta.macm on a Neurosynth subset."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.macm import resample_seed, run_macm, select_experiments
from mirrorflow.meta.reference import build_reference, load_reference

SEED_CENTRE, SEED_RADIUS = [0.0, 10.0, 40.0], 10.0


@pytest.fixture(scope="module")
def seed_file(tmp_path_factory):
    """A 10 mm sphere on the MNI152 2 mm grid."""
    from nimare.utils import get_template

    template = get_template("mni152_2mm", mask="brain")
    ijk = np.indices(template.shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(template.affine, ijk)
    inside = np.linalg.norm(xyz - SEED_CENTRE, axis=1) <= SEED_RADIUS
    path = tmp_path_factory.mktemp("seed") / "seed_mask.nii.gz"
    nib.Nifti1Image(inside.reshape(template.shape).astype(np.uint8), template.affine).to_filename(
        path
    )
    return path


def test_selection_matches_independent_count(reference, seed_file):
    dset = load_reference(reference)
    # NiMARE's coordinates table (Talairach studies already moved to MNI by the converter)
    table = dset.coordinates
    seed = resample_seed(seed_file, dset)
    selected = select_experiments(dset, seed)
    # Independent count: nearest voxel (np.rint, round half to even as NiMARE) of each
    # focus in the table, looked up in the seed mask
    mask = np.asarray(seed.dataobj) > 0
    xyz1 = np.c_[table[["x", "y", "z"]].to_numpy(float), np.ones(len(table))]
    ijk = np.rint(xyz1 @ np.linalg.inv(seed.affine).T)[:, :3].astype(int)
    inside = np.all((ijk >= 0) & (ijk < mask.shape), axis=1)
    hit = np.zeros(len(table), bool)
    hit[inside] = mask[tuple(ijk[inside].T)]
    expected = set(table.loc[hit, "id"])
    assert expected, "the seed should select some studies of the subset"
    assert set(selected) == expected and len(selected) == len(expected)


def test_run_macm_writes_maps_and_table(reference, seed_file, tmp_path):
    out = run_macm(
        seed_file=seed_file,
        reference_file=reference,
        output_dir=tmp_path,
        experiments_file=tmp_path / "experiments.tsv",
        contributions_file=tmp_path / "contributions.tsv",
        assumed_sample_size=20,
        alpha=0.05,
        n_iters=20,
        n_cores=1,
        seed=3,
    )
    table = pd.read_csv(tmp_path / "experiments.tsv", sep="\t")
    assert len(table) == out["n_experiments"]
    # FocusCounter from the same fit: every selected experiment has a focus in the seed,
    # and the seed lies in the MACM's clusters, so each counts in at least one cluster.
    counts = pd.read_csv(tmp_path / "contributions.tsv", sep="\t")
    assert sorted(counts["id"]) == sorted(table["id"])
    assert counts.shape[1] > 1 and (counts.drop(columns="id").sum(axis=1) >= 1).all()
    assert {"id", "n_foci", "title", "year"} <= set(table.columns)
    assert (table["n_foci"] > 0).all()
    assert (tmp_path / "meta-macm_logp_level-voxel_corr-FWE_method-montecarlo.nii.gz").is_file()
    assert "assumed sample size of 20" in out["description"]


def test_empty_seed_fails_with_file_name(reference, tmp_path):
    empty = tmp_path / "meta-conjunction_desc-seed_mask.nii.gz"
    nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4)).to_filename(empty)
    with pytest.raises(InputDataError, match=r"seed_mask\.nii\.gz: the mask is empty"):
        run_macm(
            seed_file=empty,
            reference_file=reference,
            output_dir=tmp_path,
            experiments_file=tmp_path / "e.tsv",
            assumed_sample_size=20,
            alpha=0.05,
            n_iters=20,
            seed=1,
        )


def test_too_few_iterations_for_alpha(reference, seed_file, tmp_path):
    with pytest.raises(ConfigError, match="10 Monte Carlo iterations cannot give"):
        run_macm(
            seed_file=seed_file,
            reference_file=reference,
            output_dir=tmp_path,
            experiments_file=tmp_path / "e.tsv",
            assumed_sample_size=20,
            alpha=0.05,
            n_iters=10,
            seed=1,
        )


def test_missing_neurosynth_files(tmp_path):
    with pytest.raises(InputDataError, match="coordinates.tsv.gz does not exist"):
        build_reference(reference_dir=tmp_path, output_file=tmp_path / "x.pkl")


def test_missing_reference(tmp_path):
    with pytest.raises(InputDataError, match="x.pkl: file does not exist"):
        load_reference(tmp_path / "x.pkl")
