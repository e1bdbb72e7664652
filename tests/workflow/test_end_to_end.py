"""The whole workflow, for real, on the reduced config: planted effects are recovered.

One Snakemake run (12 simulated participants, one run each; ALE and MACM with few
iterations) into a temporary folder (the session fixture ``run`` of conftest.py, shared
with test_reruns.py); every assertion compares with the ground truth the
simulators wrote. Tolerances were set from observed values with a margin (see comments).
"""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img
from scipy import ndimage

pytestmark = pytest.mark.e2e


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


def _sphere(img, centre, radius):
    ijk = np.indices(img.shape).reshape(3, -1).T
    xyz = nib.affines.apply_affine(img.affine, ijk).reshape(*img.shape, 3)
    return np.linalg.norm(xyz - np.asarray(centre), axis=-1) <= radius


GROUP_MAPS = {  # planted effect -> (contrast, model) of the group map that tests it
    "mismatchGtImitate": ("mismatchGtImitate", "paired"),
    "eq": ("imitate", "eq"),
    "accuracy": ("imitate", "accuracy"),
}


@pytest.mark.parametrize("effect", sorted(GROUP_MAPS))
def test_planted_group_effects_are_recovered_region_by_region(run, effect):
    """Default inference (permutation, cluster mass, FWE 0.05; 500 permutations here).
    Per planted region: Dice of the surviving voxels within 8 mm of the region's sphere
    with the sphere >= 0.5. Seen with seed 7 (four blocks a run, SyN registration): insula
    0.86/0.74 (mismatch > imitate), premotor 0.69/0.72 and somatosensory 0.80/0.70 (EQ),
    premotor 0.75/0.81 and insula 0.80/0.78 (accuracy); passed with the affine
    registration that the reduced config now uses."""
    contrast, model = GROUP_MAPS[effect]
    img = _group(run, contrast, model)
    found = img.get_fdata() > 0
    truth = json.loads(_one(run / "sourcedata/simulated/truth", "*effects.json").read_text())
    dice = {}
    for region in truth["effect_regions"][effect]:
        spec = truth["regions"][region]
        sphere = _sphere(img, spec["centre_mm"], spec["radius_mm"])
        near = found & _sphere(img, spec["centre_mm"], spec["radius_mm"] + 8)
        dice[region] = 2 * (near & sphere).sum() / (near.sum() + sphere.sum())
    assert min(dice.values()) >= 0.5, dice
    # Most surviving voxels lie in (or two voxels from) a planted region of this effect.
    _, near_truth = _truth(run, effect, img)
    assert (found & near_truth).sum() >= 0.8 * found.sum()


def test_group_maps_have_permutation_thresholds_and_labelled_cluster_tables(run):
    stem = "*contrast-mismatchGtImitate_model-paired"
    sidecar = json.loads(_one(run / "group", f"{stem}_stat-z_desc-thresholded_statmap.json")
                         .read_text())
    assert sidecar["Threshold"]["Method"] == "permutation"
    assert sidecar["Threshold"]["Statistic"] == "mass"
    assert sidecar["Threshold"]["Permutations"] == 500
    assert len(list((run / "group/nulls").glob(f"{stem}_shard-*_null.npz"))) == 2
    table = pd.read_csv(_one(run / "group", f"{stem}_desc-thresholded_clusters.tsv"), sep="\t")
    # Left and right insula among the peaks (cluster peaks and sub-peaks; with 6 mm
    # smoothing the main peaks can fall on the neighbouring operculum or precentral gyrus).
    insula = table[table["label"].str.contains("Insular")]
    assert (insula["x"] < 0).any() and (insula["x"] > 0).any()
    meta = json.loads(_one(run / "group", f"{stem}_desc-thresholded_clusters.json").read_text())
    assert "Harvard-Oxford" in meta["Atlas"] and meta["Threshold"]["Alpha"] == 0.05


