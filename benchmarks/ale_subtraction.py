#!/usr/bin/env python3
"""The ALE subtraction's permutations: mirrorflow's engine against NiMARE's own loop.

On the shipped Sleuth sets (mimicry minus contagion, ``resources/meta``), in one process
and on one core, this fits :class:`nimare.meta.cbma.ale.ALESubtraction` twice with the
same seed: once with NiMARE's own permutation loop, once with
:mod:`mirrorflow.meta.subtraction_null` (through :mod:`mirrorflow.meta.contrast`). It
checks that every map and the null of maxima are identical, and prints each engine's ms
per permutation (the permutation loop alone, timed inside the fit), the ratio, and the
whole fit's time.

Usage: python benchmarks/ale_subtraction.py [--iters 200] [--gate]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NULL_KEY = "values_level-voxel_corr-fwe_method-montecarlo"


def datasets():
    from nimare.dataset import Dataset

    from mirrorflow.meta.inputs import _sleuth_dict

    return [Dataset(_sleuth_dict(ROOT / "resources" / "meta" / f"{c}.txt"))
            for c in ("mimicry", "contagion")]


def fit(dsets, engine: str, n_iters: int, gates=None):
    """(result, seconds in the permutation loop, seconds of the whole fit)."""
    from mirrorflow.meta.contrast import _subtraction_class

    base = _subtraction_class()

    class Timed(base):
        loop_s = 0.0

        def _run_null_permutations(self, *args, **kwargs):
            start = time.perf_counter()
            try:
                return super()._run_null_permutations(*args, **kwargs)
            finally:
                self.loop_s += time.perf_counter() - start

    estimator = Timed(n_iters=n_iters, random_state=2)
    estimator.engine = engine
    estimator.iterations, estimator.n_total = list(range(n_iters)), n_iters
    first, second = gates or (None, None)
    start = time.perf_counter()
    result = estimator.fit(*dsets, inference_map1=first, inference_map2=second)
    return result, estimator.loop_s, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iters", type=int, default=200)
    parser.add_argument("--gate", action="store_true",
                        help="gate each direction by a sphere (NiMARE's masked mode)")
    args = parser.parse_args()
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    warnings.simplefilter("ignore")
    dsets = datasets()
    gates = None
    if args.gate:
        from nilearn.image import new_img_like

        mask = dsets[0].masker.mask_img
        ijk = np.indices(mask.shape).reshape(3, -1).T
        xyz = ijk @ mask.affine[:3, :3].T + mask.affine[:3, 3]
        gates = tuple(new_img_like(mask, (np.linalg.norm(xyz - c, axis=1) < 30).reshape(
            mask.shape).astype(np.float32)) for c in ([0, 10, 40], [-40, 0, 0]))
    # Warm-up (numba compile or cache load), not timed.
    fit(dsets, "mirrorflow", 2, gates)
    n = args.iters
    theirs, loop_n, whole_n = fit(dsets, "nimare", n, gates)
    ours, loop_m, whole_m = fit(dsets, "mirrorflow", n, gates)
    for key in theirs.maps:
        np.testing.assert_array_equal(ours.maps[key], theirs.maps[key], err_msg=key)
    np.testing.assert_array_equal(ours.estimator.null_distributions_[NULL_KEY],
                                  theirs.estimator.null_distributions_[NULL_KEY])
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; shipped sets: "
          f"{len(dsets[0].ids)} mimicry vs {len(dsets[1].ids)} contagion experiments, "
          f"{n} permutations{', gated' if gates else ''}")
    print(f"  per permutation: NiMARE {1000 * loop_n / n:8.2f} ms   mirrorflow "
          f"{1000 * loop_m / n:8.2f} ms   ratio {loop_n / loop_m:5.1f}x")
    print(f"  whole fit:       NiMARE {whole_n:8.2f} s    mirrorflow {whole_m:8.2f} s")
    print("  maps and null of maxima identical: yes")


if __name__ == "__main__":
    main()
