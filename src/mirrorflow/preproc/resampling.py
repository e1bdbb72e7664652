"""One-shot resampling of a BOLD series and slice-timing correction (numpy/scipy).

The series is resampled once, from the raw (slice-time corrected) volumes to the output
grid, through the composition of every spatial transform: template -> T1w (ANTs, possibly
nonlinear), T1w -> BOLD reference (ANTs, rigid) and, per volume, reference -> volume (the
head-motion estimate). ANTs maps the output grid's points through the fixed chain once;
the per-volume rigid motion is a 4x4 product, and each volume is then interpolated once.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

__all__ = [
    "grid_points",
    "map_points",
    "resample_series",
    "slice_timing_correct",
]

#: RAS (NIfTI) <-> LPS (ITK/ANTs) world coordinates: flip x and y.
_RAS_LPS = np.array([-1.0, -1.0, 1.0])


def grid_points(shape, affine) -> np.ndarray:
    """World (RAS, mm) coordinates of every voxel of a grid, ``(n_voxels, 3)``, C order."""
    ijk = np.indices(tuple(shape[:3]), dtype=np.float64).reshape(3, -1).T
    return nib.affines.apply_affine(affine, ijk)


def map_points(points, transforms) -> np.ndarray:
    """Map RAS points through a chain of ANTs transforms, as ANTs maps an output grid.

    ``transforms`` is in ``ants.apply_transforms`` order (the list used to warp the moving
    image onto the fixed one); the points go from the fixed to the moving space, which is
    exactly the mapping ANTs uses when it resamples (checked against
    ``ants.apply_transforms`` in the tests).
    """
    import ants
    import pandas as pd

    if not transforms:
        return np.asarray(points, dtype=np.float64)
    frame = pd.DataFrame(np.asarray(points) * _RAS_LPS, columns=["x", "y", "z"])
    mapped = ants.apply_transforms_to_points(3, frame, list(transforms))
    return mapped[["x", "y", "z"]].to_numpy(np.float64) * _RAS_LPS


def resample_series(
    data, affine, points, motion, *, out_shape, order: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Interpolate each volume of ``data`` once at ``points`` moved by that volume's motion.

    Parameters
    ----------
    data : ndarray, shape (X, Y, Z, T)
        Raw (or slice-time corrected) series on the grid ``affine``, in memory (slicing
        a compressed NIfTI proxy volume by volume would decompress it each time).
    affine : ndarray, shape (4, 4)
        Voxel-to-world affine of ``data``.
    points : ndarray, shape (n, 3)
        World (RAS) coordinates, in the motion reference frame, of the output voxels.
    motion : ndarray, shape (T, 4, 4)
        Per volume, the rigid map from reference world to that volume's world (nipy's
        realignment convention).
    out_shape : tuple of ints
        Output shape (a grid's, or ``(n,)`` for scattered points), ``prod(out_shape) == n``.
    order : int
        Spline order of :func:`scipy.ndimage.map_coordinates` (1: trilinear).

    Returns
    -------
    series : ndarray, shape (*out_shape, T), float32
    fov : ndarray, shape out_shape, bool
        Output voxels that fall inside the acquired field of view in every volume.
    """
    n_volumes = data.shape[3]
    if motion.shape != (n_volumes, 4, 4):
        raise ValueError(f"motion has shape {motion.shape}; expected ({n_volumes}, 4, 4)")
    homogeneous = np.c_[points, np.ones(len(points))].T
    inverse = np.linalg.inv(affine)
    upper = np.array(data.shape[:3], dtype=float) - 1
    out = np.empty((len(points), n_volumes), dtype=np.float32)
    fov = np.ones(len(points), dtype=bool)
    for t in range(n_volumes):
        voxels = (inverse @ motion[t] @ homogeneous)[:3]
        fov &= np.all((voxels >= -0.5) & (voxels <= upper[:, None] + 0.5), axis=0)
        out[:, t] = ndimage.map_coordinates(
            np.asarray(data[..., t], dtype=np.float32), voxels, order=order,
            mode="constant", cval=0.0, prefilter=order > 1,
        )
    return out.reshape(*out_shape, n_volumes), fov.reshape(out_shape)


def slice_timing_correct(
    data, *, slice_times, tr: float, slice_axis: int = 2, ref_time: float | None = None
) -> np.ndarray:
    """Shift each slice's time series to a common reference time (cubic spline in time).

    Slice ``k`` of volume ``n`` was acquired at ``n * tr + slice_times[k]``; the corrected
    value is the series interpolated at ``n * tr + ref_time``. ``ref_time`` defaults to
    the middle of the acquisition window, as fMRIPrep does. Times before the first or after the
    last volume take that volume's value.
    """
    data = np.asarray(data, dtype=np.float32)
    slice_times = np.asarray(slice_times, dtype=float)
    if slice_times.size != data.shape[slice_axis]:
        raise ValueError(
            f"{slice_times.size} slice times for {data.shape[slice_axis]} slices along axis "
            f"{slice_axis}"
        )
    if ref_time is None:
        ref_time = (slice_times.min() + slice_times.max()) / 2
    from scipy.interpolate import CubicSpline

    volumes = np.arange(data.shape[3], dtype=float)
    out = np.empty_like(data)
    for k, acquired in enumerate(slice_times):
        index = [slice(None)] * 4
        index[slice_axis] = k
        index = tuple(index)
        spline = CubicSpline(volumes, data[index], axis=-1)
        wanted = np.clip(volumes + (ref_time - acquired) / tr, 0, volumes[-1])
        out[index] = spline(wanted)
    return out
