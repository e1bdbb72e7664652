"""mirrorflow.group.tfce: nilearn's TFCE, bit for bit, on maps like the group stage's."""

import numpy as np
import pytest
from nilearn.datasets import load_mni152_brain_mask
from nilearn.mass_univariate import _utils as nilearn_utils
from nilearn.mass_univariate import permuted_least_squares
from scipy import ndimage

from mirrorflow.group.tfce import calculate_tfce, nilearn_tfce

SIX = ndimage.generate_binary_structure(3, 1)


@pytest.fixture(scope="module")
def maps():
    """t-like maps in the 4 mm brain mask (29,398 voxels): smooth noise of three widths,
    one with a NaN voxel, one with a planted blob; 0 outside the brain, as nilearn's
    permutations unmask them."""
    mask = load_mni152_brain_mask(resolution=4).get_fdata() > 0
    rng = np.random.default_rng(0)
    out = []
    for i, sigma in enumerate((0.5, 1.0, 2.0, 1.0, 1.5)):
        vol = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma)
        vol *= 3 / vol[mask].std()
        if i == 3:
            vol[tuple(np.argwhere(mask)[100])] = np.nan
        if i == 4:
            vol[20:26, 30:36, 20:26] += 6
        vol[~mask] = 0
        out.append(vol)
    return np.stack(out, axis=-1)


@pytest.mark.parametrize("two_sided", [False, True])
def test_equals_nilearn_bit_for_bit(maps, two_sided):
    """Every voxel of every map (several regressors in one 4D array), one- and
    two-sided, NaN included."""
    theirs = nilearn_utils.calculate_tfce(maps, SIX, two_sided_test=two_sided)
    ours = calculate_tfce(maps, SIX, two_sided_test=two_sided)
    assert np.array_equal(ours, theirs, equal_nan=True)
    # The NaN voxel is in a cluster at every threshold (nilearn never zeroes it).
    nan_voxel = np.isnan(maps[..., 3])
    assert nan_voxel.sum() == 1 and ours[..., 3][nan_voxel] != 0 and np.nanmax(ours) > 0


def test_other_steps_and_weights(maps):
    """A fixed step ``dh`` and other E and H."""
    arr = maps[..., :2]
    for kwargs in ({"dh": 0.1}, {"E": 1.0, "H": 1.5}):
        theirs = nilearn_utils.calculate_tfce(arr, SIX, two_sided_test=False, **kwargs)
        assert np.array_equal(calculate_tfce(arr, SIX, two_sided_test=False, **kwargs), theirs)


def test_what_it_does_not_cover_is_nilearns_own(maps):
    """26-connectivity, float32 maps and a map without a positive value (its thresholds
    do not lie above zero) go to nilearn."""
    arr = maps[..., :1]
    cube = ndimage.generate_binary_structure(3, 3)
    assert np.array_equal(calculate_tfce(arr, cube, two_sided_test=False),
                          nilearn_utils.calculate_tfce(arr, cube, two_sided_test=False))
    single = arr.astype(np.float32)
    assert np.array_equal(calculate_tfce(single, SIX, two_sided_test=False),
                          nilearn_utils.calculate_tfce(single, SIX, two_sided_test=False))
    negative = -np.abs(arr) - 0.1
    theirs = nilearn_utils.calculate_tfce(negative, SIX, two_sided_test=False)
    assert np.array_equal(calculate_tfce(negative, SIX, two_sided_test=False), theirs)


def test_swapped_into_nilearn_only_inside_the_block():
    original = permuted_least_squares.calculate_tfce
    with nilearn_tfce():
        assert permuted_least_squares.calculate_tfce is calculate_tfce
    assert permuted_least_squares.calculate_tfce is original
