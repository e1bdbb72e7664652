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


@pytest.mark.parametrize(("radius", "holds"), [(0.5, False), (1.7, False), (1.8, True)])
def test_parse_time_check_of_a_sphere_agrees_with_the_seed_the_job_makes(template, radius,
                                                                         holds):
    """[1, 1, 1] is sqrt(3) = 1.73 mm from the nearest centre of the 2 mm grid: a sphere
    smaller than that would be dropped from the seed's union without a word."""
    from mirrorflow.exceptions import ConfigError
    from mirrorflow.meta.seeds import check_seeds, spheres_mask

    sphere = {"label": "tiny", "xyz": [1, 1, 1], "radius": radius}
    assert bool(np.asarray(spheres_mask([sphere["xyz"]], [radius], template).dataobj).any()) \
        == holds
    seeds = {"kind": "spheres", "spheres": [{"label": "ok", "xyz": [0, 10, 40], "radius": 6},
                                            sphere]}
    if holds:
        check_seeds(seeds)
        return
    with pytest.raises(ConfigError, match=r"macm.seeds.spheres\[1\] \('tiny' at \[1, 1, 1\], "
                                          r"radius .* holds no voxel .* 1.73 mm away"):
        check_seeds(seeds)


def test_parse_time_check_of_mask_files(template, tmp_path):
    from mirrorflow.meta.seeds import check_seeds

    empty = tmp_path / "empty.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), empty)
    four_d = tmp_path / "four_d.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.uint8), np.eye(4)), four_d)
    good = tmp_path / "good.nii.gz"
    nib.save(nib.Nifti1Image(_ball(template, [0, 10, 40], 6), template.affine), good)
    check_seeds({"kind": "masks", "masks": [str(good)]})
    for path, problem in ((empty, "the mask is empty"), (four_d, "expected a 3D image"),
                          (tmp_path / "absent.nii.gz", "file does not exist")):
        with pytest.raises(InputDataError, match=rf"MACM seed mask {path}: {problem}"):
            check_seeds({"kind": "masks", "masks": [str(good), str(path)]})
