"""Thresholding of group maps: parametric inference with nilearn, or permutation inference
with nilearn's ``permuted_ols`` split into seeded blocks that Snakemake jobs share out.

Methods (``group.inference.method`` in config):

* ``permutation`` (default): nonparametric FWE with nilearn's ``permuted_ols`` (sign
  flips for one-sample and paired models, as ``non_parametric_inference`` does; paired
  models are tested as the one-sample test of the differences), by the maximum statistic
  over the brain of one of ``voxel`` (t), ``size`` or ``mass`` (clusters above the
  cluster-forming p, 6-connectivity; ``mass`` by default) or ``tfce``. Validated on null
  studies (tests/group/test_null_fwer.py).
* ``cluster``: parametric cluster-level inference with a cluster-forming p-value and
  family-wise control by All-Resolution Inference (Rosenblatt et al. 2018, nilearn's
  ``cluster_level_inference``): a cluster survives when its lower bound on the
  true-discovery proportion is above 0 at ``alpha``. (In our null simulations nilearn's
  implementation exceeded the nominal rate on a 4 mm grid: 5 in 40; see the README.)
* ``height``: nilearn's ``threshold_stats_img`` (``height_control`` fpr, fdr or
  bonferroni at ``alpha``, then a minimum cluster size in voxels).

Permutations are drawn in blocks of ``block`` permutations; block ``b`` is one
``permuted_ols`` call seeded by :func:`block_seed` (``seed``, ``b``), so its maxima do not
depend on which job computes it. Shard ``k`` of ``shards`` computes the blocks
``b % shards == k``; merging orders the blocks, so the null distribution, p-values and
thresholded maps are identical for any number of shards. p-values follow nilearn's
formulas: ``(1 + #{null >= observed}) / (n + 1)`` for voxel and TFCE statistics and
nilearn's ``null_to_p`` (``#{null >= observed} / n``, clipped to [1/n, 1 - 1/n]) for
cluster size and mass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage, stats

from mirrorflow.jobs import frozen_gc
from mirrorflow.shards import (
    Progress,
    block_seed,
    blocks_of_shard,
    check_blocks,
    n_blocks,
    read_shards,
    save_shard,
)

__all__ = [
    "METHODS",
    "STATISTICS",
    "PermutationData",
    "block_seed",
    "blocks_of_shard",
    "merge_nulls",
    "null_shard",
    "parametric_threshold",
    "permutation_data",
    "permutation_threshold",
    "write_null_shard",
]

METHODS = ("cluster", "height", "permutation")
STATISTICS = ("voxel", "size", "mass", "tfce")
_NULL_KEYS = {"voxel": "h0_max_t", "size": "h0_max_size", "mass": "h0_max_mass",
              "tfce": "h0_max_tfce"}
_SIX_CONNECTED = ndimage.generate_binary_structure(3, 1)


def _z_where(z_img, keep: np.ndarray) -> nib.Nifti1Image:
    """The z map (image or path) where ``keep``, 0 elsewhere, as float32."""
    z_img = nib.load(str(z_img)) if isinstance(z_img, (str, Path)) else z_img
    z = np.asarray(z_img.dataobj, dtype=np.float32)
    return nib.Nifti1Image(np.where(keep, z, 0).astype(np.float32), z_img.affine)


# ----------------------------------------------------------------------------- parametric
def parametric_threshold(z_img, *, mask_img, settings: dict):
    """Thresholded z map and a description of the threshold (for the JSON sidecar) with
    the ``cluster`` or ``height`` method of ``settings`` (``group.inference``)."""
    with frozen_gc():
        return _parametric_threshold(z_img, mask_img=mask_img, settings=settings)


def _parametric_threshold(z_img, *, mask_img, settings: dict):
    from nilearn.glm import cluster_level_inference, threshold_stats_img

    method = settings["method"]
    alpha = settings["alpha"]
    if method == "cluster":
        z_forming = float(stats.norm.isf(settings["cluster_forming_p"]))
        tdp = cluster_level_inference(z_img, mask_img=mask_img, threshold=z_forming,
                                      alpha=alpha)
        thresholded = _z_where(z_img, np.asarray(tdp.dataobj) > 0)
        return thresholded, {
            "Method": "cluster",
            "Description": (
                "Parametric cluster-level inference: clusters of z > "
                f"{z_forming:.3f} (cluster-forming p < {settings['cluster_forming_p']}, "
                "one-sided, 6-connectivity) whose "
                "All-Resolution Inference lower bound on the true-discovery proportion "
                f"is > 0 at alpha {alpha} (family-wise; Rosenblatt et al. 2018, nilearn "
                "cluster_level_inference)."
            ),
            "ClusterFormingP": settings["cluster_forming_p"],
            "ClusterFormingZ": z_forming,
            "Alpha": alpha,
        }
    if method == "height":
        height = settings["height_control"]
        thresholded, z_threshold = threshold_stats_img(
            z_img, mask_img=mask_img, alpha=alpha,
            height_control=None if height == "none" else height,
            cluster_threshold=settings["cluster_threshold"], two_sided=False,
        )
        return thresholded, {
            "Method": "height",
            "Description": (
                f"Voxel-level threshold z > {float(z_threshold):.3f} ({height} at alpha "
                f"{alpha}, one-sided), clusters of at least {settings['cluster_threshold']} "
                "voxels (nilearn threshold_stats_img)."
            ),
            "HeightControl": height,
            "Alpha": alpha,
            "ZThreshold": float(z_threshold),
            "ClusterThresholdVoxels": settings["cluster_threshold"],
        }
    raise ValueError(f"{method!r} is not a parametric method; choose 'cluster' or 'height'")


# ---------------------------------------------------------------------------- permutation
@dataclass
class PermutationData:
    """The inputs of ``permuted_ols`` for one group model, as ``non_parametric_inference``
    builds them: the tested column, the other design columns as confounds, the masked maps."""

    tested: np.ndarray  # (n, 1)
    confounds: np.ndarray | None  # (n, k)
    target: np.ndarray  # (n, voxels)
    masker: object  # fitted NiftiMasker
    model_intercept: bool = True

    @property
    def df(self) -> int:
        """Residual degrees of freedom (nilearn's, for the cluster-forming t)."""
        n_confounds = 0 if self.confounds is None else self.confounds.shape[1]
        return self.tested.shape[0] - (self.tested.shape[1] + n_confounds)

    def t_threshold(self, p: float) -> float:
        return float(stats.t.isf(p, df=self.df))


def permutation_data(effect_maps, design: pd.DataFrame, column: str, *, mask_img,
                     paired: bool = False) -> PermutationData:
    """Masked maps and design columns for ``permuted_ols``. For a paired design
    (``paired``; maps = all first then all second), the differences first - second are
    tested against 0 by sign flips: the paired permutation test."""
    from nilearn.maskers import NiftiMasker

    with frozen_gc():
        masker = NiftiMasker(mask_img=mask_img).fit()
        imgs = [m if isinstance(m, nib.Nifti1Image) else str(m) for m in effect_maps]
        target = masker.transform(imgs).astype(np.float64)
    if paired:
        n = len(effect_maps) // 2
        target = target[:n] - target[n:]
        return PermutationData(np.ones((n, 1)), None, target, masker)
    tested = design[[column]].to_numpy(float)
    others = [c for c in design.columns if c != column]
    confounds = design[others].to_numpy(float) if others else None
    return PermutationData(tested, confounds, target, masker)


def _permuted_ols(data: PermutationData, *, n_perm: int, random_state, statistic: str,
                  cluster_forming_p: float):
    from nilearn.mass_univariate import permuted_ols

    from mirrorflow.group.tfce import nilearn_tfce

    # TFCE: nilearn's statistic, bit for bit, computed by mirrorflow.group.tfce.
    with nilearn_tfce():
        return permuted_ols(
            data.tested, data.target, confounding_vars=data.confounds,
            model_intercept=data.model_intercept, n_perm=n_perm, two_sided_test=False,
            random_state=random_state, n_jobs=1, masker=data.masker,
            threshold=cluster_forming_p if statistic in ("size", "mass") else None,
            tfce=statistic == "tfce", output_type="dict",
        )


def null_shard(data: PermutationData, *, shard: int, shards: int, settings: dict) -> dict:
    """Maximum statistics of the permutations of one shard: ``{"blocks": [...],
    "null": {block: array}}`` for ``settings`` (``group.inference``: ``statistic``,
    ``n_perm``, ``block``, ``seed``, ``cluster_forming_p``)."""
    statistic, n_perm, size = settings["statistic"], settings["n_perm"], settings["block"]
    key = _NULL_KEYS[statistic]
    null = {}
    blocks = blocks_of_shard(shard, shards, n_perm=n_perm, block=size)
    progress = Progress(f"permutations ({statistic}), shard {shard + 1}/{shards}", len(blocks))
    with frozen_gc():  # nilearn unmasks every permuted map (see frozen_gc)
        for b in blocks:
            n_block = min(size, n_perm - b * size)
            out = _permuted_ols(data, n_perm=n_block,
                                random_state=block_seed(settings["seed"], b),
                                statistic=statistic,
                                cluster_forming_p=settings["cluster_forming_p"])
            null[b] = np.asarray(out[key], dtype=np.float64).ravel()
            progress.step()
    return {"blocks": sorted(null), "null": null}


def _null_settings(settings: dict) -> dict:
    keys = ("statistic", "n_perm", "block", "seed", "cluster_forming_p")
    return {k: settings[k] for k in keys}


def write_null_shard(path, result: dict, settings: dict) -> None:
    """Save a shard's null (npz, written under a temporary name and renamed)."""
    save_shard(path, {b: result["null"][b] for b in result["blocks"]}, _null_settings(settings))


def merge_nulls(paths, settings: dict) -> np.ndarray:
    """The null distribution (maxima in block order) from shard files; every block must be
    there once and the shards must have used ``settings``."""
    blocks, _ = read_shards(paths, _null_settings(settings))
    total = n_blocks(settings["n_perm"], settings["block"])
    check_blocks(blocks, total, paths)
    null = np.concatenate([blocks[b] for b in range(total)])
    if null.size != settings["n_perm"]:
        raise ValueError(f"{null.size} permutations merged, expected {settings['n_perm']}")
    return null


def _voxel_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """nilearn's voxel-level FWE p: (n + 1 - #{null < observed}) / (n + 1)."""
    below = np.searchsorted(np.sort(null), observed, side="left")
    return (null.size + 1 - below) / (null.size + 1)


def _cluster_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """nilearn's ``null_to_p(observed, null, "larger")``: #{null >= observed} / n, clipped
    to [1/n, 1 - 1/n]."""
    n = null.size
    p = 1 - np.searchsorted(np.sort(null), observed, side="left") / n
    smallest = max(np.finfo(float).eps, 1.0 / n)
    return np.clip(p, smallest, 1 - smallest)


def permutation_threshold(data: PermutationData, null: np.ndarray, z_img, *, settings: dict):
    """FWE-corrected -log10 p map, the z map kept where p <= alpha, and a description.

    ``null``: merged maxima (:func:`merge_nulls`); the observed statistic comes from the
    same ``permuted_ols`` call without permutations."""
    with frozen_gc():
        return _permutation_threshold(data, null, z_img, settings=settings)


def _permutation_threshold(data: PermutationData, null: np.ndarray, z_img, *, settings: dict):
    statistic, alpha = settings["statistic"], settings["alpha"]
    observed = _permuted_ols(data, n_perm=0, random_state=None, statistic=statistic,
                             cluster_forming_p=settings["cluster_forming_p"])
    t = np.ravel(observed["t"])
    described = {
        "voxel": "the maximum t over the brain (voxel-level FWE)",
        "size": "the maximum cluster size (cluster-level FWE)",
        "mass": "the maximum cluster mass (cluster-level FWE)",
        "tfce": "the maximum TFCE score (E=0.5, H=2, nilearn defaults; voxel-level FWE)",
    }[statistic]
    info = {
        "Method": "permutation",
        "Statistic": statistic,
        "Alpha": alpha,
        "Permutations": int(null.size),
        "PermutationBlock": settings["block"],
        "Seed": settings["seed"],
        "Description": (
            f"Nonparametric family-wise inference with {null.size} permutations (nilearn "
            "permuted_ols: the Freedman & Lane scheme as nilearn implements it, sign flips "
            "for one-sample and paired tests) on "
            f"{described}, one-sided, FWE p <= {alpha}."
        ),
    }
    if statistic in ("voxel", "tfce"):
        values = t if statistic == "voxel" else np.ravel(observed["tfce"])
        p = _voxel_p(values, null)
    else:
        t_thr = data.t_threshold(settings["cluster_forming_p"])
        t3d = data.masker.inverse_transform(t).get_fdata()
        labels, n_clusters = ndimage.label(t3d > t_thr, _SIX_CONNECTED)
        index = np.arange(1, n_clusters + 1)
        if statistic == "size":
            measure = ndimage.sum_labels(np.ones_like(t3d), labels, index)
        else:
            measure = ndimage.sum_labels(t3d - t_thr, labels, index)
        # Label 0 (no cluster) gets the p of a measure of 0, as in nilearn.
        p3d = _cluster_p(np.r_[0.0, np.asarray(measure, dtype=float)], null)[labels]
        p = data.masker.transform(nib.Nifti1Image(p3d, data.masker.mask_img_.affine)).ravel()
        info.update(ClusterFormingP=settings["cluster_forming_p"], ClusterFormingT=t_thr,
                    DegreesOfFreedom=data.df)
    logp = data.masker.inverse_transform(-np.log10(p))
    keep = data.masker.inverse_transform((p <= alpha).astype(np.float32)).get_fdata() > 0
    thresholded = _z_where(z_img, keep)
    return logp, thresholded, info
