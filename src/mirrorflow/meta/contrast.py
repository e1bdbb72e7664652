"""ALE subtraction (contrast) of two coordinate sets, both directions from one fit.

Thin layer over :class:`nimare.meta.cbma.ale.ALESubtraction`: one fit of group 1
against group 2 gives ``z_desc-group1MinusGroup2`` (positive where group 1 > group 2,
negative where group 2 > group 1) and a permutation p map ``p_desc-group1MinusGroup2``.
This module saves NiMARE's maps and writes one thresholded map per direction (positive z
values, p below the configured voxel p).

Gated (the default, ``meta.contrast.gate: main_effect``): as in GingerALE's contrast
analysis (Eickhoff et al. 2011) and NiMARE's ``nimare.workflows.ContrastWorkflow``, group
1 > group 2 is tested only inside group 1's thresholded main effect and group 2 > group 1
only inside group 2's, each one-sided: NiMARE's ALESubtraction given the two main-effect
maps as its ``inference_map1`` and ``inference_map2``. Ungated (``gate: none``): every
voxel of the mask, two-sided.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError

__all__ = [
    "fit_subtraction",
    "merge_subtraction_shards",
    "open_gates",
    "run_contrast",
    "run_subtraction_shard",
    "subtraction_null_shard",
    "threshold_directions",
    "write_subtraction_shard",
]

LGR = logging.getLogger(__name__)

Z_KEY = "z_desc-group1MinusGroup2"
P_KEY = "p_desc-group1MinusGroup2"


def _subtraction_class():
    """NiMARE's ALESubtraction whose permutations can be a shard's share, or a merged null.

    NiMARE seeds permutation ``i`` with the ``i``-th child of one SeedSequence, whatever
    the number of permutations, so a shard can compute exactly NiMARE's permutations ``i``
    of its blocks; their tail counts add up, and the merged p map is NiMARE's own. The
    permutations run on :mod:`mirrorflow.meta.subtraction_null` (NiMARE's values, bit for
    bit, faster); ``engine = "nimare"`` runs NiMARE's own loop.
    """
    from nimare.meta.cbma.ale import ALESubtraction

    class ShardedALESubtraction(ALESubtraction):
        iterations = None  # this shard's permutation indices (None: all n_iters)
        n_total = None  # permutations of the whole null
        merged = None  # (upper counts, lower counts, |max| per permutation): no permuting
        counts = None  # this shard's (upper, lower) tail counts, after fit
        engine = "mirrorflow"  # or "nimare": NiMARE's own permutation loop (benchmarks)

        def _permute(self, ma_store, observed):
            """This estimator's permutations on :mod:`mirrorflow.meta.subtraction_null`:
            NiMARE's (upper, lower, |max|), every voxel counted (a gate reads its own)."""
            from mirrorflow.meta.subtraction_null import PermutationData, permutation_tails

            seeds = self._iteration_seeds(self.n_total, stream="alesubtraction_permutations")
            abs_max, upper, lower = permutation_tails(
                PermutationData(ma_store.group1, ma_store.group2),
                [seeds[i] for i in self.iterations], observed,
                self._permute_pairwise_group_indices, label="ALE subtraction ")
            return upper, lower, abs_max

        def _iterate_permutation_diffs(self, ma_store, n_iters, n_cores):
            seeds = self._iteration_seeds(self.n_total, stream="alesubtraction_permutations")
            for local, i_iter in enumerate(self.iterations):
                yield self._run_permutation(local, ma_store, seeds[i_iter])

        def _finalize_alediff_tail_counts(self, left_counts, right_counts, n_iters):
            self.counts = (left_counts.copy(), right_counts.copy())
            return super()._finalize_alediff_tail_counts(left_counts, right_counts, n_iters)

        def _run_null_permutations(self, ma_store, n_iters, n_cores, diff_ale_values=None,
                                   iter_diff_values=None, group1_mask=None, group2_mask=None):
            if self.merged is None and (self.engine == "nimare" or iter_diff_values is not None
                                        or diff_ale_values is None):
                return super()._run_null_permutations(
                    ma_store, n_iters, n_cores, diff_ale_values=diff_ale_values,
                    iter_diff_values=iter_diff_values, group1_mask=group1_mask,
                    group2_mask=group2_mask)
            # The shards' merged null, or this process's permutations on mirrorflow's engine.
            upper, lower, abs_max = (self.merged if self.merged is not None
                                     else self._permute(ma_store, diff_ale_values))
            if group1_mask is None and group2_mask is None:
                return (abs_max, *self._finalize_alediff_tail_counts(upper, lower, n_iters))
            # Gated: NiMARE counts each tail only inside its gate, and reads only those
            # counts; the shards counted every voxel, so the gated counts are among them.
            # (|max| is over the whole mask in both: NiMARE's fit does not restrict it.)
            return (abs_max, *self._finalize_masked_alediff_tail_counts(
                upper, lower, diff_ale_values, group1_mask, group2_mask, n_iters))

    return ShardedALESubtraction


