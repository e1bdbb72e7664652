"""Conjunction of thresholded ALE maps (minimum statistic) and its seed mask for MACM.

Calls :func:`nimare.workflows.misc.conjunction_analysis`, which keeps, in voxels
where every map is positive, the smallest of the values (the minimum statistic
of Nichols et al. 2005). The binary mask of the surviving voxels is the MACM seed.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import InputDataError

__all__ = ["conjunction_maps", "peak_spheres", "run_conjunction"]

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


def peak_spheres(conjunction, radius: float):
    """Union of spheres of ``radius`` mm around the peak of each conjunction cluster.

    MACM seeds are often spheres at the peaks of the regions of interest rather than the
    whole clusters: large clusters select a large share of a reference database.
    """
    import nibabel as nib
    from scipy import ndimage

    from mirrorflow.io.templates import world_coords

    data = np.asarray(conjunction.dataobj, dtype=float)
    labels, n_clusters = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    xyz = world_coords(data.shape, conjunction.affine)
    mask = np.zeros(data.shape, dtype=np.uint8)
    for cluster in range(1, n_clusters + 1):
        values = np.where(labels == cluster, data, -np.inf)
        peak = xyz[np.unravel_index(np.argmax(values), data.shape)]
        mask[np.linalg.norm(xyz - peak, axis=-1) <= radius] = 1
    return nib.Nifti1Image(mask, conjunction.affine)


def run_conjunction(
    *, maps, labels, conjunction_file, mask_file, seed_radius: float | None = None
) -> dict:
    """Write the conjunction map, the seed mask and their sidecars.

    Parameters
    ----------
    maps : :obj:`list`
        Thresholded z maps, one per category.
    labels : :obj:`list` of :obj:`str`
        Category labels, in the order of ``maps`` (for the sidecar).
    conjunction_file, mask_file : :obj:`str` or :class:`~pathlib.Path`
        Output paths (``.nii.gz``).
    seed_radius : :obj:`float`, optional
        When given, the seed mask is spheres of this radius (mm) at the cluster peaks
        (:func:`peak_spheres`); otherwise the whole conjunction clusters.

    Returns
    -------
    :obj:`dict`
        ``"n_voxels"``, ``"n_clusters"`` and ``"description"``.
    """
    import nimare
    from scipy import ndimage

    from mirrorflow.io.bids import write_sidecar

    if len(labels) != len(maps):
        raise InputDataError(f"conjunction: {len(maps)} maps but {len(labels)} labels {labels}")
    conjunction, mask = conjunction_maps(maps)
    if seed_radius:
        mask = peak_spheres(conjunction, seed_radius)
    for path, img in ((conjunction_file, conjunction), (mask_file, mask)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        img.to_filename(str(path))
    mask_data = np.asarray(conjunction.dataobj) > 0
    conn = ndimage.generate_binary_structure(3, 1)
    _, n_clusters = ndimage.label(mask_data, conn)
    n_voxels = int(mask_data.sum())
    description = (
        f"Conjunction of the cluster-level FWE-thresholded ALE z maps of {', '.join(labels)} "
        f"by the minimum statistic (NiMARE {nimare.__version__} conjunction_analysis): "
        f"{n_voxels} voxels in {n_clusters} cluster(s)."
    )
    if n_voxels == 0:
        LGR.warning("conjunction of %s is empty: MACM will have no seed", labels)
    meta = {
        "Description": description,
        "Sources": [str(m) for m in maps],
        "Categories": list(labels),
        "NVoxels": n_voxels,
        "NClusters": int(n_clusters),
    }
    write_sidecar(conjunction_file, meta)
    seed = (
        f"spheres of {seed_radius:g} mm at the peaks of the conjunction clusters"
        if seed_radius
        else "the conjunction clusters"
    )
    write_sidecar(
        mask_file,
        {**meta, "Description": f"Binary MACM seed mask: {seed}. " + description,
         "SeedRadius": seed_radius},
    )
    return {"n_voxels": n_voxels, "n_clusters": int(n_clusters), "description": description}
