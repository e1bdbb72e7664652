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


def threshold_directions(result, *, voxel_thresh: float):
    """Split the subtraction z map into two positive, thresholded maps.

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
    return result.masker.inverse_transform(forward), result.masker.inverse_transform(reverse)


def run_contrast(
    *,
    dataset_files,
    labels,
    output_dir,
    voxel_thresh: float,
    n_iters: int,
    n_cores: int = 1,
    seed: int,
) -> dict:
    """Read two coordinate sets, run ALE subtraction and write maps.

    Writes NiMARE's maps as ``meta-contrast_<key>.nii.gz`` and
    ``meta-contrast_z_desc-group1GtGroup2Thresholded.nii.gz`` /
    ``..._desc-group2GtGroup1Thresholded.nii.gz`` with JSON sidecars naming the groups.

    Parameters
    ----------
    dataset_files : (path, path)
        NiMARE JSON files of group 1 and group 2.
    labels : (:obj:`str`, :obj:`str`)
        Category labels of group 1 and group 2.
    output_dir : :obj:`str` or :class:`~pathlib.Path`
        Output folder.
    voxel_thresh, n_iters, n_cores, seed
        See :func:`fit_subtraction` and :func:`threshold_directions`.

    Returns
    -------
    :obj:`dict`
        ``"forward"``, ``"reverse"`` (paths) and ``"description"``.
    """
    import nimare

    from mirrorflow.io.bids import check_label, write_sidecar
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
    forward, reverse = threshold_directions(result, voxel_thresh=voxel_thresh)
    description = (
        f"ALE subtraction (NiMARE {nimare.__version__} ALESubtraction, {n_iters} group-label "
        f"permutations, seed {seed}) of {labels[0]} ({len(dsets[0].ids)} experiments) minus "
        f"{labels[1]} ({len(dsets[1].ids)} experiments); voxels kept at two-sided uncorrected "
        f"p < {voxel_thresh}."
    )
    paths = {}
    for key, img, (high, low) in (
        ("forward", forward, labels),
        ("reverse", reverse, labels[::-1]),
    ):
        desc = "group1GtGroup2" if key == "forward" else "group2GtGroup1"
        path = output_dir / f"meta-contrast_z_desc-{desc}Thresholded.nii.gz"
        img.to_filename(str(path))
        n_vox = int(np.count_nonzero(np.asarray(img.dataobj)))
        write_sidecar(
            path,
            {
                "Description": f"{high} > {low}. " + description,
                "Group1": labels[0],
                "Group2": labels[1],
                "Direction": f"{high} > {low}",
                "VoxelThreshold": voxel_thresh,
                "NIterations": n_iters,
                "Seed": seed,
                "NSignificantVoxels": n_vox,
            },
        )
        LGR.info("%s > %s: %d voxels at p < %s", high, low, n_vox, voxel_thresh)
        paths[key] = path
    return {**paths, "description": description}
