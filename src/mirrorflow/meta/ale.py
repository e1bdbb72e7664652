"""Activation likelihood estimation (ALE) of one coordinate set, with Monte Carlo FWE.

Thin layer over NiMARE: :class:`nimare.meta.cbma.ale.ALE` with the Turkeltaub
kernel and each experiment's sample size, then
:class:`nimare.correct.FWECorrector` (Monte Carlo, cluster-forming threshold),
then NiMARE's :meth:`~nimare.results.MetaResult.save_maps`. The only map this
module computes itself is the thresholded z map: z where the FWE-corrected
``-log10(p)`` of the chosen level (cluster size, or voxel) exceeds ``-log10(alpha)``,
zero elsewhere.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError, InputDataError

__all__ = [
    "CLUSTER_LOGP_KEY",
    "LOGP_KEYS",
    "VOXEL_LOGP_KEY",
    "check_iterations",
    "fit_ale",
    "fit_corrected",
    "load_dataset",
    "merged_null",
    "null_shard",
    "run_ale",
    "run_null_shard",
    "threshold_fwe",
    "write_corrected",
]

LGR = logging.getLogger(__name__)

#: NiMARE key of the cluster-size FWE-corrected -log10(p) map.
CLUSTER_LOGP_KEY = "logp_desc-size_level-cluster_corr-FWE_method-montecarlo"
#: NiMARE key of the voxel-level FWE-corrected -log10(p) map.
VOXEL_LOGP_KEY = "logp_level-voxel_corr-FWE_method-montecarlo"
#: FWE level -> the NiMARE map that thresholds it.
LOGP_KEYS = {"cluster": CLUSTER_LOGP_KEY, "voxel": VOXEL_LOGP_KEY}


def load_dataset(path, *, assumed_sample_size: int | None = None):
    """Read a NiMARE JSON coordinate file into a :class:`nimare.dataset.Dataset`.

    Parameters
    ----------
    path : :obj:`str` or :class:`~pathlib.Path`
        NiMARE JSON file (``{study: {"contrasts": {id: {"coords": ..., "metadata": ...}}}}``).
    assumed_sample_size : :obj:`int` or None, optional
        If given, experiments without ``sample_sizes`` metadata get this value;
        if None, every experiment must have one.

    Returns
    -------
    :class:`nimare.dataset.Dataset`

    Raises
    ------
    InputDataError
        If the file is missing or malformed
        (:func:`mirrorflow.meta.inputs.read_nimare_json`), or has experiments without a
        sample size.
    """
    from nimare.dataset import Dataset

    from mirrorflow.meta.inputs import read_nimare_json

    path = Path(path)
    source = read_nimare_json(path, require_sample_sizes=False)
    try:
        dset = Dataset(source, target="mni152_2mm")
    except Exception as err:  # NiMARE raises several types for malformed input
        raise InputDataError(f"coordinate file {path}: NiMARE cannot read it ({err})") from err
    _check_dataset(dset, path=path, assumed_sample_size=assumed_sample_size)
    return dset


def _check_dataset(dset, *, path, assumed_sample_size):
    """Refuse empty datasets and experiments without a sample size."""
    if dset.coordinates.empty:
        raise InputDataError(f"coordinate file {path}: contains no foci")
    if "sample_sizes" not in dset.metadata.columns:
        missing = list(dset.ids)
    else:
        missing = [
            i for i, s in zip(dset.metadata["id"], dset.metadata["sample_sizes"]) if _no_size(s)
        ]
    if missing and assumed_sample_size is None:
        raise InputDataError(
            f"coordinate file {path}: {len(missing)} experiment(s) lack 'sample_sizes' metadata "
            f"(first: {missing[:3]}); ALE needs a sample size for each experiment"
        )
    if missing:
        _set_sample_size(dset, ids=missing, n=assumed_sample_size)


def _no_size(value) -> bool:
    """True if a ``sample_sizes`` entry is missing or empty."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return True
    return len(np.atleast_1d(value)) == 0


