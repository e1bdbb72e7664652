"""Tests of mirrorflow.meta.null: the exact ALE null engine against NiMARE, shards, stops.

NiMARE is the reference throughout: its own iteration function
(``ALE._correct_fwe_montecarlo_permutation``, what ``FWECorrector(method="montecarlo")``
runs for each iteration) on the same relocated foci, compared bit for bit.
"""

from __future__ import annotations

import json
import os
import tracemalloc

import numpy as np
import pytest
from scipy import ndimage

from mirrorflow.exceptions import ConfigError
from mirrorflow.meta import null as engine

BOUNDS = ("blocks", "voxels", "separable")


def _pain():
    from nimare.dataset import Dataset
    from nimare.tests.utils import get_test_data_path

    return Dataset(os.path.join(get_test_data_path(), "test_pain_dataset.json"))


def _synthetic(n_experiments=50, n_foci=20, seed=0, sample_size=None):
    """n_experiments x n_foci foci drawn uniformly in the 2 mm MNI brain mask."""
    from nimare.dataset import Dataset

    from mirrorflow.simulate.coordinates import uniform_coordinate_source

    return Dataset(uniform_coordinate_source(n_experiments=n_experiments, n_foci=n_foci,
                                             seed=seed, sample_size=sample_size))


def _nimare_iterations(estimator, ijk, voxel_thresh):
    """NiMARE's (max ALE, max cluster size, max cluster mass) of each iteration, float32
    as NiMARE stores them."""
    conn = ndimage.generate_binary_structure(rank=3, connectivity=1)
    mask = np.asarray(estimator.masker.mask_img.dataobj).astype(bool)
    thresh = None if voxel_thresh is None else estimator._p_to_summarystat(voxel_thresh)
    frame = estimator.inputs_["coordinates"].drop(columns=["x", "y", "z"], errors="ignore")
    out = [estimator._correct_fwe_montecarlo_permutation(
        it, frame.copy(), conn, thresh, voxel_thresh is None, mask) for it in ijk]
    voxel = np.array([o[0] for o in out], dtype=np.float32)
    if voxel_thresh is None:
        return voxel, None, None
    return (voxel, np.array([o[1] for o in out], dtype=np.float32),
            np.array([o[2] for o in out], dtype=np.float32))


@pytest.fixture(scope="module", params=["pain", "synthetic"])
def reference(request):
    """A fitted ALE, NiMARE's draw of 100 iterations and NiMARE's maxima for them (NiMARE
    computes and labels the whole volume each time: ~0.1 s an iteration)."""
    dset = _pain() if request.param == "pain" else _synthetic()
    estimator, _ = engine.ale_estimator(dset, random_state=3)
    plan = engine.build_plan(estimator, voxel_thresh=0.001)
    ijk = engine.nimare_draw(estimator, plan, 100)
    return request.param, estimator, ijk, _nimare_iterations(estimator, ijk, 0.001)


@pytest.mark.parametrize("bound", ("auto", *BOUNDS))
def test_maxima_equal_nimare_bit_for_bit(reference, bound):
    """100 iterations of the pain set (21 experiments) and of 50 x 20 synthetic foci:
    max ALE, max cluster size and max cluster mass equal NiMARE's exactly, whichever
    bound prunes the volume (10 iterations for the separable one, which convolves the
    volume once per kernel); the voxel-level plan gives the same max ALE."""
    _, estimator, ijk, (voxel, size, mass) = reference
    if bound == "separable":  # 3 convolutions per kernel: 0.8 s an iteration (synthetic)
        ijk, voxel, size, mass = ijk[:10], voxel[:10], size[:10], mass[:10]
    plan = engine.build_plan(estimator, voxel_thresh=0.001, bound=bound)
    got = engine.null_maxima(plan, ijk)
    assert size.max() > 1 and mass.max() > 0  # clusters form in these nulls
    np.testing.assert_array_equal(got["voxel"], voxel)
    np.testing.assert_array_equal(got["size"], size)
    np.testing.assert_array_equal(got["mass"], mass)
    voxel_plan = engine.build_plan(estimator, voxel_thresh=None, bound=bound)
    np.testing.assert_array_equal(engine.null_maxima(voxel_plan, ijk)["voxel"], voxel)


