"""Null group studies: first-level effect maps with no effect anywhere.

Each participant's map is Gaussian white noise smoothed to ``fwhm`` mm (a stationary
Gaussian random field, the smoothness of first-level maps after the pipeline's smoothing)
inside a brain mask, so every group model's null hypothesis holds at every voxel. Used to
measure the family-wise false-positive rate of the group inference methods.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

__all__ = ["null_effect_maps"]


def null_effect_maps(mask_img, *, n_subjects: int, fwhm: float, seed: int
                     ) -> list[nib.Nifti1Image]:
    """``n_subjects`` null effect maps on the grid of ``mask_img`` (0 outside the mask),
    unit variance inside, smoothed to ``fwhm`` mm; seeded."""
    mask = np.asarray(mask_img.dataobj) > 0
    voxel = np.sqrt((mask_img.affine[:3, :3] ** 2).sum(axis=0))
    sigma = fwhm / np.sqrt(8 * np.log(2)) / voxel
    rng = np.random.default_rng(seed)
    maps = []
    for _ in range(n_subjects):
        field = ndimage.gaussian_filter(rng.standard_normal(mask.shape), sigma)
        field /= field[mask].std()
        maps.append(nib.Nifti1Image(np.where(mask, field, 0).astype(np.float32),
                                    mask_img.affine))
    return maps