def _set_sample_size(dset, *, ids, n):
    """Give the experiments ``ids`` the sample size ``[n]`` in place."""
    meta = dset.metadata.copy()
    if "sample_sizes" not in meta.columns:
        meta["sample_sizes"] = None
    meta["sample_sizes"] = meta["sample_sizes"].astype(object)
    chosen = meta["id"].isin(set(ids))
    meta.loc[chosen, "sample_sizes"] = _series_of_lists(
        int(n), int(chosen.sum()), meta.index[chosen]
    )
    dset.metadata = meta


def _series_of_lists(n, count, index):
    """A pandas Series of ``count`` one-element lists ``[n]`` (helper for object columns)."""
    import pandas as pd

    return pd.Series([[n] for _ in range(count)], index=index, dtype=object)


def fit_ale(dset, *, voxel_thresh: float, n_iters: int, seed: int, null=None,
            early_stop: float | None = None, level: str = "cluster", alpha: float = 0.05):
    """Fit ALE and correct it with Monte Carlo FWE (cluster and voxel level).

    NiMARE fits the ALE (Turkeltaub kernel, analytic null for the cluster-forming
    threshold) and makes every corrected map; the Monte Carlo null comes from
    :mod:`mirrorflow.meta.null`, whose iterations equal NiMARE's bit for bit.

    Parameters
    ----------
    dset : :class:`nimare.dataset.Dataset`
        Coordinates with ``sample_sizes`` metadata.
    voxel_thresh : :obj:`float`
        Cluster-forming (uncorrected voxel) p threshold, e.g. 0.001.
    n_iters : :obj:`int`
        Monte Carlo iterations of the FWE null.
    seed : :obj:`int`
        Seed of the null's blocks (:func:`mirrorflow.meta.null.draw_block`), and NiMARE's
        ``random_state``.
    null : array (n, 3), optional
        The merged null of the shard jobs (:func:`mirrorflow.meta.null.merge_shards`);
        computed here, in one process, if None.
    early_stop : :obj:`float` or None
        Stop once the FWE threshold's Monte Carlo standard error is below this fraction
        of it (after at least 1,000 iterations); None runs all ``n_iters``.
    level : {"cluster", "voxel"}
        The level whose threshold decides the early stop.
    alpha : :obj:`float`
        FWE alpha of that threshold.

    Returns
    -------
    :class:`nimare.results.MetaResult`
        Corrected result, with NiMARE's map keys.
    """
    _check_correction(voxel_thresh=voxel_thresh, n_iters=n_iters)
    LGR.info("ALE on %d experiments, %d foci", len(dset.ids), len(dset.coordinates))
    return fit_corrected(dset, voxel_thresh=voxel_thresh, n_iters=n_iters, seed=seed,
                         null=null, early_stop=early_stop, column=LEVEL_COLUMN[level],
                         alpha=alpha)


#: FWE level -> column of the null (voxel max, cluster size) that sets its threshold.
LEVEL_COLUMN = {"voxel": 0, "cluster": 1}


# The one ALE path of the categories' ALE (run_ale) and the MACM (mirrorflow.meta.macm):
# NiMARE's fit in bounded memory, the Monte Carlo null of mirrorflow's engine (in shard
# jobs or here), NiMARE's corrected maps, and the thresholded map. The MACM adds only its
# seed, its selection and one assumed sample size (``kernel__sample_size``).