def test_group_z_map_equals_nilearn_second_level_model_called_directly(run):
    """The eq regression's z map equals SecondLevelModel fitted here on the workflow's
    first-level maps with an independently built design (intercept, mean-centred EQ)."""
    from nilearn.glm.second_level import SecondLevelModel

    design = pd.read_csv(_one(run / "group", "*contrast-imitate_model-eq_design.tsv"), sep="\t")
    participants = pd.read_csv(run / "sourcedata/simulated/bids/participants.tsv", sep="\t")
    eq = participants.set_index("participant_id").loc[design["map"], "eq"].to_numpy(float)
    maps = [str(_one(run / "firstlevel" / sub, "*contrast-imitate_stat-effect_statmap.nii.gz"))
            for sub in design["map"]]
    mask = _one(run / "group", "*desc-group_mask.nii.gz")
    reference = SecondLevelModel(mask_img=str(mask)).fit(
        maps, design_matrix=pd.DataFrame({"intercept": np.ones(len(eq)), "eq": eq - eq.mean()})
    ).compute_contrast("eq", output_type="z_score")
    z = nib.load(_one(run / "group", "*contrast-imitate_model-eq_stat-z_statmap.nii.gz"))
    np.testing.assert_allclose(z.get_fdata(), reference.get_fdata(), rtol=1e-5, atol=1e-5)


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
    truth = json.loads((run / "meta/sourcedata/simulated/desc-truth_foci.json").read_text())
    shared = truth["shared_foci"]
    conjunction = nib.load(run / "meta/conjunction/meta-conjunction_z_desc-thresholded.nii.gz")
    for focus in shared:
        assert _value_near(conjunction, focus) > 0, focus
    for category in ("mimicry", "contagion"):
        ale = nib.load(run / f"meta/ale/meta-{category}_z_desc-thresholded.nii.gz")
        for focus in shared:
            assert _value_near(ale, focus) > 0, (category, focus)


def test_ale_keeps_only_planted_convergence_with_tables(run):
    """Simulated sets: every ALE cluster peak lies within 12 mm (6 voxels; reports spread
    with FWHM 10 mm) of a focus planted in that category or shared, and every cluster table
    names its atlases and has contributions for each cluster."""
    truth = json.loads((run / "meta/sourcedata/simulated/desc-truth_foci.json").read_text())
    for category in ("mimicry", "contagion"):
        planted = np.array(truth["planted_foci"][category], dtype=float)
        table = pd.read_csv(run / f"meta/ale/meta-{category}_clusters.tsv", sep="\t")
        clusters = table[table["size_voxels"].notna()]
        assert len(clusters) >= len(truth["shared_foci"]), category
        for peak in clusters[["x", "y", "z"]].to_numpy(float):
            assert np.linalg.norm(planted - peak, axis=1).min() <= 12.0, (category, peak)
        assert {"label_harvard_oxford", "label_aal"} <= set(table.columns)
        contributions = pd.read_csv(run / f"meta/ale/meta-{category}_contributions.tsv",
                                    sep="\t")
        assert len(contributions.columns) - 1 == len(clusters)
        assert (run / f"meta/ale/meta-{category}_glassbrain.png").stat().st_size > 10_000
    for name in ("conjunction/meta-conjunction", "contrast/meta-mimicryGtContagion",
                 "contrast/meta-contagionGtMimicry"):
        assert (run / f"meta/{name}_clusters.tsv").is_file(), name
    # Subtraction: each category's own planted focus is in its direction of the contrast.
    forward = nib.load(run / "meta/contrast/meta-mimicryGtContagion_z_desc-thresholded.nii.gz")
    reverse = nib.load(run / "meta/contrast/meta-contagionGtMimicry_z_desc-thresholded.nii.gz")
    assert _value_near(forward, truth["category_foci"]["mimicry"][0]) > 0
    assert _value_near(reverse, truth["category_foci"]["contagion"][0]) > 0
    # Gated: each direction lies inside the thresholded ALE of the category it is of.
    for direction, category in ((forward, "mimicry"), (reverse, "contagion")):
        gate = nib.load(run / f"meta/ale/meta-{category}_z_desc-thresholded.nii.gz")
        kept = np.asarray(direction.dataobj) > 0
        assert kept.any() and not np.any(kept & (np.asarray(gate.dataobj) == 0)), category


