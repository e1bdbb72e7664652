"""ALE subtraction (contrast) of two coordinate sets, both directions from one fit.

Thin layer over :class:`nimare.meta.cbma.ale.ALESubtraction`: one fit of group 1
against group 2 gives ``z_desc-group1MinusGroup2`` (positive where group 1 > group 2,
negative where group 2 > group 1) and a two-sided permutation p map
``p_desc-group1MinusGroup2``. This module saves NiMARE's maps and writes one
thresholded map per direction (positive z values, p below the configured voxel p).

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError

__all__ = ["fit_subtraction", "run_contrast", "threshold_directions"]

LGR = logging.getLogger(__name__)

Z_KEY = "z_desc-group1MinusGroup2"
P_KEY = "p_desc-group1MinusGroup2"


def fit_subtraction(dset1, dset2, *, n_iters: int, n_cores: int, seed: int):
    """Fit ALE subtraction of ``dset1`` minus ``dset2``.

    Parameters
    ----------
    dset1, dset2 : :class:`nimare.dataset.Dataset`
        Group 1 and group 2 coordinates with ``sample_sizes``; study ids must differ.
    n_iters : :obj:`int`
        Group-label permutations of the null.
    n_cores : :obj:`int`
        Cores for the permutations.
    seed : :obj:`int`
        ``random_state`` of the permutations.

    Returns
    -------
    :class:`nimare.results.MetaResult`
        With ``z_desc-group1MinusGroup2`` and the other NiMARE keys.

    Raises
    ------
    ConfigError
        If ``n_iters`` < 1 or the two datasets share study ids.
    """
    from nimare.meta.cbma.ale import ALESubtraction

    if int(n_iters) < 1:
        raise ConfigError(f"subtraction n_iters must be >= 1, got {n_iters}")
    shared = sorted(set(dset1.ids) & set(dset2.ids))
    if shared:
        raise ConfigError(
            f"ALE subtraction: the two coordinate sets share {len(shared)} experiment id(s) "
            f"(first: {shared[:3]}); ids must differ between groups"
        )
    LGR.info(
        "ALE subtraction: %d vs %d experiments, %d permutations",
        len(dset1.ids),
        len(dset2.ids),
        n_iters,
    )
    estimator = ALESubtraction(n_iters=int(n_iters), n_cores=int(n_cores), random_state=int(seed))
    return estimator.fit(dset1, dset2)


def _check_resolution(*, voxel_thresh, n_iters):
    """The smallest permutation p (1 / n_iters) must lie below the threshold."""
    if int(n_iters) * float(voxel_thresh) <= 1:
        raise ConfigError(
            f"ALE subtraction: {n_iters} permutations cannot give p < {voxel_thresh} (the "
            f"smallest attainable p is 1/{n_iters}); use n_iters > {1 / float(voxel_thresh):.0f} "
            "or a larger voxel p"
        )


def threshold_directions(result, *, voxel_thresh: float, min_cluster_mm3: float = 0.0):
    """Split the subtraction z map into two positive, thresholded maps.

    Clusters (face-connected voxels) smaller than ``min_cluster_mm3`` are removed from each
    direction (a minimum cluster volume, as GingerALE users set for subtractions).

    Parameters
    ----------
    result : :class:`nimare.results.MetaResult`
        Output of :func:`fit_subtraction`.
    voxel_thresh : :obj:`float`
        Two-sided uncorrected voxel p threshold.

    Returns
    -------
    group1_gt_group2, group2_gt_group1 : :class:`nibabel.nifti1.Nifti1Image`
        ``z`` where z > 0 and p < ``voxel_thresh``; ``-z`` where z < 0 and p < ``voxel_thresh``.
    """
    if not 0 < float(voxel_thresh) < 1:
        raise ConfigError(f"contrast voxel p must be in (0, 1), got {voxel_thresh}")
    z = result.get_map(Z_KEY, return_type="array")
    p = result.get_map(P_KEY, return_type="array")
    significant = p < voxel_thresh
    forward = np.where(significant & (z > 0), z, 0.0).astype(np.float32)
    reverse = np.where(significant & (z < 0), -z, 0.0).astype(np.float32)
    images = [result.masker.inverse_transform(m) for m in (forward, reverse)]
    return tuple(_drop_small_clusters(img, min_cluster_mm3) for img in images)


def _drop_small_clusters(img, min_mm3: float):
    """``img`` without its clusters of face-connected voxels smaller than ``min_mm3``."""
    import nibabel as nib
    from scipy import ndimage

    if min_mm3 <= 0:
        return img
    data = np.asarray(img.dataobj, dtype=np.float32)
    labels, n = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    voxel_mm3 = round(float(abs(np.linalg.det(img.affine[:3, :3]))), 6)  # 8.0, not 7.99...
    sizes = np.bincount(labels.ravel(), minlength=n + 1) * voxel_mm3
    keep = sizes >= min_mm3
    keep[0] = False
    return nib.Nifti1Image(np.where(keep[labels], data, 0).astype(np.float32), img.affine)


def run_contrast(
    *,
    dataset_files,
    labels,
    output_dir,
    direction_files,
    voxel_thresh: float,
    n_iters: int,
    n_cores: int = 1,
    seed: int,
    min_cluster_mm3: float = 0.0,
) -> dict:
    """Read two coordinate sets, run ALE subtraction and write maps.

    Writes NiMARE's maps as ``meta-contrast_<key>.nii.gz`` in ``output_dir`` and the two
    thresholded directions (group 1 > group 2, then group 2 > group 1) to
    ``direction_files``, with JSON sidecars naming the groups.

    Parameters
    ----------
    dataset_files : (path, path)
        NiMARE JSON files of group 1 and group 2.
    labels : (:obj:`str`, :obj:`str`)
        Category labels of group 1 and group 2.
    output_dir : :obj:`str` or :class:`~pathlib.Path`
        Folder of NiMARE's maps.
    direction_files : (path, path)
        Thresholded maps of group 1 > group 2 and of group 2 > group 1.
    voxel_thresh, n_iters, n_cores, seed
        See :func:`fit_subtraction` and :func:`threshold_directions`.

    Returns
    -------
    :obj:`dict`
        ``"forward"``, ``"reverse"`` (paths) and ``"description"``.
    """
    import nimare

    from mirrorflow.io.bids import check_label, save_float_image, write_sidecar
    from mirrorflow.meta.ale import load_dataset

    if len(dataset_files) != 2 or len(labels) != 2:
        raise ConfigError(
            f"ALE subtraction needs exactly two categories, got {list(labels)} "
            f"with files {[str(f) for f in dataset_files]}"
        )
    labels = [check_label(lab, what="category") for lab in labels]
    _check_resolution(voxel_thresh=voxel_thresh, n_iters=n_iters)
    dsets = [load_dataset(f) for f in dataset_files]
    result = fit_subtraction(*dsets, n_iters=n_iters, n_cores=n_cores, seed=seed)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save_maps(output_dir=str(output_dir), prefix="meta-contrast")
    forward, reverse = threshold_directions(result, voxel_thresh=voxel_thresh,
                                            min_cluster_mm3=min_cluster_mm3)
    description = (
        f"ALE subtraction (NiMARE {nimare.__version__} ALESubtraction, {n_iters} group-label "
        f"permutations, seed {seed}) of {labels[0]} ({len(dsets[0].ids)} experiments) minus "
        f"{labels[1]} ({len(dsets[1].ids)} experiments); voxels kept at two-sided uncorrected "
        f"p < {voxel_thresh} in clusters of at least {min_cluster_mm3:g} mm3."
    )
    paths = {}
    for key, img, (high, low), path in (
        ("forward", forward, labels, Path(direction_files[0])),
        ("reverse", reverse, labels[::-1], Path(direction_files[1])),
    ):
        save_float_image(img, path)
        n_vox = int(np.count_nonzero(np.asarray(img.dataobj)))
        write_sidecar(
            path,
            {
                "Description": f"{high} > {low}. " + description,
                "Group1": labels[0],
                "Group2": labels[1],
                "Direction": f"{high} > {low}",
                "VoxelThreshold": voxel_thresh,
                "MinClusterMM3": min_cluster_mm3,
                "NIterations": n_iters,
                "Seed": seed,
                "NSignificantVoxels": n_vox,
            },
        )
        LGR.info("%s > %s: %d voxels at p < %s", high, low, n_vox, voxel_thresh)
        paths[key] = path
    return {**paths, "description": description}
