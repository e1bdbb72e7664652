import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from mirrorflow.group.behaviour import correlate
from mirrorflow.group.maps import design_matrix, group_model
from mirrorflow.group.overlap import conjunction

N = 16
AFFINE = np.diag([4.0, 4, 4, 1])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """16 subjects' effect maps (8x8x8): voxels x<3 carry 1 + 0.8 * z(EQ), others noise."""
    root = tmp_path_factory.mktemp("group")
    rng = np.random.default_rng(1)
    eq = rng.normal(45, 11, N)
    z_eq = (eq - eq.mean()) / eq.std(ddof=1)
    paths = []
    for i in range(N):
        data = rng.normal(0, 0.3, (8, 8, 8))
        data[:3] += 1.0 + 0.8 * z_eq[i]
        path = root / f"sub-{i:02d}_effect.nii.gz"
        nib.save(nib.Nifti1Image(data.astype(np.float32), AFFINE), path)
        paths.append(path)
    participants = root / "participants.tsv"
    pd.DataFrame({"participant_id": [f"sub-{i:02d}" for i in range(N)], "eq": eq}).to_csv(
        participants, sep="\t", index=False
    )
    mask = nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), AFFINE)
    return {"maps": paths, "participants": participants, "mask": mask,
            "subjects": [f"{i:02d}" for i in range(N)]}


THRESHOLD = {"height_control": "fpr", "alpha": 0.001, "cluster_threshold": 0}


def test_one_sample_equals_nilearn_second_level(inputs):
    from nilearn.glm.second_level import SecondLevelModel

    z, thresholded, z_thr, design, _ = group_model(
        inputs["maps"], subjects=inputs["subjects"], mask_img=inputs["mask"], threshold=THRESHOLD
    )
    reference = SecondLevelModel(mask_img=inputs["mask"]).fit(
        [str(p) for p in inputs["maps"]],
        design_matrix=pd.DataFrame({"intercept": np.ones(N)}),
    ).compute_contrast("intercept", output_type="z_score")
    np.testing.assert_allclose(z.get_fdata(), reference.get_fdata(), rtol=1e-6, atol=1e-6)
    assert z_thr == pytest.approx(stats.norm.isf(0.001))
    data = thresholded.get_fdata()
    assert (data[:3] > 0).mean() > 0.95 and (data[3:] > 0).mean() < 0.01


def test_regression_recovers_the_slope_region(inputs):
    z, thresholded, _, design, methods = group_model(
        inputs["maps"], subjects=inputs["subjects"], mask_img=inputs["mask"],
        threshold=THRESHOLD, participants_file=inputs["participants"], covariate="eq",
    )
    assert list(design.columns) == ["intercept", "eq"]
    assert design["eq"].mean() == pytest.approx(0, abs=1e-9)  # mean-centred
    data = thresholded.get_fdata()
    assert (data[:3] > 0).mean() > 0.9 and (data[3:] > 0).mean() < 0.01
    assert "mean-centred eq" in methods


def test_design_matrix_follows_subject_order():
    covariate = pd.Series([1.0, 2.0, 6.0], index=["a", "b", "c"], name="eq")
    design = design_matrix(["c", "a"], covariate=covariate)
    assert design["eq"].tolist() == [2.5, -2.5]


def test_conjunction_is_the_minimum_where_both_hold():
    a = nib.Nifti1Image(np.array([[[3.0, 0.0, 5.0, 4.0]]]), np.eye(4))
    b = nib.Nifti1Image(np.array([[[4.0, 6.0, 0.0, 3.5]]]), np.eye(4))
    assert conjunction([a, b]).get_fdata().ravel().tolist() == [3.0, 0.0, 0.0, 3.5]
    with pytest.raises(ValueError, match="at least two"):
        conjunction([a])


def test_correlation_matches_scipy_and_ci_covers_r():
    rng = np.random.default_rng(2)
    x = rng.normal(size=40)
    table = pd.DataFrame({"eq": x, "accuracy": 0.5 * x + rng.normal(size=40)})
    result = correlate(table, x="eq", y="accuracy", n_boot=2000, seed=1)
    assert result["pearson_r"] == pytest.approx(stats.pearsonr(x, table.accuracy.to_numpy()).statistic)
    assert result["spearman_rho"] == pytest.approx(stats.spearmanr(x, table.accuracy.to_numpy()).statistic)
    low, high = result["pearson_r_ci95"]
    assert low < result["pearson_r"] < high and result["n"] == 40
    assert correlate(table, x="eq", y="accuracy", n_boot=2000, seed=1) == result
