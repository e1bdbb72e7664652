"""Family-wise false-positive rate of the default group inference on null studies.

Each simulated null study (mirrorflow.simulate.null) is 20 participants' first-level
effect maps of smooth Gaussian noise (FWHM 12 mm) in the MNI brain mask on an 8 mm grid
(3,666 voxels), with no effect anywhere; each is tested with the default config's
inference (permutation, cluster mass above p < 0.001, alpha 0.05) for a one-sample model
and for a regression on a random covariate, with the permutations split into two shards
as the workflow does. A study with any surviving voxel is a family-wise false positive.

N_STUDIES = 100 seeds per model. The rate must be at most 0.05 plus its binomial error:
count <= 100 * 0.05 + 1.645 * sqrt(100 * 0.05 * 0.95) = 8.6 (the one-sided 95% bound of
a binomial count at the nominal rate). Permutations per study are 99, in blocks of 50 and
49: a study is a false positive when at most 4 of the 99 null maxima reach its own
(nilearn's p = #{null >= observed} / n <= 0.05), which under the null has probability
exactly 5 / 100 = 0.05 (its rank among 100 exchangeable maxima); 200 permutations would
allow 10 of 200, 11 / 201 = 0.055. More permutations only sharpen the p-values, so 99
test the calibration as strictly, in half the time. The grid is 8 mm to keep the test
short; family-wise control does not depend on the grid.
"""

import numpy as np
import pandas as pd
import pytest
import yaml
from nilearn.datasets import load_mni152_brain_mask

from mirrorflow.group import inference
from mirrorflow.group.maps import design_matrix, fit_group
from mirrorflow.simulate.null import null_effect_maps

from ..workflow.conftest import REPO

N_STUDIES = 100
N_SUBJECTS = 20
ALPHA = 0.05
BOUND = N_STUDIES * ALPHA + 1.645 * np.sqrt(N_STUDIES * ALPHA * (1 - ALPHA))


@pytest.fixture(scope="module")
def settings():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    settings = dict(config["group"]["inference"], n_perm=99, block=50, shards=2)
    assert settings["method"] == "permutation" and settings["alpha"] == ALPHA
    return settings


def _false_positive(maps, design, column, mask, settings) -> bool:
    data = inference.permutation_data(maps, design, column, mask_img=mask)
    shards = [inference.null_shard(data, shard=k, shards=2, settings=settings)
              for k in range(2)]
    null = np.concatenate([
        s["null"][b] for b in range(2) for s in shards if b in s["null"]
    ])
    z = fit_group(maps, design, contrast=column, mask_img=mask)
    _, thresholded, _ = inference.permutation_threshold(data, null, z, settings=settings)
    return bool(np.any(thresholded.get_fdata() != 0))


@pytest.mark.parametrize("model", ["onesample", "regression"])
def test_family_wise_error_rate_on_null_studies(settings, model):
    mask = load_mni152_brain_mask(resolution=8)
    subjects = [f"{i:02d}" for i in range(N_SUBJECTS)]
    hits = 0
    for seed in range(N_STUDIES):
        maps = null_effect_maps(mask, n_subjects=N_SUBJECTS, fwhm=12.0, seed=seed)
        if model == "onesample":
            design, column = design_matrix(subjects), "intercept"
        else:
            covariate = np.random.default_rng(10_000 + seed).normal(size=N_SUBJECTS)
            design = design_matrix(subjects, covariate=pd.Series(covariate, index=subjects,
                                                                  name="eq"))
            column = "eq"
        hits += _false_positive(maps, design, column, mask, settings)
    print(f"{model}: {hits} false positives in {N_STUDIES} null studies (bound {BOUND:.1f})")
    assert hits <= BOUND