def fit_corrected(dset, *, voxel_thresh: float | None, n_iters: int, seed: int, null=None,
                  early_stop: float | None = None, column: int = 0, alpha: float = 0.05,
                  **kwargs):
    """NiMARE's ALE fit of ``dset`` corrected with the Monte Carlo null of
    :mod:`mirrorflow.meta.null`: ``null`` (merged shard files, :func:`merged_null`), or
    ``n_iters`` iterations computed here (stopping early on ``column``'s threshold).
    ``voxel_thresh`` None: voxel level only. ``kwargs`` go to NiMARE's ALE."""
    from mirrorflow.meta import null as engine

    estimator, result = engine.ale_estimator(dset, random_state=int(seed), **kwargs)
    if null is None:
        stop = engine.early_stop(alpha=alpha, tolerance=early_stop, column=column)
        shard = engine.compute_shard(estimator, voxel_thresh=voxel_thresh, n_iters=n_iters,
                                     seed=seed, stop=stop)
        null = np.concatenate([shard.blocks[b] for b in sorted(shard.blocks)])
    LGR.info("Monte Carlo FWE from %d iterations", len(null))
    return engine.correct_fwe(result, null, voxel_thresh=voxel_thresh)


def merged_null(dset, null_files, *, voxel_thresh: float | None, n_iters: int, seed: int,
                alpha: float, early_stop: float | None, column: int, **kwargs):
    """The null of the shard files (None without files), checked against this fit's
    settings; ``kwargs`` go to NiMARE's ALE (only its input stage runs)."""
    from mirrorflow.meta import null as engine

    if null_files is None:
        return None
    estimator, _ = engine.ale_estimator(dset, fit=False, **kwargs)
    settings = engine.null_settings(estimator, voxel_thresh=voxel_thresh, n_iters=n_iters,
                                    seed=seed)
    stop = engine.early_stop(alpha=alpha, tolerance=early_stop, column=column)
    return engine.merge_shards(null_files, settings, stop=stop)


def null_shard(dset, output, *, shard: int, shards: int, voxel_thresh: float | None,
               n_iters: int, seed: int, alpha: float, early_stop: float | None, column: int,
               **kwargs) -> dict:
    """One shard of the Monte Carlo null of ``dset``, saved as npz; NiMARE's ALE is fitted
    only for a cluster-forming threshold (``voxel_thresh``), else only its input stage
    runs. Early stopping applies only when there is one shard."""
    from mirrorflow.meta import null as engine

    estimator, _ = engine.ale_estimator(dset, fit=voxel_thresh is not None, **kwargs)
    stop = engine.early_stop(alpha=alpha, tolerance=early_stop, column=column)
    part = engine.compute_shard(estimator, voxel_thresh=voxel_thresh, n_iters=n_iters,
                                seed=seed, shard=shard, shards=shards, stop=stop)
    part.save(output, engine.null_settings(estimator, voxel_thresh=voxel_thresh,
                                           n_iters=n_iters, seed=seed))
    return {"blocks": sorted(part.blocks), "n_iters": sum(map(len, part.blocks.values()))}


def check_iterations(n_iters: int, alpha: float, what: str) -> None:
    """Refuse a Monte Carlo budget that cannot reach ``alpha`` (smallest p is 1/n_iters)."""
    if int(n_iters) * float(alpha) < 1:
        raise ConfigError(
            f"{what}: {n_iters} Monte Carlo iterations cannot give p_FWE < {alpha} (the "
            f"smallest attainable p is 1/{n_iters}); use n_iters >= {1 / float(alpha):.0f}"
        )


def write_corrected(result, *, output_dir, label: str, alpha: float, level: str):
    """NiMARE's maps as ``meta-<label>_<key>.nii.gz`` and the thresholded z map
    (:func:`threshold_fwe`): ``(path, significant voxels, iterations of the null)``."""
    from mirrorflow.io.bids import save_float_image

    n_done = len(result.estimator.null_distributions_[
        "values_level-voxel_corr-fwe_method-montecarlo"])
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    result.save_maps(output_dir=str(output_dir), prefix=f"meta-{label}")
    thresholded = threshold_fwe(result, alpha=alpha, level=level)
    out = output_dir / f"meta-{label}_z_desc-thresholded.nii.gz"
    save_float_image(thresholded, out)  # the masker's header is uint8: no scaling
    return out, int(np.count_nonzero(np.asarray(thresholded.dataobj))), n_done


