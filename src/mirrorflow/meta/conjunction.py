"""Conjunction of thresholded ALE maps (minimum statistic).

Calls :func:`nimare.workflows.misc.conjunction_analysis`, which keeps, in voxels
where every map is positive, the smallest of the values (the minimum statistic
of Nichols et al. 2005). Its clusters are the default MACM seed
(:mod:`mirrorflow.meta.seeds`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import InputDataError

__all__ = ["conjunction_maps", "run_conjunction"]

LGR = logging.getLogger(__name__)


def _check_maps(paths):
    """At least two files, all existing, all on the same grid."""
    import nibabel as nib

    if len(paths) < 2:
        raise InputDataError(
            f"conjunction needs at least two thresholded maps, got {len(paths)}: "
            f"{[str(p) for p in paths]}"
        )
    imgs = []
    for path in paths:
        if not Path(path).is_file():
            raise InputDataError(f"thresholded map {path}: file does not exist")
        imgs.append(nib.load(str(path)))
    first = imgs[0]
    for path, img in zip(paths[1:], imgs[1:]):
        if img.shape != first.shape or not np.allclose(img.affine, first.affine):
            raise InputDataError(
                f"thresholded map {path}: grid {img.shape} does not match {paths[0]} "
                f"{first.shape}; maps must come from the same NiMARE mask"
            )
    return imgs


def conjunction_maps(paths):
    """Minimum-statistic conjunction of thresholded z maps and its binary mask.

    Parameters
    ----------
    paths : :obj:`list` of :obj:`str` or :class:`~pathlib.Path`
        Thresholded z maps (zero outside significant clusters), same grid.

    Returns
    -------
    conjunction : :class:`nibabel.nifti1.Nifti1Image`
        Voxelwise minimum where every map is > 0, else 0.
    mask : :class:`nibabel.nifti1.Nifti1Image`
        uint8 mask, 1 where ``conjunction`` > 0.

    Raises
    ------
    InputDataError
        If fewer than two maps are given, a file is missing, or the grids differ.
    """
    import nibabel as nib
    from nimare.workflows.misc import conjunction_analysis

    imgs = _check_maps([Path(p) for p in paths])
    conjunction = conjunction_analysis(imgs)
    data = np.asarray(conjunction.get_fdata(), dtype=np.float32)
    conjunction = nib.Nifti1Image(data, conjunction.affine)
    mask = nib.Nifti1Image((data > 0).astype(np.uint8), conjunction.affine)
    return conjunction, mask


def run_conjunction(*, maps, labels, conjunction_file) -> dict:
    """Write the conjunction map and its sidecar.

    Parameters
    ----------
    maps : :obj:`list`
        Thresholded z maps, one per category.
    labels : :obj:`list` of :obj:`str`
        Category labels, in the order of ``maps`` (for the sidecar).
    conjunction_file : :obj:`str` or :class:`~pathlib.Path`
        Output path (``.nii.gz``).

    Returns
    -------
    :obj:`dict`
        ``"n_voxels"``, ``"n_clusters"`` and ``"description"``.
    """
    import nimare
    from scipy import ndimage

    from mirrorflow.io.bids import save_float_image, write_sidecar

    if len(labels) != len(maps):
        raise InputDataError(f"conjunction: {len(maps)} maps but {len(labels)} labels {labels}")
    conjunction, _ = conjunction_maps(maps)
    save_float_image(conjunction, conjunction_file)
    mask_data = np.asarray(conjunction.dataobj) > 0
    _, n_clusters = ndimage.label(mask_data, ndimage.generate_binary_structure(3, 1))
    n_voxels = int(mask_data.sum())
    description = (
        f"Conjunction of the FWE-thresholded ALE z maps of {', '.join(labels)} "
        f"by the minimum statistic (NiMARE {nimare.__version__} conjunction_analysis): "
        f"{n_voxels} voxels in {n_clusters} cluster(s)."
    )
    if n_voxels == 0:
        LGR.warning("conjunction of %s is empty: no region is shared", labels)
    write_sidecar(conjunction_file, {
        "Description": description,
        "Sources": [str(m) for m in maps],
        "Categories": list(labels),
        "NVoxels": n_voxels,
        "NClusters": int(n_clusters),
    })
    return {"n_voxels": n_voxels, "n_clusters": int(n_clusters), "description": description}
