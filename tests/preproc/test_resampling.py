"""The single-resampling engine against ANTs and nipy, and slice-timing correction."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from mirrorflow.io.templates import template_files
from mirrorflow.preproc.resampling import (
    grid_points,
    map_points,
    resample_series,
    slice_timing_correct,
)


def _rigid(angle_deg, translation):
    a = np.deg2rad(angle_deg)
    out = np.eye(4)
    out[:2, :2] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    out[:3, 3] = translation
    return out


def test_points_through_ants_transforms_resample_like_ants(tmp_path):
    """Mapping the output grid's points through an ANTs registration, then interpolating,
    gives ANTs' own resampled image (both trilinear)."""
    import ants

    tpl = template_files(tmp_path / "tpl", 4)
    fixed = nib.load(tpl["template"])
    moved_affine = _rigid(6, [4.0, -3.0, 5.0]) @ fixed.affine
    moving = tmp_path / "moving.nii.gz"
    nib.Nifti1Image(fixed.get_fdata().astype(np.float32), moved_affine).to_filename(moving)
    reg = ants.registration(fixed=ants.image_read(tpl["template"]),
                            moving=ants.image_read(str(moving)), type_of_transform="Rigid")
    points = map_points(grid_points(fixed.shape, fixed.affine), reg["fwdtransforms"])
    data = nib.load(moving).get_fdata()[..., None]
    ours, fov = resample_series(data, moved_affine, points, np.eye(4)[None],
                                out_shape=fixed.shape)
    theirs = ants.apply_transforms(fixed=ants.image_read(tpl["template"]),
                                   moving=ants.image_read(str(moving)),
                                   transformlist=reg["fwdtransforms"]).numpy()
    for path in {*reg["fwdtransforms"], *reg["invtransforms"]}:  # ANTs leaves them in /tmp
        Path(path).unlink(missing_ok=True)
    inside = fixed.get_fdata() > 0.1
    # Within half a voxel of the moving grid's border the two conventions differ (ITK clamps
    # to the border voxel, scipy blends with zero): compare where both interpolate inside.
    voxels = (np.linalg.inv(moved_affine) @ np.c_[points, np.ones(len(points))].T)[:3]
    within = np.all((voxels >= 0) & (voxels <= np.array(fixed.shape)[:, None] - 1), axis=0)
    compared = inside & within.reshape(fixed.shape)
    assert compared.sum() > 0.99 * inside.sum()
    np.testing.assert_allclose(ours[..., 0][compared], theirs[compared], atol=1e-3)
    assert fov[inside].mean() > 0.99
    # and the registration undid the known rigid move (where the moved image has data)
    np.testing.assert_allclose(ours[..., 0][compared], fixed.get_fdata()[compared], atol=0.08)


def test_motion_matrices_follow_nipy_convention():
    """A volume moved by a known rigid transform comes back when that transform is given
    as its motion (reference world -> volume world)."""
    rng = np.random.default_rng(0)
    from scipy import ndimage

    ref = ndimage.gaussian_filter(rng.random((20, 22, 18)), 2)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -30
    motion = _rigid(3, [1.5, -1.0, 0.5])
    # volume t sampled so that world x (reference) appears at motion @ x
    points = grid_points(ref.shape, affine)
    inverse = np.linalg.inv(motion)
    moved_vox = (np.linalg.inv(affine) @ inverse @ np.c_[points, np.ones(len(points))].T)[:3]
    moved = ndimage.map_coordinates(ref, moved_vox, order=3).reshape(ref.shape)
    series = np.stack([ref, moved], axis=-1)
    out, _ = resample_series(series, affine, points, np.stack([np.eye(4), motion]),
                             out_shape=ref.shape, order=3)
    core = (slice(5, -5),) * 3
    np.testing.assert_allclose(out[..., 1][core], ref[core], atol=0.02)


@pytest.mark.parametrize("axis", [0, 2])
def test_slice_timing_aligns_slices_in_time(axis):
    """A slow sinusoid sampled at each slice's own acquisition time is aligned to the
    reference time after correction."""
    tr, n = 2.0, 60
    times = np.array([0.0, 1.0, 0.5, 1.5])  # interleaved
    shape = [3, 3, 3]
    shape[axis] = len(times)
    data = np.zeros((*shape, n), dtype=np.float32)
    signal = lambda t: np.sin(2 * np.pi * t / 40.0)  # noqa: E731
    for k, acquired in enumerate(times):
        index = [slice(None)] * 3
        index[axis] = k
        data[tuple(index)] = signal(np.arange(n) * tr + acquired)
    out = slice_timing_correct(data, slice_times=times, tr=tr, slice_axis=axis)
    expected = signal(np.arange(n) * tr + 0.75)  # middle of [0, 1.5]
    inner = slice(2, n - 2)
    before = np.abs(np.moveaxis(data, axis, 0)[:, 0, 0, inner] - expected[inner]).max()
    after = np.abs(np.moveaxis(out, axis, 0)[:, 0, 0, inner] - expected[inner]).max()
    assert before > 0.05
    assert after < 1e-3


def test_slice_timing_count_must_match():
    with pytest.raises(ValueError, match="3 slice times for 4 slices"):
        slice_timing_correct(np.zeros((2, 2, 4, 5)), slice_times=[0, 1, 2], tr=2.0)


def test_realign_motion_applied_by_the_engine_removes_motion(tmp_path):
    """nipy's estimates, applied by resample_series, undo known head motion; applied the
    wrong way round they would double it."""
    from scipy import ndimage

    from mirrorflow.preproc.bold import Realign

    rng = np.random.default_rng(1)
    shape = (32, 32, 24)
    head = np.zeros(shape)
    head[6:26, 5:27, 4:20] = 1.0
    head = ndimage.gaussian_filter(head + 0.5 * ndimage.gaussian_filter(rng.random(shape), 1.5), 1)
    affine = np.diag([3.0, 3.0, 3.0, 1.0])
    affine[:3, 3] = -np.array(shape) * 1.5
    points = grid_points(shape, affine)
    homogeneous = np.c_[points, np.ones(len(points))].T
    volumes = []
    for t in range(8):
        motion = _rigid(rng.uniform(-2, 2), rng.uniform(-2, 2, 3)) if t else np.eye(4)
        vox = (np.linalg.inv(affine) @ np.linalg.inv(motion) @ homogeneous)[:3]
        volumes.append(ndimage.map_coordinates(head, vox, order=3).reshape(shape))
    series = np.stack(volumes, axis=-1).astype(np.float32) * 1000
    bold = tmp_path / "bold.nii.gz"
    img = nib.Nifti1Image(series, affine)
    img.header.set_zooms((3.0, 3.0, 3.0, 2.0))
    img.to_filename(bold)
    result = Realign(in_file=str(bold), loops=2, speedup=2).run(cwd=str(tmp_path))
    motion = np.load(result.outputs.motion_file)
    corrected, _ = resample_series(series, affine, points, motion, out_shape=shape)
    inverted, _ = resample_series(series, affine, points, np.linalg.inv(motion),
                                  out_shape=shape)
    core = (slice(6, -6),) * 3
    raw_sd = series[core].std(axis=-1).mean()
    # Seen: corrected 0.15x and inverted 1.9x the raw temporal SD.
    assert corrected[core].std(axis=-1).mean() < 0.35 * raw_sd
    assert inverted[core].std(axis=-1).mean() > raw_sd
