"""NiMARE's ALE fit in bounded memory: the experiments' modelled-activation (MA) maps are
made and consumed a chunk at a time, never all at once.

NiMARE 0.22.1's ``ALE.fit`` (analytic null, ``null_method="approximate"``) holds every
experiment's MA map as one study-by-voxel sparse matrix: 14.2 GB resident for the 4,300
Neurosynth experiments of the default MACM seed on the 2 mm mask. Every quantity the fit
derives from that matrix is a pass over its rows in order, so :func:`fit_ale` makes the
rows a chunk of experiments at a time with NiMARE's own kernel transformer and keeps only:

- the ALE's running sum of ``log1p(-MA)`` per voxel, added value by value in the order of
  NiMARE's ``bincount`` over the whole matrix (row by row, in float64), so ``1 - exp`` of
  it is NiMARE's ALE map bit for bit;
- each experiment's maximum MA value and the histogram of its MA values on NiMARE's fixed
  grid of 1e-5 (integer counts), from which NiMARE's own histogram functions then build the
  analytic null exactly as its ``_compute_null_approximate`` does, experiment by
  experiment in the same order.

The p, z and log-p maps then come from NiMARE's ``_summarystat_to_p``, and the result is
NiMARE's ``MetaResult`` of the estimator, as ``ALE.fit`` returns it: equal, map for map
and bit for bit (tests/meta/test_streaming.py). Every private NiMARE name this needs is
reached here.
"""

from __future__ import annotations

import logging

import numba
import numpy as np
from nimare.meta.cbma.ale import ALE

__all__ = ["CHUNK_EXPERIMENTS", "StatOnlyALE", "collect_inputs", "fit_ale"]

LGR = logging.getLogger(__name__)

#: Experiments whose MA maps are held at once: ~256 x 60,000 non-zero voxels x 20 bytes
#: (value, column index, log) ~ 300 MB at most on the 2 mm mask.
CHUNK_EXPERIMENTS = 256

#: NiMARE's histogram grid of ALE values (``ALE._determine_histogram_bins``): its step, and
#: the inverse step that NiMARE's ``_compute_null_approximate`` derives from the grid.
_INV_STEP = 100000
_INV_STEP_SIZE = 1 / np.round(np.arange(0, 2.5 / _INV_STEP, 1 / _INV_STEP), 5)[1]


@numba.njit(cache=True)
def _add_in_order(out, index, values):
    """``out[index[i]] += values[i]`` for i in order: ``np.bincount``'s sums, continued."""
    for i in range(index.shape[0]):
        out[index[i]] += values[i]


def _experiment_summaries(csr, inv_step_size: float):
    """What the analytic null needs of each row of ``csr``, in one pass: its largest MA
    value (0 for an empty row, as NiMARE's ``_csr_row_max``), and the occupied bins of its
    non-zero values on NiMARE's grid with their integer counts (NiMARE's ``_nearest_bin``
    rule, no upper clip yet): ``(maxima, [(bins, counts, n_nonzero), ...])``."""
    maxima, histograms = [], []
    for row in range(csr.shape[0]):
        values = csr.data[csr.indptr[row]:csr.indptr[row + 1]]
        maxima.append(values.max() if len(values) else 0.0)
        scaled = values * inv_step_size
        floor = np.floor(scaled)
        idx = floor.astype(np.int64) + (scaled - floor >= 0.5)
        counts = np.bincount(np.maximum(idx, 0))
        bins = np.flatnonzero(counts)  # a few thousand bins at most: kept as int32
        histograms.append((bins.astype(np.int32), counts[bins].astype(np.int32), len(values)))
    return maxima, histograms


def _analytic_null(histograms, max_values, n_voxels: int, estimator):
    """NiMARE's histogram bins and analytic null weights from the experiments' histograms,
    in NiMARE's arithmetic (``ALE._determine_histogram_bins`` and
    ``ALE._compute_null_approximate``)."""
    from nimare.meta.cbma.null_utils import _update_ale_histogram

    step_size = 1 / _INV_STEP
    rounded = np.ceil(max_values * _INV_STEP) / _INV_STEP
    max_poss_ale = estimator._compute_summarystat(rounded)
    hist_bins = np.round(np.arange(0, max_poss_ale + (1.5 * step_size), step_size), 5)
    bin_centers = hist_bins.astype(np.float64, copy=False)
    inv_step_size = 1 / (bin_centers[1] - bin_centers[0])
    assert inv_step_size == _INV_STEP_SIZE  # the grid the experiments were binned on
    n_bins = bin_centers.shape[0]
    recip = 1.0 / n_voxels
    ale_hist = None
    tmp_hist = np.zeros(n_bins, dtype=np.float64)
    for bins, counts, n_nonzero in histograms:
        # Integer counts: exact in float64, in any order (and float64 when empty too).
        exp_hist = np.bincount(np.minimum(bins, n_bins - 1), weights=counts,
                               minlength=n_bins).astype(np.float64, copy=False)
        exp_hist[0] += n_voxels - n_nonzero
        exp_hist *= recip
        if ale_hist is None:
            ale_hist = exp_hist.copy()
            continue
        ale_idx = np.where(ale_hist > 0)[0]
        exp_idx = np.where(exp_hist > 0)[0]
        _update_ale_histogram(ale_idx, ale_hist[ale_idx], exp_idx, exp_hist[exp_idx],
                              bin_centers, inv_step_size, n_bins, tmp_hist)
        ale_hist, tmp_hist = tmp_hist, ale_hist
    return hist_bins, ale_hist