def test_macm_selects_experiments_in_the_seed_and_maps_them(run):
    experiments = pd.read_csv(run / "macm/meta-macm_experiments.tsv", sep="\t")
    assert len(experiments) > 50 and experiments["id"].is_unique
    assert (run / "macm/meta-macm_clusters.tsv").is_file()
    assert (run / "macm/meta-macm_contributions.tsv").is_file()
    seed = nib.load(run / "macm/seed/meta-macm_desc-seed_mask.nii.gz")
    macm = nib.load(run / "macm/meta-macm_z.nii.gz")
    seed_on_macm = resample_to_img(seed, macm, interpolation="nearest", force_resample=True,
                                   copy_header=True).get_fdata() > 0
    # Every selected experiment has a focus in the seed: the seed is where ALE peaks.
    assert macm.get_fdata()[seed_on_macm].mean() > 3 * macm.get_fdata()[macm.get_fdata() != 0].mean()


def test_sharded_nulls_equal_one_process(run, tmp_path):
    """The reduced config splits every meta-analysis null into 2 shard jobs: each category's
    corrected ALE maps equal one in-process computation of the whole null; the MACM's
    merged null equals one shard's; the subtraction's p map is NiMARE's own
    ALESubtraction (same seed) gated by the two thresholded ALE maps, bit for bit."""
    from nimare.meta.cbma.ale import ALESubtraction

    from mirrorflow.meta import null as engine
    from mirrorflow.meta.ale import fit_ale, load_dataset
    from mirrorflow.meta.macm import run_macm_null_shard

    assert len(list((run / "meta/ale/nulls").glob("*.npz"))) == 4
    coords = run / "meta/sourcedata"
    dset = load_dataset(coords / "desc-mimicry_coordinates.json")
    result = fit_ale(dset, voxel_thresh=0.001, n_iters=300, seed=1)
    for key, value in result.maps.items():
        if "corr-FWE" in key:
            saved = nib.load(run / f"meta/ale/meta-mimicry_{key}.nii.gz")
            mask = np.asarray(result.masker.mask_img.dataobj).astype(bool)
            np.testing.assert_array_equal(np.asarray(saved.dataobj)[mask], value, err_msg=key)

    shards = sorted((run / "macm/nulls").glob("*.npz"))
    assert len(shards) == 2
    one = tmp_path / "one.npz"
    run_macm_null_shard(seed_file=run / "macm/seed/meta-macm_desc-seed_mask.nii.gz",
                        reference_file=run / "macm/reference/data-neurosynth_version-7_dataset.pkl",
                        output=one, shard=0, shards=1, assumed_sample_size=20, n_iters=200,
                        seed=3)
    settings = json.loads(str(np.load(one)["settings"]))
    np.testing.assert_array_equal(engine.merge_shards(shards, settings),
                                  engine.merge_shards([one], settings))

    groups = [load_dataset(coords / f"desc-{c}_coordinates.json") for c in ("mimicry", "contagion")]
    # Gated (meta.contrast.gate: main_effect): NiMARE given each category's thresholded ALE.
    gates = [nib.load(run / f"meta/ale/meta-{c}_z_desc-thresholded.nii.gz")
             for c in ("mimicry", "contagion")]
    theirs = ALESubtraction(n_iters=200, random_state=2).fit(
        *groups, inference_map1=gates[0], inference_map2=gates[1])
    saved = nib.load(run / "meta/contrast/meta-contrast_p_desc-group1MinusGroup2.nii.gz")
    np.testing.assert_array_equal(
        np.asarray(saved.dataobj)[np.asarray(theirs.masker.mask_img.dataobj).astype(bool)],
        theirs.get_map("p_desc-group1MinusGroup2", return_type="array"))


def test_every_stage_is_bids_derivatives(run):
    for stage in ("preproc", "firstlevel", "group", "meta", "macm"):
        description = json.loads((run / stage / "dataset_description.json").read_text())
        assert description["DatasetType"] == "derivative"
    for path in (run / "group").glob("*_statmap.nii.gz"):
        assert path.with_name(path.name.replace(".nii.gz", ".json")).exists(), path
