"""Where two thresholded maps both hold: the minimum-statistic conjunction."""

from __future__ import annotations

import nibabel as nib
import numpy as np

__all__ = ["conjunction"]


def conjunction(imgs) -> nib.Nifti1Image:
    """Voxelwise minimum of thresholded maps where every map is positive, else 0
    (Nichols et al. 2005)."""
    from nilearn.image import load_img

    imgs = [load_img(img) for img in imgs]
    if len(imgs) < 2:
        raise ValueError("a conjunction needs at least two maps")
    data = np.stack([np.asarray(img.dataobj, dtype=float) for img in imgs])
    both = np.all(data > 0, axis=0)
    return nib.Nifti1Image(np.where(both, data.min(axis=0), 0.0).astype(np.float32), imgs[0].affine)