def collect_inputs(estimator, dset):
    """NiMARE's input stage of ``estimator.fit`` (coordinates to voxel indices, sample
    sizes, the mask), without the fit: the normalised collection."""
    from nimare.studyset import normalize_collection

    collection = normalize_collection(dset)
    estimator._clear_precomputed_ma_inputs()
    estimator._collect_inputs(collection, drop_invalid=True)
    estimator._preprocess_input(collection)
    estimator.masker = estimator.masker or collection.masker
    return collection


def fit_ale(estimator, dset, *, chunk: int = CHUNK_EXPERIMENTS, stat_only: bool = False):
    """``estimator.fit(dset)`` for NiMARE's ALE with the analytic null, in bounded memory.

    Parameters
    ----------
    estimator : :class:`nimare.meta.cbma.ale.ALE`
        Unfitted, ``null_method="approximate"``.
    dset : :class:`nimare.dataset.Dataset` or Studyset
        The experiments.
    chunk : :obj:`int`
        Experiments whose MA maps are held at once (:data:`CHUNK_EXPERIMENTS`).
    stat_only : :obj:`bool`
        Make only the ALE map (``"stat"``), not the analytic null and the p, z and log-p
        maps (:class:`StatOnlyALE`).

    Returns
    -------
    :class:`nimare.results.MetaResult`
        Equal to ``estimator.fit(dset)`` (its ``"stat"`` map only, with ``stat_only``);
        ``estimator`` is fitted as ``fit`` leaves it.
    """
    from nimare.results import MetaResult
    from nimare.utils import DEFAULT_FLOAT_DTYPE, _nlogp_to_logp_values

    if not estimator.null_method.startswith("approximate"):
        raise ValueError(f"streamed ALE needs the analytic null, not {estimator.null_method!r}")
    collection = collect_inputs(estimator, dset)
    estimator.dataset = collection
    estimator.null_distributions_ = {}
    estimator.weight_vec_ = None  # ALE weighs no experiment (its _compute_weights)

    coords = estimator.inputs_["coordinates"]
    ids = np.unique(coords["id"].to_numpy())  # NiMARE's row order: sorted experiment ids
    n_voxels = int(np.count_nonzero(estimator.masker.mask_img.get_fdata()))
    log_sums = np.zeros(n_voxels, dtype=np.float64)
    max_values = np.zeros(len(ids), dtype=DEFAULT_FLOAT_DTYPE)  # as NiMARE's _csr_row_max
    histograms = []
    LGR.info("ALE of %d experiments (%d foci), %d at a time", len(ids), len(coords), chunk)
    for start in range(0, len(ids), chunk):
        chunk_ids = ids[start:start + chunk]
        part = coords[coords["id"].isin(chunk_ids)]
        csr = estimator.kernel_transformer.transform(
            part, masker=estimator.masker, return_type="sparse").tocsr(copy=False)
        if csr.shape != (len(chunk_ids), n_voxels):  # one row per experiment, in id order
            raise AssertionError(f"MA maps {csr.shape} for {len(chunk_ids)} experiments and "
                                 f"{n_voxels} mask voxels")
        _add_in_order(log_sums, csr.indices, np.log1p(-csr.data))
        if not stat_only:  # the analytic null's inputs
            maxima, rows = _experiment_summaries(csr, _INV_STEP_SIZE)
            max_values[start:start + len(maxima)] = maxima
            histograms.extend(rows)
        del csr
    stat_values = (1.0 - np.exp(log_sums)).astype(DEFAULT_FLOAT_DTYPE, copy=False)
    if stat_only:
        return MetaResult(estimator, mask=estimator.masker, maps={"stat": stat_values},
                          tables={}, description="")

    estimator._ALE__n_mask_voxels = n_voxels
    estimator._study_max_ma_values = max_values
    hist_bins, weights = _analytic_null(histograms, max_values, n_voxels, estimator)
    estimator.null_distributions_["histogram_bins"] = hist_bins
    estimator.null_distributions_["histweights_corr-none_method-approximate"] = weights
    p_values, z_values = estimator._summarystat_to_p(stat_values, null_method="approximate")
    maps = {"stat": stat_values, "p": p_values, "z": z_values,
            "logp": _nlogp_to_logp_values(np.log(p_values))}
    description = estimator._description_text() if estimator.generate_description else ""
    return MetaResult(estimator, mask=estimator.masker, maps=maps, tables={},
                      description=description)


class StatOnlyALE(ALE):
    """NiMARE's ALE (analytic null) whose ``fit`` makes only the ALE map, streamed and
    equal to ``ALE.fit``'s bit for bit (:func:`fit_ale` with ``stat_only``).

    For NiMARE's :class:`~nimare.diagnostics.Jackknife`, which refits its result's
    estimator once per left-out experiment and reads only the ALE map of each refit: the
    analytic null and the p and z maps of every refit are skipped (the 112 refits of the
    contagion set: 63 s instead of 111 s), and the contribution table is NiMARE's, value
    for value (tests/meta/test_streaming.py)."""

    def fit(self, dataset, drop_invalid=True, ma_maps=None):
        if not drop_invalid or ma_maps is not None:
            raise ValueError("StatOnlyALE.fit takes the dataset only")
        return fit_ale(self, dataset, stat_only=True)
