"""The whole workflow, for real, on the reduced config: planted effects are recovered.

One Snakemake run (12 simulated participants, one run each; ALE and MACM with few
iterations) into a temporary folder; every assertion compares with the ground truth the
simulators wrote. Tolerances were set from observed values with a margin (see comments).
"""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img
from scipy import ndimage

from .conftest import REDUCED, snakemake

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "results"
    snakemake("--cores", "2", "--configfile", REDUCED, "--config", f"output_dir={out}")
    return out


def _one(folder, pattern):
    matches = sorted(folder.glob(pattern))
    assert len(matches) == 1, (pattern, matches)
    return matches[0]


def _truth(run, effect, like):
    """A truth mask on the grid of ``like``, and the mask dilated by two voxels (8 mm: the
    6 mm smoothing kernel spreads each planted sphere)."""
    mask = nib.load(_one(run / "sourcedata/simulated/truth", f"*desc-{effect}_mask.nii.gz"))
    mask = resample_to_img(mask, like, interpolation="nearest", force_resample=True,
                           copy_header=True).get_fdata() > 0
    return mask, ndimage.binary_dilation(mask, iterations=2)


def _group(run, contrast, model, desc="thresholded"):
    return nib.load(_one(run / "group", f"*contrast-{contrast}_model-{model}_stat-z_desc-{desc}_statmap.nii.gz"))


@pytest.mark.parametrize(
    ("contrast", "model", "effect", "min_dice"),
    [
        # Seen with seed 7: Dice 0.62 (insula), 0.62 (EQ), 0.57 (accuracy) at p < 0.005.
        ("mismatchGtImitate", "onesample", "mismatchGtImitate", 0.4),
        ("imitate", "eq", "eq", 0.35),
        ("imitate", "accuracy", "accuracy", 0.4),
    ],
)
def test_planted_group_effects_are_recovered(run, contrast, model, effect, min_dice):
    img = _group(run, contrast, model)
    found = img.get_fdata() > 0
    truth, near_truth = _truth(run, effect, img)
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice >= min_dice
    # Most surviving voxels lie in (or two voxels from) a planted region of this effect:
    # seen 0.90 (insula), 0.94 (EQ), 0.91 (accuracy) with seed 7 at p < 0.005.
    assert (found & near_truth).sum() >= 0.8 * found.sum()


def test_overlap_of_eq_and_accuracy_is_in_premotor_cortex(run):
    img = _group(run, "imitate", "eqAndAccuracy", desc="conjunction")
    found = img.get_fdata() > 0
    _, near_premotor = _truth(run, "overlap", img)
    assert found.sum() >= 5
    assert (found & near_premotor).sum() >= 0.8 * found.sum()
    eq = _group(run, "imitate", "eq").get_fdata()
    accuracy = _group(run, "imitate", "accuracy").get_fdata()
    np.testing.assert_allclose(img.get_fdata()[found], np.minimum(eq, accuracy)[found])


def test_behavioural_correlation_matches_participants(run):
    result = json.loads(_one(run / "group/behaviour", "*_correlation.json").read_text())
    table = pd.read_csv(run / "sourcedata/simulated/bids/participants.tsv", sep="\t")
    assert result["n"] == 12
    assert result["pearson_r"] == pytest.approx(np.corrcoef(table["eq"], table["accuracy"])[0, 1])
    low, high = result["pearson_r_ci95"]
    assert low <= result["pearson_r"] <= high


def _value_near(img, xyz, radius=8.0):
    """Largest value of ``img`` within ``radius`` mm of ``xyz``."""
    data = img.get_fdata()
    ijk = np.indices(data.shape).reshape(3, -1).T
    coords = nib.affines.apply_affine(img.affine, ijk).reshape(*data.shape, 3)
    return data[np.linalg.norm(coords - np.asarray(xyz), axis=-1) <= radius].max()


def test_ale_conjunction_finds_the_shared_foci(run):
    truth = json.loads((run / "meta/sourcedata/desc-truth_foci.json").read_text())
    shared = truth["shared_foci"]
    conjunction = nib.load(run / "meta/conjunction/meta-conjunction_z_desc-thresholded.nii.gz")
    for focus in shared:
        assert _value_near(conjunction, focus) > 0, focus
    for category in ("mimicry", "contagion"):
        ale = nib.load(run / f"meta/ale/meta-{category}_z_desc-thresholded.nii.gz")
        for focus in shared:
            assert _value_near(ale, focus) > 0, (category, focus)


def test_macm_selects_experiments_in_the_seed_and_maps_them(run):
    experiments = pd.read_csv(run / "macm/meta-macm_experiments.tsv", sep="\t")
    assert len(experiments) > 50 and experiments["id"].is_unique
    seed = nib.load(run / "meta/conjunction/meta-conjunction_desc-seed_mask.nii.gz")
    macm = nib.load(run / "macm/meta-macm_z.nii.gz")
    seed_on_macm = resample_to_img(seed, macm, interpolation="nearest", force_resample=True,
                                   copy_header=True).get_fdata() > 0
    # Every selected experiment has a focus in the seed: the seed is where ALE peaks.
    assert macm.get_fdata()[seed_on_macm].mean() > 3 * macm.get_fdata()[macm.get_fdata() != 0].mean()


def test_every_stage_is_bids_derivatives(run):
    for stage in ("preproc", "firstlevel", "group", "meta", "macm"):
        description = json.loads((run / stage / "dataset_description.json").read_text())
        assert description["DatasetType"] == "derivative"
    for path in (run / "group").glob("*_statmap.nii.gz"):
        assert path.with_name(path.name.replace(".nii.gz", ".json")).exists(), path


def test_rerun_has_nothing_to_do(run):
    result = snakemake("-n", "--configfile", REDUCED, "--config", f"output_dir={run}")
    assert "Nothing to be done" in result.stdout + result.stderr