def test_high_threshold_and_empty_iterations():
    """A cluster-forming p so small that most iterations have no voxel above it: the
    maximum is then found by the second pass, and sizes and masses are 0, as NiMARE's."""
    estimator, _ = engine.ale_estimator(_pain(), random_state=1)
    plan = engine.build_plan(estimator, voxel_thresh=1e-7)
    ijk = engine.nimare_draw(estimator, plan, 60)
    voxel, size, mass = _nimare_iterations(estimator, ijk, 1e-7)
    assert (size == 0).sum() > 10
    got = engine.null_maxima(plan, ijk)
    np.testing.assert_array_equal(got["voxel"], voxel)
    np.testing.assert_array_equal(got["size"], size)
    np.testing.assert_array_equal(got["mass"], mass)


def test_dense_single_kernel_uses_the_separable_bound_exactly():
    """6,000 foci with one sample size (MACM-like): "auto" picks a voxel bound and the
    max ALE of 5 iterations (NiMARE's take 0.5 s each) equals NiMARE's voxel-level
    iterations."""
    estimator, _ = engine.ale_estimator(_synthetic(300, 20, seed=4), random_state=2,
                                        kernel__sample_size=20)
    plan = engine.build_plan(estimator, voxel_thresh=None)
    assert plan.side == 1
    ijk = engine.nimare_draw(estimator, plan, 5)
    voxel, _, _ = _nimare_iterations(estimator, ijk, None)
    for bound in ("auto", "separable"):
        got = engine.null_maxima(engine.build_plan(estimator, voxel_thresh=None, bound=bound),
                                 ijk)
        np.testing.assert_array_equal(got["voxel"], voxel)


def test_shards_merge_to_the_same_null(tmp_path):
    """250 iterations (3 blocks, the last short) in 1, 2, 3 and 5 shards (two of them
    empty): the merged nulls are identical; a missing or doubled block, or a shard of other
    settings, is refused naming the file."""
    estimator, _ = engine.ale_estimator(_pain(), random_state=1)
    settings = engine.null_settings(estimator, voxel_thresh=0.001, n_iters=250, seed=9)
    merged = {}
    for shards in (1, 2, 3, 5):
        paths = []
        for k in range(shards):
            part = engine.compute_shard(estimator, voxel_thresh=0.001, n_iters=250, seed=9,
                                        shard=k, shards=shards)
            paths.append(tmp_path / f"s{shards}_{k}.npz")
            part.save(paths[-1], settings)
        merged[shards] = engine.merge_shards(paths, settings)
        if shards == 3:
            three = paths
    assert merged[1].shape == (250, 3)
    for shards in (2, 3, 5):
        np.testing.assert_array_equal(merged[shards], merged[1])
    with pytest.raises(ConfigError, match=r"blocks \[1\] are missing"):
        engine.merge_shards([three[0], three[2]], settings)
    with pytest.raises(ConfigError, match="in two shards"):
        engine.merge_shards([*three, three[1]], settings)
    other = {**settings, "seed": 10}
    with pytest.raises(ConfigError, match=str(three[0])):
        engine.merge_shards(three, other)
    # a different seed is a different null
    assert not np.array_equal(
        engine.compute_shard(estimator, voxel_thresh=0.001, n_iters=100, seed=10).blocks[0],
        merged[1][:100])


def test_early_stop_is_the_same_for_any_shards(tmp_path):
    """With a tolerance the null stops at the first block whose threshold's standard error
    is below it: one shard stops there; the merge of shards that ran every block stops at
    the same block; so both give the same null."""
    estimator, _ = engine.ale_estimator(_pain(), random_state=1)
    settings = engine.null_settings(estimator, voxel_thresh=0.001, n_iters=1000, seed=2)
    stop = engine.early_stop(alpha=0.05, tolerance=0.1, column=1, min_iters=200)
    single = engine.compute_shard(estimator, voxel_thresh=0.001, n_iters=1000, seed=2,
                                  stop=stop)
    done = sum(map(len, single.blocks.values()))
    assert 200 <= done < 1000
    single.save(tmp_path / "one.npz", settings)
    paths = []
    for k in range(2):
        part = engine.compute_shard(estimator, voxel_thresh=0.001, n_iters=1000, seed=2,
                                    shard=k, shards=2, stop=stop)  # ignored with 2 shards
        assert sum(map(len, part.blocks.values())) == 500
        paths.append(tmp_path / f"two{k}.npz")
        part.save(paths[-1], settings)
    a = engine.merge_shards([tmp_path / "one.npz"], settings, stop=stop)
    b = engine.merge_shards(paths, settings, stop=stop)
    assert len(a) == done
    np.testing.assert_array_equal(a, b)
    q, se = engine.quantile_se(a[:, 1], 0.05)
    assert se <= 0.1 * q
    assert engine.early_stop(alpha=0.05, tolerance=None, column=1) is None