def _check_groups(dset1, dset2, n_iters):
    if int(n_iters) < 1:
        raise ConfigError(f"subtraction n_iters must be >= 1, got {n_iters}")
    shared = sorted(set(dset1.ids) & set(dset2.ids))
    if shared:
        raise ConfigError(
            f"ALE subtraction: the two coordinate sets share {len(shared)} experiment id(s) "
            f"(first: {shared[:3]}); ids must differ between groups"
        )


def subtraction_null_shard(dset1, dset2, *, n_iters: int, seed: int, shard: int = 0,
                           shards: int = 1) -> dict:
    """NiMARE's permutations of the blocks of shard ``shard`` of ``shards`` (see
    :mod:`mirrorflow.shards`): ``{"upper", "lower"}`` tail counts per voxel (uint32) and
    ``{"block<b>": |max ALE difference| of each permutation}``."""
    from mirrorflow.meta.null import BLOCK_SIZE, shard_blocks

    _check_groups(dset1, dset2, n_iters)
    blocks = shard_blocks(shard, shards, n_iters)
    iterations = [i for b in blocks for i in range(b * BLOCK_SIZE,
                                                    min((b + 1) * BLOCK_SIZE, int(n_iters)))]
    LGR.info("ALE subtraction null shard %d/%d: %d permutations", shard + 1, shards,
             len(iterations))
    estimator = _subtraction_class()(n_iters=max(len(iterations), 1), random_state=int(seed))
    estimator.iterations, estimator.n_total = iterations, int(n_iters)
    if not iterations:  # more shards than blocks
        return {"upper": None, "lower": None, "blocks": {}}
    estimator.fit(dset1, dset2)
    abs_max = estimator.null_distributions_["values_level-voxel_corr-fwe_method-montecarlo"]
    upper, lower = estimator.counts
    out = {}
    for k, b in enumerate(blocks):
        out[b] = abs_max[k * BLOCK_SIZE : (k + 1) * BLOCK_SIZE]
    return {"upper": upper, "lower": lower, "blocks": out}


def write_subtraction_shard(path, part: dict, settings: dict) -> None:
    """Save a subtraction null shard (npz under a temporary name, then renamed)."""
    from mirrorflow.shards import save_shard

    counts = {} if part["upper"] is None else {"upper": part["upper"], "lower": part["lower"]}
    save_shard(path, part["blocks"], settings, **counts)


def merge_subtraction_shards(paths, settings: dict):
    """(upper, lower, |max| per permutation) of the whole null from the shard files."""
    from mirrorflow.meta.null import n_blocks
    from mirrorflow.shards import check_blocks, read_shards

    blocks, others = read_shards(paths, settings)
    check_blocks(blocks, n_blocks(settings["n_iters"]), paths)
    counts = [o for o in others if "upper" in o]  # (a shard without blocks has none)
    upper, lower = (np.sum([o[k] for o in counts], axis=0, dtype=np.uint32)
                    for k in ("upper", "lower"))
    return upper, lower, np.concatenate([blocks[b] for b in sorted(blocks)])


