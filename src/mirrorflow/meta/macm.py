"""Meta-analytic connectivity modelling (MACM) of a seed mask against a reference database.

Steps, all NiMARE: resample the seed to the reference Dataset's 2 mm mask space,
select the experiments with at least one focus in the seed
(:meth:`nimare.dataset.Dataset.get_studies_by_mask`), slice the Dataset, run ALE
with one assumed sample size for every selected experiment (Neurosynth reports none),
and correct with voxel-level Monte Carlo FWE.

The ALE, its null and its maps take the categories' path
(:func:`mirrorflow.meta.ale.fit_corrected`, :func:`~mirrorflow.meta.ale.write_corrected`).

Cost: NiMARE's ALE fit of the selected experiments, a chunk at a time
(:mod:`mirrorflow.meta.streaming`: ~1.35 GB for the 4,300 experiments of the default
seed); the Monte Carlo null runs on :mod:`mirrorflow.meta.null` (~0.8 s per iteration and
core at that scale) and can be split into shard jobs (``macm.shards``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.ale import VOXEL_LOGP_KEY  # the map the MACM is thresholded on

__all__ = [
    "VOXEL_LOGP_KEY",
    "fit_macm",
    "macm_dataset",
    "resample_seed",
    "run_macm",
    "run_macm_null_shard",
    "select_experiments",
]

LGR = logging.getLogger(__name__)


def resample_seed(seed_file, dset):
    """Load a seed mask and resample it (nearest neighbour) to the Dataset's mask grid.

    Parameters
    ----------
    seed_file : :obj:`str` or :class:`~pathlib.Path`
        Binary (or non-zero = in) NIfTI mask in MNI space.
    dset : :class:`nimare.dataset.Dataset`
        Reference Dataset.

    Returns
    -------
    :class:`nibabel.nifti1.Nifti1Image`
        uint8 mask on the grid of ``dset.masker.mask_img``.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or not 3D, or has no non-zero voxel (before or
        after resampling): :func:`mirrorflow.meta.seeds.resample_mask`.
    """
    from mirrorflow.meta.seeds import resample_mask

    return resample_mask(seed_file, dset.masker.mask_img)


def select_experiments(dset, seed_img) -> list[str]:
    """Ids of the experiments with at least one focus inside ``seed_img``.

    Thin wrapper over :meth:`nimare.dataset.Dataset.get_studies_by_mask`, sorted.
    """
    return sorted(dset.get_studies_by_mask(seed_img))


def fit_macm(dset, *, assumed_sample_size: int, n_iters: int, seed: int, null=None,
             early_stop: float | None = None, alpha: float = 0.05):
    """ALE of the selected experiments with voxel-level Monte Carlo FWE.

    NiMARE fits the ALE (analytic null) and makes the corrected maps; the Monte Carlo null
    of the maximum ALE comes from :mod:`mirrorflow.meta.null` (equal to NiMARE's
    ``FWECorrector(method="montecarlo", vfwe_only=True)`` iterations, bit for bit).

    Parameters
    ----------
    dset : :class:`nimare.dataset.Dataset`
        The selected experiments (already sliced).
    assumed_sample_size : :obj:`int`
        Sample size given to every experiment's Turkeltaub kernel.
    n_iters : :obj:`int`
        Monte Carlo iterations of the voxel-level FWE null.
    seed : :obj:`int`
        Seed of the null's blocks, and NiMARE's ``random_state``.
    null : array (n, 3), optional
        Merged null of the shard jobs; computed here if None.
    early_stop : :obj:`float` or None
        Relative Monte Carlo standard error of the FWE threshold at which to stop.
    alpha : :obj:`float`
        FWE alpha (of the early-stop threshold).

    Returns
    -------
    :class:`nimare.results.MetaResult`
    """
    from mirrorflow.meta.ale import fit_corrected

    _check_macm(assumed_sample_size=assumed_sample_size, n_iters=n_iters)
    LGR.info("MACM ALE on %d experiments (%d foci)", len(dset.ids), len(dset.coordinates))
    return fit_corrected(dset, voxel_thresh=None, n_iters=n_iters, seed=seed, null=null,
                         early_stop=early_stop, column=0, alpha=alpha,
                         kernel__sample_size=int(assumed_sample_size))


def _null_sentence(**kwargs) -> str:
    from mirrorflow.meta.ale import _null_sentence as sentence

    return sentence(**kwargs)


def _check_macm(*, assumed_sample_size, n_iters):
    if int(assumed_sample_size) < 1:
        raise ConfigError(f"MACM assumed_sample_size must be >= 1, got {assumed_sample_size}")
    if int(n_iters) < 1:
        raise ConfigError(f"MACM n_iters must be >= 1, got {n_iters}")


def macm_dataset(*, seed_file, reference_file, assumed_sample_size: int):
    """The reference experiments with a focus in the seed: ``(selected, reference, ids)``.

    ``assumed_sample_size`` is checked here and given to the kernel by the callers
    (``kernel__sample_size``), not written into the metadata.

    Raises
    ------
    InputDataError
        If the seed mask is missing or empty, or selects no experiment.
    """
    from mirrorflow.meta.reference import load_reference

    if int(assumed_sample_size) < 1:
        raise ConfigError(f"MACM assumed_sample_size must be >= 1, got {assumed_sample_size}")
    if not Path(seed_file).is_file():
        raise InputDataError(f"MACM seed mask {seed_file}: file does not exist")
    dset = load_reference(reference_file)
    seed_img = resample_seed(seed_file, dset)
    ids = select_experiments(dset, seed_img)
    if not ids:
        raise InputDataError(
            f"MACM seed mask {seed_file}: no experiment of {reference_file} has a focus in it"
        )
    LGR.info("Seed %s selects %d of %d experiments", seed_file, len(ids), len(dset.ids))
    return dset.slice(ids), dset, ids


def run_macm_null_shard(*, seed_file, reference_file, output, shard: int, shards: int,
                        assumed_sample_size: int, n_iters: int, seed: int,
                        alpha: float = 0.05, early_stop: float | None = None) -> dict:
    """One shard of the MACM's voxel-level Monte Carlo null, saved as npz (see
    :func:`mirrorflow.meta.ale.run_null_shard`). Only NiMARE's input stage runs here, not
    the ALE fit."""
    from mirrorflow.meta.ale import null_shard

    _check_macm(assumed_sample_size=assumed_sample_size, n_iters=n_iters)
    sub, _, _ = macm_dataset(seed_file=seed_file, reference_file=reference_file,
                             assumed_sample_size=assumed_sample_size)
    return null_shard(sub, output, shard=shard, shards=shards, voxel_thresh=None,
                      n_iters=n_iters, seed=seed, alpha=alpha, early_stop=early_stop,
                      column=0, kernel__sample_size=int(assumed_sample_size))


def _experiment_table(dset):
    """Selected experiments: id, number of foci, and title/year/journal when present."""
    import pandas as pd

    counts = dset.coordinates.groupby("id").size().rename("n_foci")
    table = pd.DataFrame({"id": sorted(dset.ids)}).merge(
        counts, left_on="id", right_index=True, how="left"
    )
    extra = [c for c in ("study_id", "year", "title", "journal", "doi") if c in dset.metadata]
    if extra:
        table = table.merge(dset.metadata[["id", *extra]], on="id", how="left")
    table["n_foci"] = table["n_foci"].fillna(0).astype(int)
    return table


def macm_memory_mb(n_experiments: int, masker) -> float:
    """Peak memory (MB) of the MACM job, to check against what a scheduler granted.

    The ALE fit holds one chunk of experiments' modelled-activation maps at a time
    (:mod:`mirrorflow.meta.streaming`), so memory hardly grows with the selection. Measured
    peaks (resident set, ``/usr/bin/time -v`` and getrusage, this 2-core machine): 1.35 GB
    for the MACM job of the default seed (4,300 of the 14,371 Neurosynth experiments, fit,
    null merge and FocusCounter; NiMARE's own fit of them peaked at 14.2 GB), and 1.17 GB
    for an ALE of all 14,371. The estimate: 1 GB for Python, NiMARE and the reference
    database, a chunk of maps at half the mask's voxels (float64), and 50 kB an experiment:
    1.45 GB and 1.95 GB for those two.
    """
    from mirrorflow.meta.streaming import CHUNK_EXPERIMENTS

    n_voxels = int(np.count_nonzero(np.asarray(masker.mask_img.dataobj)))
    return 1000 + CHUNK_EXPERIMENTS * n_voxels * 8 / 2 / 1e6 + 0.05 * n_experiments


def run_macm(
    *,
    seed_file,
    reference_file,
    output_dir,
    experiments_file,
    contributions_file=None,
    contributions: str = "focuscounter",
    assumed_sample_size: int,
    alpha: float,
    n_iters: int,
    n_cores: int = 1,
    seed: int,
    label: str = "macm",
    null_files=None,
    early_stop: float | None = None,
) -> dict:
    """Select experiments by seed, run ALE with voxel-level FWE and write maps and a table.

    Writes NiMARE's maps as ``meta-<label>_<key>.nii.gz``, the thresholded map
    ``meta-<label>_z_desc-thresholded.nii.gz`` (z where the voxel-level FWE p < ``alpha``)
    with a JSON sidecar, and ``experiments_file`` (TSV of the selected experiments).

    Parameters
    ----------
    seed_file : path
        Seed mask (the conjunction clusters).
    reference_file : path
        Pickled reference Dataset (:func:`mirrorflow.meta.reference.build_reference`).
    output_dir : path
        Folder for the maps.
    experiments_file : path
        TSV of the selected experiments.
    contributions_file : path, optional
        Per-cluster contribution table of the thresholded map
        (:func:`mirrorflow.meta.tables.contributions_table`, from this fit).
    contributions : {"focuscounter", "jackknife"}
        Its NiMARE diagnostic.
    assumed_sample_size, n_iters, seed, early_stop
        See :func:`fit_macm`.
    n_cores : :obj:`int`
        Cores of the contribution diagnostic.
    null_files : list of paths, optional
        Shard files of the null (:func:`run_macm_null_shard`); computed here if None.
    alpha : :obj:`float`
        Voxel-level FWE alpha.
    label : :obj:`str`, default="macm"
        Map prefix label.

    Returns
    -------
    :obj:`dict`
        ``"n_experiments"``, ``"thresholded"`` and ``"description"``.

    Raises
    ------
    InputDataError
        If the seed mask is missing or empty, or selects no experiment.
    """
    import nimare

    import nibabel as nib

    from mirrorflow.io.bids import check_label, write_sidecar
    from mirrorflow.meta.ale import check_iterations, merged_null, write_corrected
    from mirrorflow.meta.tables import contributions_table, save_contributions
    from mirrorflow.resources import require_memory

    label = check_label(label, what="MACM label")
    if not 0 < float(alpha) < 1:
        raise ConfigError(f"MACM FWE alpha must be in (0, 1), got {alpha}")
    check_iterations(n_iters, alpha, "MACM")
    sub, dset, ids = macm_dataset(seed_file=seed_file, reference_file=reference_file,
                                  assumed_sample_size=assumed_sample_size)
    require_memory(macm_memory_mb(len(ids), dset.masker), f"MACM ALE of {len(ids)} experiments")
    null = merged_null(sub, null_files, voxel_thresh=None, n_iters=n_iters, seed=seed,
                       alpha=alpha, early_stop=early_stop, column=0,
                       kernel__sample_size=int(assumed_sample_size))
    result = fit_macm(sub, assumed_sample_size=assumed_sample_size, n_iters=n_iters, seed=seed,
                      null=null, early_stop=early_stop, alpha=alpha)
    out, n_sig, n_done = write_corrected(result, output_dir=output_dir, label=label,
                                         alpha=alpha, level="voxel")
    experiments_file = Path(experiments_file)
    experiments_file.parent.mkdir(parents=True, exist_ok=True)
    _experiment_table(sub).to_csv(experiments_file, sep="\t", index=False, na_rep="n/a")
    if contributions_file is not None:
        img = nib.load(str(out))
        table = contributions_table(result, img, method=contributions, n_cores=n_cores)
        save_contributions(table, output_file=contributions_file, method=contributions,
                           map_file=out, source=reference_file,
                           extra={"AssumedSampleSize": int(assumed_sample_size)})
    description = (
        f"MACM: {len(ids)} of {len(dset.ids)} reference experiments had at least one focus in "
        f"the seed mask; ALE (NiMARE {nimare.__version__}) with an assumed sample size of "
        f"{assumed_sample_size} for every experiment (the reference gives none), voxel-level "
        f"FWE correction by {n_done} Monte Carlo iterations (seed {seed}) at p_FWE < {alpha}: "
        f"{n_sig} voxels"
        + _null_sentence(n_iters=n_iters, n_done=n_done, early_stop=early_stop,
                         shards=len(null_files) if null_files is not None else 1)
    )
    write_sidecar(
        out,
        {
            "Description": description,
            "SeedMask": str(seed_file),
            "Reference": str(reference_file),
            "NExperiments": len(ids),
            "NFoci": len(sub.coordinates),
            "AssumedSampleSize": assumed_sample_size,
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
    LGR.info(description)
    return {"n_experiments": len(ids), "thresholded": out, "description": description}
