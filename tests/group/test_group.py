import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.glm.second_level import SecondLevelModel
from scipy import stats

from mirrorflow.exceptions import InputDataError
from mirrorflow.group.behaviour import correlate
from mirrorflow.group.maps import design_matrix, group_design, group_model
from mirrorflow.group.overlap import conjunction

N = 16
AFFINE = np.diag([4.0, 4, 4, 1])
SUBJECTS = [f"{i:02d}" for i in range(N)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """16 subjects' effect maps of two conditions (8x8x8): voxels x<3 carry
    1 + 0.8 * z(EQ) in condition a, and a - 0.7 in condition b; others noise.
    participants.tsv has eq, age and sex."""
    root = tmp_path_factory.mktemp("group")
    rng = np.random.default_rng(1)
    eq = rng.normal(45, 11, N)
    z_eq = (eq - eq.mean()) / eq.std(ddof=1)
    paths = {"a": [], "b": []}
    for i in range(N):
        data = rng.normal(0, 0.3, (8, 8, 8))
        data[:3] += 1.0 + 0.8 * z_eq[i]
        other = data + rng.normal(0, 0.3, (8, 8, 8))
        other[:3] -= 0.7
        for name, values in (("a", data), ("b", other)):
            path = root / f"sub-{i:02d}_{name}_effect.nii.gz"
            nib.save(nib.Nifti1Image(values.astype(np.float32), AFFINE), path)
            paths[name].append(path)
    participants = root / "participants.tsv"
    pd.DataFrame({
        "participant_id": [f"sub-{s}" for s in SUBJECTS], "eq": eq,
        "age": rng.integers(19, 36, N), "sex": rng.choice(["F", "M"], N),
    }).to_csv(participants, sep="\t", index=False)
    mask = nib.Nifti1Image(np.ones((8, 8, 8), np.uint8), AFFINE)
    return {"maps": paths, "participants": participants, "mask": mask}


ONESAMPLE = {"kind": "onesample", "contrasts": ["a"]}
PAIRED = {"kind": "paired", "contrasts": ["a", "b"], "label": "aGtB"}
REGRESSION = {"kind": "regression", "contrasts": ["a"], "covariate": "eq",
              "nuisance": ["age", "sex"]}


def _reference(maps, design, contrast, mask):
    """nilearn's SecondLevelModel called directly."""
    return SecondLevelModel(mask_img=mask).fit(
        [str(p) for p in maps], design_matrix=design
    ).compute_contrast(contrast, output_type="z_score")


def test_one_sample_equals_nilearn_second_level(inputs):
    z, design, column, _ = group_model(inputs["maps"]["a"], spec=ONESAMPLE, subjects=SUBJECTS,
                                       mask_img=inputs["mask"])
    reference = _reference(inputs["maps"]["a"], pd.DataFrame({"intercept": np.ones(N)}),
                           "intercept", inputs["mask"])
    assert column == "intercept"
    np.testing.assert_allclose(z.get_fdata(), reference.get_fdata(), rtol=1e-6, atol=1e-6)


def test_paired_equals_nilearn_and_the_one_sample_test_of_differences(inputs, tmp_path):
    maps = inputs["maps"]["a"] + inputs["maps"]["b"]
    z, design, column, _ = group_model(maps, spec=PAIRED, subjects=SUBJECTS,
                                       mask_img=inputs["mask"])
    # nilearn's paired-test example design, written out independently.
    reference_design = pd.DataFrame(np.hstack([
        np.r_[np.ones(N), -np.ones(N)][:, None], np.vstack([np.eye(N), np.eye(N)])
    ]), columns=["aGtB", *[f"s{i}" for i in range(N)]])
    reference = _reference(maps, reference_design, "aGtB", inputs["mask"])
    np.testing.assert_allclose(z.get_fdata(), reference.get_fdata(), rtol=1e-6, atol=1e-6)
    assert list(design.index[:2]) == ["sub-00_a", "sub-01_a"]
    # The paired t is the one-sample t of the differences (same df, n - 1).
    diffs = []
    for i, (a, b) in enumerate(zip(inputs["maps"]["a"], inputs["maps"]["b"])):
        diff = nib.load(a).get_fdata() - nib.load(b).get_fdata()
        diffs.append(tmp_path / f"diff{i}.nii.gz")
        nib.save(nib.Nifti1Image(diff.astype(np.float32), AFFINE), diffs[-1])
    one = _reference(diffs, pd.DataFrame({"intercept": np.ones(N)}), "intercept", inputs["mask"])
    np.testing.assert_allclose(z.get_fdata(), one.get_fdata(), rtol=1e-4, atol=1e-4)
    assert (z.get_fdata()[:3] > 3).mean() > 0.9


def test_regression_with_nuisance_equals_nilearn_and_recovers_the_slope(inputs):
    z, design, column, methods = group_model(
        inputs["maps"]["a"], spec=REGRESSION, subjects=SUBJECTS, mask_img=inputs["mask"],
        participants_file=inputs["participants"],
    )
    table = pd.read_csv(inputs["participants"], sep="\t")
    centred = lambda v: v - v.mean()  # noqa: E731
    reference_design = pd.DataFrame({
        "intercept": np.ones(N), "eq": centred(table["eq"].to_numpy(float)),
        "age": centred(table["age"].to_numpy(float)),
        "sexM": centred((table["sex"] == "M").to_numpy(float)),
    })
    reference = _reference(inputs["maps"]["a"], reference_design, "eq", inputs["mask"])
    np.testing.assert_allclose(z.get_fdata(), reference.get_fdata(), rtol=1e-6, atol=1e-6)
    assert list(design.columns) == ["intercept", "eq", "age", "sexM"] and column == "eq"
    np.testing.assert_allclose(design.drop(columns="intercept").mean(), 0, atol=1e-12)
    data = z.get_fdata()
    assert (data[:3] > 3.1).mean() > 0.8 and (data[3:] > 3.1).mean() < 0.01
    assert "mean-centred eq" in methods and "age, sex" in methods


def test_design_matrix_follows_subject_order():
    covariate = pd.Series([1.0, 2.0, 6.0], index=["a", "b", "c"], name="eq")
    design = design_matrix(["c", "a"], covariate=covariate)
    assert design["eq"].tolist() == [2.5, -2.5]


def test_regression_refuses_missing_or_empty_columns(inputs, tmp_path):
    spec = dict(REGRESSION, nuisance=["handedness"])
    with pytest.raises(InputDataError, match=r"participants.tsv: missing nuisance.*handedness"):
        group_design(spec, SUBJECTS, participants_file=inputs["participants"])
    table = pd.read_csv(inputs["participants"], sep="\t")
    table.loc[3, "eq"] = np.nan
    bad = tmp_path / "participants.tsv"
    table.to_csv(bad, sep="\t", index=False)
    with pytest.raises(InputDataError, match=r"'eq' has missing or non-numeric values.*sub-03"):
        group_design(REGRESSION, SUBJECTS, participants_file=bad)


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