def fit_subtraction(dset1, dset2, *, n_iters: int, seed: int, merged=None, gates=None):
    """Fit ALE subtraction of ``dset1`` minus ``dset2``.

    Parameters
    ----------
    dset1, dset2 : :class:`nimare.dataset.Dataset`
        Group 1 and group 2 coordinates with ``sample_sizes``; study ids must differ.
    n_iters : :obj:`int`
        Group-label permutations of the null.
    seed : :obj:`int`
        ``random_state`` of the permutations.
    merged : (upper, lower, abs_max), optional
        The merged null of the shard jobs (:func:`merge_subtraction_shards`); permuted
        here (NiMARE's permutations on mirrorflow's engine) if None.
    gates : (image or None, image or None), optional
        Main-effect maps of group 1 and group 2 (nonzero: inside): group 1 > group 2 is
        tested one-sided inside the first, group 2 > group 1 inside the second; a None
        direction is not tested. None (the default): every voxel, two-sided. At least one
        gate must hold a voxel (:func:`open_gates`).

    Returns
    -------
    :class:`nimare.results.MetaResult`
        With ``z_desc-group1MinusGroup2`` and the other NiMARE keys.

    Raises
    ------
    ConfigError
        If ``n_iters`` < 1 or the two datasets share study ids.
    """
    _check_groups(dset1, dset2, n_iters)
    LGR.info(
        "ALE subtraction: %d vs %d experiments, %d permutations",
        len(dset1.ids),
        len(dset2.ids),
        n_iters,
    )
    estimator = _subtraction_class()(n_iters=int(n_iters), random_state=int(seed))
    estimator.iterations, estimator.n_total = list(range(int(n_iters))), int(n_iters)
    estimator.merged = merged
    first, second = gates if gates is not None else (None, None)
    return estimator.fit(dset1, dset2, inference_map1=first, inference_map2=second)


def open_gates(gate_files):
    """The two main-effect maps of :func:`fit_subtraction`'s ``gates``, read from
    ``gate_files`` (group 1's, group 2's thresholded ALE maps): None for a map without a
    voxel (that direction cannot be tested). Returns ``(gates, n_voxels)``, or
    ``(None, n_voxels)`` when neither holds a voxel."""
    import nibabel as nib

    images = [nib.load(f) for f in gate_files]
    sizes = [int(np.count_nonzero(np.asarray(img.dataobj))) for img in images]
    if not any(sizes):
        return None, sizes
    return tuple(img if n else None for img, n in zip(images, sizes)), sizes


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
        Uncorrected voxel p threshold (of NiMARE's p map: two-sided, or one-sided per
        direction when gated).

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


