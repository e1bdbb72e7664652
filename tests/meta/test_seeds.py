"""MACM seeds: conjunction clusters (whole or peak spheres), spheres, masks."""

import nibabel as nib
import numpy as np
import pytest
from nimare.utils import get_template

from mirrorflow.exceptions import InputDataError
from mirrorflow.meta.seeds import seed_mask


@pytest.fixture(scope="module")
def template():
    return get_template("mni152_2mm", mask="brain")


def _xyz(img):
    ijk = np.indices(img.shape[:3]).reshape(3, -1).T
    return nib.affines.apply_affine(img.affine, ijk).reshape(*img.shape[:3], 3)


def _ball(template, centre, radius, value=3.0):
    data = np.zeros(template.shape, np.float32)
    data[np.linalg.norm(_xyz(template) - centre, axis=-1) <= radius] = value
    return data


def test_conjunction_clusters_whole_and_as_peak_spheres(template, tmp_path):
    data = _ball(template, [0, 10, 40], 8) + _ball(template, [-40, 32, 30], 6, 2.0)
    data[tuple(np.rint(np.linalg.inv(template.affine) @ [2, 10, 40, 1])[:3].astype(int))] = 9
    path = tmp_path / "conj.nii.gz"
    nib.Nifti1Image(data, template.affine).to_filename(path)
    whole, description = seed_mask(kind="conjunction", conjunction=path)
    np.testing.assert_array_equal(np.asarray(whole.dataobj), (data > 0).astype(np.uint8))
    assert description == "the conjunction clusters"
    spheres, _ = seed_mask(kind="conjunction", conjunction=path, radius=4)
    mask = np.asarray(spheres.dataobj) > 0
    xyz = _xyz(template)
    # Spheres centred on each cluster's peak: (2, 10, 40) (the maximum) and the second
    # cluster's first voxel of its plateau; voxel counts of a 4 mm ball on a 2 mm grid: 33.
    assert mask[tuple(np.rint(np.linalg.inv(template.affine) @ [2, 10, 40, 1])[:3].astype(int))]
    assert np.linalg.norm(xyz[mask] - [2, 10, 40], axis=1).min() == 0
    assert mask.sum() == 2 * 33


def test_spheres_and_masks(template, tmp_path):
    spheres = [{"label": "acc", "xyz": [0, 10, 40], "radius": 6},
               {"label": "ipl", "xyz": [-52, -40, 42], "radius": 6}]
    mask, description = seed_mask(kind="spheres", spheres=spheres)
    data = np.asarray(mask.dataobj) > 0
    expected = (_ball(template, [0, 10, 40], 6) + _ball(template, [-52, -40, 42], 6)) > 0
    np.testing.assert_array_equal(data, expected)
    assert "acc (0, 10, 40; 6 mm)" in description
    # A 1 mm mask is resampled (nearest neighbour) onto the 2 mm grid.
    fine = get_template("mni152_1mm", mask="brain")
    ball = np.zeros(fine.shape, np.uint8)
    ball[np.linalg.norm(_xyz(fine) - [0, 10, 40], axis=-1) <= 6] = 1
    nib.Nifti1Image(ball, fine.affine).to_filename(tmp_path / "a.nii.gz")
    union, _ = seed_mask(kind="masks", masks=[tmp_path / "a.nii.gz"])
    overlap = (np.asarray(union.dataobj) > 0) & (_ball(template, [0, 10, 40], 6) > 0)
    # Tolerance: nearest-neighbour resampling moves the ball's edge by up to one voxel.
    assert overlap.sum() >= 0.8 * (_ball(template, [0, 10, 40], 6) > 0).sum()


def test_bad_seeds(template, tmp_path):
    empty = tmp_path / "empty.nii.gz"
    nib.Nifti1Image(np.zeros(template.shape, np.float32), template.affine).to_filename(empty)
    with pytest.raises(InputDataError, match="conjunction map .*empty.nii.gz is empty"):
        seed_mask(kind="conjunction", conjunction=empty)
    with pytest.raises(InputDataError, match="empty.nii.gz: the mask is empty"):
        seed_mask(kind="masks", masks=[empty])
    with pytest.raises(InputDataError, match="nope.nii.gz: file does not exist"):
        seed_mask(kind="masks", masks=[tmp_path / "nope.nii.gz"])
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti")
    with pytest.raises(InputDataError, match="bad.nii.gz: cannot be read"):
        seed_mask(kind="masks", masks=[bad])