def _null_sentence(*, n_iters, n_done, early_stop, shards) -> str:
    """How the Monte Carlo null was computed, for the methods."""
    from mirrorflow.meta.null import BLOCK_SIZE

    stopped = (
        f" (stopped early, of {n_iters} planned, once the threshold's Monte Carlo standard "
        f"error fell below {early_stop} of it)" if n_done < n_iters else ""
    )
    return (
        f"; the null{stopped} was computed by mirrorflow's exact ALE null engine (per "
        f"iteration the maximum ALE, cluster size and mass equal NiMARE's) in {shards} "
        f"Snakemake job(s) of seeded blocks of {BLOCK_SIZE} iterations."
    )


def _check_correction(*, voxel_thresh, n_iters):
    """Refuse thresholds outside (0, 1) and fewer than one iteration."""
    if not 0 < float(voxel_thresh) < 1:
        raise ConfigError(f"cluster-forming p must be in (0, 1), got {voxel_thresh}")
    if int(n_iters) < 1:
        raise ConfigError(f"n_iters must be >= 1, got {n_iters}")


def threshold_fwe(result, *, alpha: float, level: str = "cluster"):
    """z map kept where the FWE-corrected p of ``level`` is below ``alpha``.

    Parameters
    ----------
    result : :class:`nimare.results.MetaResult`
        Output of :func:`fit_ale`.
    alpha : :obj:`float`
        FWE alpha, e.g. 0.05.
    level : {"cluster", "voxel"}
        Cluster-size FWE (``logp_desc-size_level-cluster...``) or voxel-level FWE
        (``logp_level-voxel...``).

    Returns
    -------
    :class:`nibabel.nifti1.Nifti1Image`
        z where the level's ``-log10(p_FWE)`` > ``-log10(alpha)``, else 0.
    """
    if not 0 < float(alpha) < 1:
        raise ConfigError(f"FWE alpha must be in (0, 1), got {alpha}")
    if level not in LOGP_KEYS:
        raise ConfigError(f"FWE level must be one of {sorted(LOGP_KEYS)}, got {level!r}")
    z = result.get_map("z", return_type="array")
    logp = result.get_map(LOGP_KEYS[level], return_type="array")
    kept = np.where(logp > -np.log10(alpha), z, 0.0)
    return result.masker.inverse_transform(kept.astype(np.float32))