def _empty_like(img):
    import nibabel as nib

    return nib.Nifti1Image(np.zeros(img.shape, dtype=np.float32), img.affine)


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
    seed: int,
    min_cluster_mm3: float = 0.0,
    null_files=None,
    gate_files=None,
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
    voxel_thresh, n_iters, seed
        See :func:`fit_subtraction` and :func:`threshold_directions`.
    null_files : list of paths, optional
        Shard files of the permutation null (:func:`run_subtraction_shard`); permuted
        here if None.
    gate_files : (path, path), optional
        Thresholded main-effect (ALE) maps of group 1 and group 2: each direction is tested
        only inside its minuend's map (:func:`fit_subtraction`). None: the whole mask.
        Where neither map holds a voxel, no direction is tested (both maps empty; NiMARE's
        saved maps are then the whole mask's).

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
    merged = None
    if null_files is not None:
        merged = merge_subtraction_shards(null_files, _settings(dsets, labels, n_iters, seed))
    gates, gate_sizes = (None, None) if gate_files is None else open_gates(gate_files)
    result = fit_subtraction(*dsets, n_iters=n_iters, seed=seed, merged=merged, gates=gates)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save_maps(output_dir=str(output_dir), prefix="meta-contrast")
    forward, reverse = threshold_directions(result, voxel_thresh=voxel_thresh,
                                            min_cluster_mm3=min_cluster_mm3)
    if gate_files is not None and gates is None:
        LGR.warning("neither main effect has a voxel: no direction of the subtraction is "
                    "tested (%s)", ", ".join(map(str, gate_files)))
        forward, reverse = (_empty_like(img) for img in (forward, reverse))
    jobs = len(null_files) if null_files is not None else 1
    if gate_files is None:
        tested = "tested at every voxel of the mask, two-sided"
    elif gates is None:
        tested = ("not tested: neither category's thresholded main effect (ALE) holds a voxel "
                  "(the saved subtraction maps are NiMARE's over the whole mask)")
    else:
        tested = (
            "each direction tested one-sided, only inside the thresholded main effect (ALE) "
            f"of the category it subtracts from ({labels[0]} {gate_sizes[0]} voxels, "
            f"{labels[1]} {gate_sizes[1]} voxels; GingerALE's contrast analysis, Eickhoff et "
            "al. 2011, as NiMARE's ContrastWorkflow gates it)"
        )
    description = (
        f"ALE subtraction (NiMARE {nimare.__version__} ALESubtraction, {n_iters} group-label "
        f"permutations, seed {seed}, computed in {jobs} Snakemake job(s)) of {labels[0]} "
        f"({len(dsets[0].ids)} experiments) minus "
        f"{labels[1]} ({len(dsets[1].ids)} experiments), {tested}; voxels kept at "
        f"uncorrected p < {voxel_thresh} in clusters of at least {min_cluster_mm3:g} mm3."
    )
    paths = {}
    for key, img, (high, low), path, gate in (
        ("forward", forward, labels, Path(direction_files[0]), 0),
        ("reverse", reverse, labels[::-1], Path(direction_files[1]), 1),
    ):
        save_float_image(img, path)
        n_vox = int(np.count_nonzero(np.asarray(img.dataobj)))
        gating = {"Gate": "none"} if gate_files is None else {
            "Gate": "main_effect",
            "GateMap": str(gate_files[gate]),
            "GateVoxels": gate_sizes[gate],
        }
        write_sidecar(
            path,
            {
                "Description": f"{high} > {low}. " + description,
                "Group1": labels[0],
                "Group2": labels[1],
                "Direction": f"{high} > {low}",
                **gating,
                "VoxelThreshold": voxel_thresh,
                "Sidedness": "two-sided" if gate_files is None else "one-sided",
                "MinClusterMM3": min_cluster_mm3,
                "NIterations": n_iters,
                "NullShards": jobs,
                "Seed": seed,
                "NSignificantVoxels": n_vox,
            },
        )
        LGR.info("%s > %s: %d voxels at p < %s", high, low, n_vox, voxel_thresh)
        paths[key] = path
    return {**paths, "description": description}


def _settings(dsets, labels, n_iters, seed) -> dict:
    return {"labels": list(labels), "n_iters": int(n_iters), "seed": int(seed),
            "n_experiments": [len(d.ids) for d in dsets]}


def run_subtraction_shard(*, dataset_files, labels, output, shard: int, shards: int,
                          n_iters: int, seed: int, voxel_thresh: float | None = None) -> dict:
    """Compute one shard of the ALE subtraction's permutations and save it (npz);
    :func:`run_contrast` merges the shards."""
    from mirrorflow.meta.ale import load_dataset

    if voxel_thresh is not None:
        _check_resolution(voxel_thresh=voxel_thresh, n_iters=n_iters)
    dsets = [load_dataset(f) for f in dataset_files]
    part = subtraction_null_shard(*dsets, n_iters=n_iters, seed=seed, shard=shard,
                                  shards=shards)
    write_subtraction_shard(output, part, _settings(dsets, labels, n_iters, seed))
    return {"blocks": sorted(part["blocks"])}
