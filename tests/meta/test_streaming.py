"""Tests of mirrorflow.meta.streaming: NiMARE's ALE fit, made a chunk of experiments at a
time, equals NiMARE's ``ALE.fit`` bit for bit, and holds less memory."""

from __future__ import annotations

import numpy as np
import pytest
from nimare.dataset import Dataset
from nimare.meta.cbma.ale import ALE

from mirrorflow.jobs import frozen_gc
from mirrorflow.meta import streaming
from mirrorflow.meta.inputs import _sleuth_dict
from mirrorflow.meta.reference import load_reference
from mirrorflow.simulate.coordinates import uniform_coordinate_source

from .test_contrast import SHIPPED

#: What the fit leaves in the estimator's null distributions.
NULL_KEYS = ("histogram_bins", "histweights_corr-none_method-approximate")


def _assert_same_fit(expected, got):
    assert sorted(got.maps) == sorted(expected.maps)
    for key, values in expected.maps.items():
        assert got.maps[key].dtype == values.dtype, key
        np.testing.assert_array_equal(got.maps[key], values, err_msg=key)  # bit for bit
    for key in NULL_KEYS:
        np.testing.assert_array_equal(got.estimator.null_distributions_[key],
                                      expected.estimator.null_distributions_[key], err_msg=key)
    np.testing.assert_array_equal(got.estimator._study_max_ma_values.astype(np.float32),
                                  _row_max(expected))
    assert got.description_ == expected.description_


def _row_max(result):
    """Each experiment's maximum MA value, from NiMARE's own MA maps."""
    from nimare.meta.cbma.null_utils import _csr_row_max

    est = result.estimator
    return _csr_row_max(est.kernel_transformer.transform(
        est.inputs_["coordinates"], masker=est.masker, return_type="sparse"))


@pytest.fixture(scope="module")
def macm_like(reference):
    """150 Neurosynth experiments with the MACM's assumed sample size, and NiMARE's fit."""
    dset = load_reference(reference)
    dset = dset.slice(sorted(dset.ids)[:150])
    with frozen_gc():
        return dset, ALE(null_method="approximate", kernel__sample_size=20).fit(dset)


@pytest.mark.parametrize("chunk", [37, 10_000])
def test_reference_slice_equals_nimare(macm_like, chunk):
    """In chunks of 37 experiments (chunks that end mid-way through the ids), and all at
    once."""
    dset, expected = macm_like
    with frozen_gc():
        got = streaming.fit_ale(ALE(null_method="approximate", kernel__sample_size=20), dset,
                                chunk=chunk)
    assert len(got.estimator.inputs_["id"]) == 150
    _assert_same_fit(expected, got)


def test_own_sample_sizes_equal_nimare():
    """Each experiment's own sample size (its own kernel), as the categories' ALE; one
    experiment's only focus lies in the image's corner, far outside the brain mask: its MA
    map is empty (Neurosynth holds such experiments)."""
    source = uniform_coordinate_source(n_experiments=60, n_foci=12, seed=4)
    source["exp999"] = {"contrasts": {"1": {
        "coords": {"space": "MNI", "x": [-88.0], "y": [88.0], "z": [100.0]},
        "metadata": {"sample_sizes": [12]}}}}
    dset = Dataset(source)
    with frozen_gc():
        expected = ALE(null_method="approximate").fit(dset)
        got = streaming.fit_ale(ALE(null_method="approximate"), dset, chunk=16)
    assert got.estimator.inputs_["coordinates"]["sample_size"].nunique() > 10
    assert np.count_nonzero(got.estimator._study_max_ma_values == 0) == 1  # exp999
    _assert_same_fit(expected, got)


def test_holds_a_chunk_not_every_map(macm_like):
    """Python's allocations while fitting 150 experiments (tracemalloc): NiMARE's fit holds
    every experiment's MA map at once, the streamed fit one chunk of 10 (and what does not
    grow with the maps: the mask, the ALE's sums, each experiment's histogram)."""
    import tracemalloc

    dset = macm_like[0]

    def peak(fit):
        tracemalloc.start()
        try:
            fit()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    with frozen_gc():
        whole = peak(lambda: ALE(null_method="approximate", kernel__sample_size=20).fit(dset))
        streamed = peak(lambda: streaming.fit_ale(
            ALE(null_method="approximate", kernel__sample_size=20), dset, chunk=10))
    assert streamed < whole / 3, (streamed, whole)


def test_montecarlo_null_refused():
    with pytest.raises(ValueError, match="analytic null"):
        streaming.fit_ale(ALE(null_method="montecarlo"), Dataset(_sleuth_dict(
            SHIPPED / "mimicry.txt")))


def test_jackknife_of_stat_only_refits_equals_nimare(tmp_path):
    """NiMARE's Jackknife on a shipped set: refitting StatOnlyALE (the ALE map only, per
    left-out experiment) gives NiMARE's contribution table, value for value, from NiMARE's
    ALE refits."""
    from mirrorflow.meta.ale import fit_ale, threshold_fwe
    from mirrorflow.meta.tables import contributions_table

    dset = Dataset(_sleuth_dict(SHIPPED / "mimicry.txt"))
    dset = dset.slice(sorted(dset.ids)[:20])  # 20 refits each way
    with frozen_gc():
        thresholded = threshold_fwe(fit_ale(dset, voxel_thresh=0.001, n_iters=100, seed=1),
                                    alpha=0.05, level="voxel")
        assert np.count_nonzero(np.asarray(thresholded.dataobj)) > 20
        ours = contributions_table(streaming.StatOnlyALE().fit(dset), thresholded,
                                   method="jackknife")
        theirs = contributions_table(ALE(null_method="approximate").fit(dset), thresholded,
                                     method="jackknife")
    assert len(ours) == 20 and len(ours.columns) > 1  # ids and at least one cluster
    assert (ours.iloc[:, 1:].to_numpy() > 0).any()
    assert ours.columns.tolist() == theirs.columns.tolist()
    np.testing.assert_array_equal(ours.to_numpy(), theirs.to_numpy())
