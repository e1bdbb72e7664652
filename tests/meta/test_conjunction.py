"""Tests of mirrorflow.meta.conjunction: minimum statistic and seed mask."""

import json

import nibabel as nib
import numpy as np
import pytest

from mirrorflow.exceptions import InputDataError
from mirrorflow.meta.conjunction import conjunction_maps, run_conjunction


def _img(data, path):
    img = nib.Nifti1Image(np.asarray(data, dtype=np.float32), np.diag([2.0, 2.0, 2.0, 1.0]))
    img.to_filename(path)
    return path


@pytest.fixture
def two_maps(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 5, (6, 6, 6)) * (rng.uniform(size=(6, 6, 6)) > 0.4)
    b = rng.uniform(1, 5, (6, 6, 6)) * (rng.uniform(size=(6, 6, 6)) > 0.4)
    return a, b, [_img(a, tmp_path / "a.nii.gz"), _img(b, tmp_path / "b.nii.gz")]


def test_voxelwise_minimum_and_zero_outside(two_maps):
    a, b, paths = two_maps
    conj, mask = conjunction_maps(paths)
    expected = np.where((a > 0) & (b > 0), np.minimum(a, b), 0)
    np.testing.assert_allclose(conj.get_fdata(), expected, rtol=1e-6)
    assert not np.any(conj.get_fdata()[(a == 0) | (b == 0)])
    np.testing.assert_array_equal(np.asarray(mask.dataobj), (expected > 0).astype(np.uint8))


def test_run_conjunction_writes_map_and_sidecar(two_maps, tmp_path):
    _, _, paths = two_maps
    out = run_conjunction(maps=paths, labels=["a", "b"], conjunction_file=tmp_path / "c.nii.gz")
    written = nib.load(tmp_path / "c.nii.gz")
    assert written.get_data_dtype() == np.float32
    assert out["n_voxels"] == int((np.asarray(written.dataobj) > 0).sum())
    assert json.loads((tmp_path / "c.json").read_text())["Categories"] == ["a", "b"]


def test_empty_conjunction_gives_empty_mask(tmp_path):
    a = np.zeros((4, 4, 4))
    a[0, 0, 0] = 3
    b = np.zeros((4, 4, 4))
    b[1, 1, 1] = 3
    paths = [_img(a, tmp_path / "a.nii.gz"), _img(b, tmp_path / "b.nii.gz")]
    _, mask = conjunction_maps(paths)
    assert not np.asarray(mask.dataobj).any()


def test_needs_two_maps(tmp_path):
    with pytest.raises(InputDataError, match="at least two"):
        conjunction_maps([_img(np.ones((2, 2, 2)), tmp_path / "a.nii.gz")])


def test_grids_must_match(tmp_path):
    paths = [
        _img(np.ones((2, 2, 2)), tmp_path / "a.nii.gz"),
        _img(np.ones((3, 2, 2)), tmp_path / "b.nii.gz"),
    ]
    with pytest.raises(InputDataError, match="b.nii.gz: grid"):
        conjunction_maps(paths)


def test_missing_map(tmp_path):
    with pytest.raises(InputDataError, match="missing.nii.gz: file does not exist"):
        conjunction_maps([tmp_path / "missing.nii.gz", tmp_path / "missing.nii.gz"])