def test_quantile_standard_error_matches_monte_carlo():
    """The order-statistic standard error of the 95th percentile is within 25% of its
    spread over 400 independent samples of 2,000 (exponential maxima)."""
    rng = np.random.default_rng(0)
    samples = rng.exponential(size=(400, 2000))
    spread = np.std(np.quantile(samples, 0.95, axis=1))
    estimates = [engine.quantile_se(s, 0.05)[1] for s in samples[:50]]
    assert np.median(estimates) == pytest.approx(spread, rel=0.25)


def test_memory_does_not_grow_with_iterations():
    """The engine's buffers are the plan's: 20 and 400 iterations (drawn in blocks) peak
    within 1 MB of each other."""
    estimator, _ = engine.ale_estimator(_pain(), random_state=1)
    plan = engine.build_plan(estimator, voxel_thresh=0.001)
    engine.run_blocks(plan, [0], seed=1, n_iters=20)  # compile or load the cache

    def peak(n_iters):
        tracemalloc.start()
        engine.run_blocks(plan, range(engine.n_blocks(n_iters)), seed=1, n_iters=n_iters)
        value = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return value

    assert abs(peak(400) - peak(20)) < 1e6


def test_bad_settings():
    estimator, _ = engine.ale_estimator(_pain(), random_state=1)
    with pytest.raises(ConfigError, match="null bound"):
        engine.build_plan(estimator, voxel_thresh=0.001, bound="fast")
    with pytest.raises(ConfigError, match="n_iters"):
        engine.compute_shard(estimator, voxel_thresh=0.001, n_iters=0, seed=1)
    with pytest.raises(ValueError, match="shard 3"):
        engine.shard_blocks(3, 3, 1000)


def test_subtraction_shards_equal_nimare(tmp_path):
    """The ALE subtraction's permutations in 1 and 3 shards (3 blocks of 100 over 250
    permutations) merge to exactly NiMARE's own ALESubtraction maps and null."""
    from nimare.dataset import Dataset
    from nimare.meta.cbma.ale import ALESubtraction

    from mirrorflow.meta import contrast
    from mirrorflow.simulate.coordinates import simulate_coordinate_sets

    datasets, _ = simulate_coordinate_sets(
        categories={"one": [[-46, -6, 48]], "two": [[38, 18, -4]]}, shared_foci=[[0, 10, 40]],
        n_experiments=10, sample_size=(15, 30), n_noise_foci=2, fwhm=10.0, seed=5)
    dsets = [Dataset(datasets["one"]), Dataset(datasets["two"])]
    theirs = ALESubtraction(n_iters=250, random_state=4).fit(*dsets)
    settings = contrast._settings(dsets, ["one", "two"], 250, 4)
    for shards in (1, 3):
        paths = []
        for k in range(shards):
            part = contrast.subtraction_null_shard(*dsets, n_iters=250, seed=4, shard=k,
                                                   shards=shards)
            paths.append(tmp_path / f"c{shards}_{k}.npz")
            contrast.write_subtraction_shard(paths[-1], part, settings)
        merged = contrast.merge_subtraction_shards(paths, settings)
        ours = contrast.fit_subtraction(*dsets, n_iters=250, seed=4, merged=merged)
        assert sorted(ours.maps) == sorted(theirs.maps)
        for key in theirs.maps:
            np.testing.assert_array_equal(ours.maps[key], theirs.maps[key], err_msg=key)
        key = "values_level-voxel_corr-fwe_method-montecarlo"
        np.testing.assert_array_equal(ours.estimator.null_distributions_[key],
                                      theirs.estimator.null_distributions_[key])
    settings_json = json.loads(json.dumps(settings))
    with pytest.raises(ConfigError, match="missing"):
        contrast.merge_subtraction_shards(paths[:2], settings_json)
