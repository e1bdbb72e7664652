"""Tests of mirrorflow.meta.contrast: ALE subtraction sign convention and thresholds."""

import nibabel as nib
import numpy as np
import pytest
from nimare.dataset import Dataset

from mirrorflow.exceptions import ConfigError
from mirrorflow.jobs import frozen_gc
from mirrorflow.meta.contrast import _check_resolution, fit_subtraction, threshold_directions
from mirrorflow.simulate.coordinates import simulate_coordinate_sets

FOCUS_1 = [-46, -6, 48]  # planted only in group 1
FOCUS_2 = [38, 18, -4]  # planted only in group 2


@pytest.fixture(scope="module")
def subtraction():
    with frozen_gc():  # as each test (tests/conftest.py)
        datasets, _ = simulate_coordinate_sets(
            categories={"one": [FOCUS_1], "two": [FOCUS_2]},
            shared_foci=[[0, 10, 40]],
            n_experiments=12,
            sample_size=(15, 30),
            n_noise_foci=2,
            fwhm=10.0,
            seed=5,
        )
        dset1, dset2 = Dataset(datasets["one"]), Dataset(datasets["two"])
        return fit_subtraction(dset1, dset2, n_iters=100, seed=2)


def _at(img, xyz):
    ijk = np.rint(np.linalg.inv(img.affine) @ [*xyz, 1])[:3].astype(int)
    return np.asarray(img.dataobj)[tuple(ijk)]


def test_sign_convention(subtraction):
    # z_desc-group1MinusGroup2 is positive where group 1 > group 2, negative where 2 > 1
    z = subtraction.get_map("z_desc-group1MinusGroup2")
    assert _at(z, FOCUS_1) > 0
    assert _at(z, FOCUS_2) < 0


def test_directions_are_positive_and_disjoint(subtraction):
    forward, reverse = threshold_directions(subtraction, voxel_thresh=0.05)
    f, r = np.asarray(forward.dataobj), np.asarray(reverse.dataobj)
    assert f.min() >= 0 and r.min() >= 0
    assert not np.any((f > 0) & (r > 0))
    assert _at(forward, FOCUS_1) > 0 and _at(forward, FOCUS_2) == 0
    assert _at(reverse, FOCUS_2) > 0 and _at(reverse, FOCUS_1) == 0


def test_shared_ids_refused():
    dset, _ = simulate_coordinate_sets(
        categories={"a": []},
        shared_foci=[[0, 10, 40]],
        n_experiments=2,
        sample_size=(10, 10),
        n_noise_foci=0,
        fwhm=10.0,
        seed=1,
    )
    same = Dataset(dset["a"])
    with pytest.raises(ConfigError, match="share 2 experiment id"):
        fit_subtraction(same, same, n_iters=5, seed=1)


def test_permutations_must_resolve_threshold():
    with pytest.raises(ConfigError, match="1000 permutations cannot give p < 0.001"):
        _check_resolution(voxel_thresh=0.001, n_iters=1000)
    _check_resolution(voxel_thresh=0.01, n_iters=1000)


def test_thresholds_checked(subtraction):
    with pytest.raises(ConfigError, match="voxel p"):
        threshold_directions(subtraction, voxel_thresh=0)
    assert isinstance(threshold_directions(subtraction, voxel_thresh=0.5)[0], nib.Nifti1Image)


def test_minimum_cluster_volume(subtraction):
    """Clusters below the minimum volume go; larger ones stay unchanged."""
    from scipy import ndimage

    forward, _ = threshold_directions(subtraction, voxel_thresh=0.05)
    data = np.asarray(forward.dataobj)
    labels, n = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(labels.ravel())[1:] * 8  # 2 mm voxels
    assert n >= 2
    cut = float(np.sort(sizes)[-1])  # keep only the largest cluster
    kept, _ = threshold_directions(subtraction, voxel_thresh=0.05, min_cluster_mm3=cut)
    largest = labels == (np.argmax(sizes) + 1)
    np.testing.assert_array_equal(np.asarray(kept.dataobj) > 0, largest)
    np.testing.assert_array_equal(np.asarray(kept.dataobj)[largest], data[largest])