def run_ale(
    *,
    dataset_file,
    output_dir,
    label: str,
    voxel_thresh: float,
    alpha: float,
    n_iters: int,
    seed: int,
    level: str = "cluster",
    null_files=None,
    early_stop: float | None = None,
) -> dict:
    """Read a coordinate set, run corrected ALE and write NiMARE maps plus a thresholded z map.

    Writes ``meta-<label>_<key>.nii.gz`` for every NiMARE map, then
    ``meta-<label>_z_desc-thresholded.nii.gz`` and its JSON sidecar (with the methods
    sentence).

    Parameters
    ----------
    dataset_file : :obj:`str` or :class:`~pathlib.Path`
        NiMARE JSON with ``sample_sizes`` for every experiment.
    output_dir : :obj:`str` or :class:`~pathlib.Path`
        Folder for the maps.
    label : :obj:`str`
        Alphanumeric label of the analysis (``meta-<label>``).
    voxel_thresh, alpha, n_iters, seed, early_stop
        See :func:`fit_ale`.
    level : {"cluster", "voxel"}
        FWE level of the thresholded map (:func:`threshold_fwe`).
    null_files : list of paths, optional
        The null's shard files (:func:`run_null_shard`); if None the null is computed here.

    Returns
    -------
    :obj:`dict`
        Paths written (``"maps"``, ``"thresholded"``, ``"sidecar"``) and ``"description"``.
    """
    import nimare

    from mirrorflow.io.bids import check_label, write_sidecar

    label = check_label(label, what="meta-analysis label")
    if level not in LOGP_KEYS:
        raise ConfigError(f"FWE level must be one of {sorted(LOGP_KEYS)}, got {level!r}")
    check_iterations(n_iters, alpha, "ALE")
    dset = load_dataset(dataset_file)
    null = merged_null(dset, null_files, voxel_thresh=voxel_thresh, n_iters=n_iters, seed=seed,
                       alpha=alpha, early_stop=early_stop, column=LEVEL_COLUMN[level])
    result = fit_ale(dset, voxel_thresh=voxel_thresh, n_iters=n_iters, seed=seed, null=null,
                     early_stop=early_stop, level=level, alpha=alpha)
    out, n_sig, n_done = write_corrected(result, output_dir=output_dir, label=label,
                                         alpha=alpha, level=level)
    sizes = [int(np.ravel(s)[0]) for s in dset.metadata["sample_sizes"]]
    description = (
        f"ALE (NiMARE {nimare.__version__}, Turkeltaub kernel with each experiment's sample "
        f"size) on {len(dset.ids)} experiments ({len(dset.coordinates)} foci, sample sizes "
        f"{min(sizes)}-{max(sizes)}); "
        + (f"cluster-level FWE correction (cluster size) by {n_done} Monte Carlo iterations "
           f"(seed {seed}) with cluster-forming p < {voxel_thresh}, clusters kept at "
           f"p_FWE < {alpha}" if level == "cluster" else
           f"voxel-level FWE correction by {n_done} Monte Carlo iterations (seed {seed}), "
           f"voxels kept at p_FWE < {alpha}")
        + _null_sentence(n_iters=n_iters, n_done=n_done, early_stop=early_stop,
                         shards=len(null_files) if null_files is not None else 1)
    )
    sidecar = write_sidecar(
        out,
        {
            "Description": description,
            "Label": label,
            "Source": str(dataset_file),
            "NExperiments": len(dset.ids),
            "NFoci": len(dset.coordinates),
            "Level": level,
            "ClusterFormingP": voxel_thresh,
            "Alpha": alpha,
            "NIterations": n_done,
            "NIterationsPlanned": n_iters,
            "EarlyStop": early_stop,
            "NullShards": len(null_files) if null_files is not None else 1,
            "Seed": seed,
            "NSignificantVoxels": n_sig,
            "NiMAREVersion": nimare.__version__,
        },
    )
    LGR.info("%s: %d voxels survive cluster-level FWE", out, n_sig)
    return {
        "maps": sorted(Path(output_dir).glob(f"meta-{label}_*.nii.gz")),
        "thresholded": out,
        "sidecar": sidecar,
        "description": description,
    }


def run_null_shard(*, dataset_file, output, shard: int, shards: int, voxel_thresh: float,
                   n_iters: int, seed: int, alpha: float = 0.05, level: str = "cluster",
                   early_stop: float | None = None) -> dict:
    """Compute one shard of the ALE Monte Carlo null of a coordinate set and save it (npz).

    Shard ``shard`` of ``shards`` computes every ``shards``-th block of
    :data:`mirrorflow.meta.null.BLOCK_SIZE` iterations; :func:`run_ale` merges the files.
    Early stopping applies here only when there is one shard.

    Returns
    -------
    :obj:`dict`
        ``"blocks"`` computed and ``"n_iters"`` done.
    """
    if level not in LOGP_KEYS:
        raise ConfigError(f"FWE level must be one of {sorted(LOGP_KEYS)}, got {level!r}")
    _check_correction(voxel_thresh=voxel_thresh, n_iters=n_iters)
    return null_shard(load_dataset(dataset_file), output, shard=shard, shards=shards,
                      voxel_thresh=voxel_thresh, n_iters=n_iters, seed=seed, alpha=alpha,
                      early_stop=early_stop, column=LEVEL_COLUMN[level])
