#!/usr/bin/env python3
"""The ALE Monte Carlo null: mirrorflow's engine against NiMARE's montecarlo FWE.

For each dataset this script fits NiMARE's ALE once, then in one process and on one core:

* NiMARE: ``FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters, n_cores=1)``
  ``.transform(result)`` (voxel-level only, ``vfwe_only=True``, for the MACM-scale set, as
  the MACM rule runs it);
* mirrorflow: :func:`mirrorflow.meta.null.null_maxima` on NiMARE's own draw of the same
  iterations, then :func:`mirrorflow.meta.null.correct_fwe`;

checks that the per-iteration maxima (ALE, cluster size, cluster mass) and every
corrected map are identical, and prints ms per iteration, the ratio, and the memory
peaks (tracemalloc, in separate short runs so that tracing does not slow the timed ones).
The engine's first call (numba compile, or loading its cache) is timed separately.

Datasets: NiMARE's bundled pain set (21 experiments); 50 experiments x 20 foci drawn
uniformly in the 2 mm MNI mask (sample sizes 10-40, seeded); and a MACM-scale set: the
Neurosynth v7 experiments (``resources/neurosynth``) with a focus within 8 mm of the
three planted conjunction peaks of ``config/config.yaml``, sample size 20 each.

Usage: python benchmarks/ale_null.py [--iters pain=1000 synthetic=1000 macm=20]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
PEAKS = [[0, 10, 40], [-40, 32, 30], [-52, -40, 42]]


def pain():
    from nimare.dataset import Dataset
    from nimare.tests.utils import get_test_data_path

    return Dataset(os.path.join(get_test_data_path(), "test_pain_dataset.json")), {}


def synthetic(n_experiments=50, n_foci=20, seed=0):
    from nimare.dataset import Dataset

    from mirrorflow.simulate.coordinates import uniform_coordinate_source

    return Dataset(uniform_coordinate_source(n_experiments=n_experiments, n_foci=n_foci,
                                             seed=seed)), {}


def macm_scale(radius=8.0):
    import pandas as pd
    from nimare.dataset import Dataset

    table = pd.read_csv(
        ROOT / "resources/neurosynth/data-neurosynth_version-7_coordinates.tsv.gz", sep="\t"
    )
    xyz = table[["x", "y", "z"]].to_numpy()
    near = np.sqrt(((xyz[:, None, :] - np.array(PEAKS)[None]) ** 2).sum(-1)).min(1) <= radius
    chosen = table[table["id"].isin(table.loc[near, "id"].unique())]
    source = {
        str(i): {"contrasts": {"1": {
            "coords": {"space": "MNI", "x": g["x"].tolist(), "y": g["y"].tolist(),
                       "z": g["z"].tolist()},
            "metadata": {"sample_sizes": [20]},
        }}}
        for i, g in chosen.groupby("id", sort=True)
    }
    return Dataset(source), {"kernel__sample_size": 20}


def nimare_fwe(result, *, n_iters, voxel_thresh):
    from nimare.correct import FWECorrector

    corrector = FWECorrector(method="montecarlo", voxel_thresh=voxel_thresh or 0.001,
                             n_iters=n_iters, n_cores=1, vfwe_only=voxel_thresh is None)
    return corrector.transform(result)


def engine_fwe(result, plan, ijk, *, voxel_thresh):
    from mirrorflow.meta import null

    maxima = null.null_maxima(plan, ijk)
    stacked = np.stack([maxima["voxel"], maxima["size"], maxima["mass"]], axis=1)
    return null.correct_fwe(result, stacked, voxel_thresh=voxel_thresh)


def peak_mb(fn):
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1e6


def run(name, make, n_iters, *, voxel_thresh):
    from nimare.meta.cbma.ale import ALE

    from mirrorflow.meta import null

    dset, kwargs = make()
    est = ALE(null_method="approximate", random_state=1, **kwargs)
    result = est.fit(dset)
    n_foci = len(dset.coordinates)
    print(f"\n{name}: {len(dset.ids)} experiments, {n_foci} foci, {n_iters} iterations, "
          f"{'voxel-level' if voxel_thresh is None else 'cluster- and voxel-level'} FWE")

    t0 = time.perf_counter()
    plan = null.build_plan(est, voxel_thresh=voxel_thresh)
    t_plan = time.perf_counter() - t0
    ijk = null.nimare_draw(est, plan, n_iters)
    t0 = time.perf_counter()
    null.null_maxima(plan, ijk[:1])
    t_first = time.perf_counter() - t0

    # per iteration: NiMARE's iteration function, as its Parallel(n_jobs=1) calls it
    conn = ndimage.generate_binary_structure(rank=3, connectivity=1)
    mask_arr = np.asarray(est.masker.mask_img.dataobj).astype(bool)
    thresh = None if voxel_thresh is None else est._p_to_summarystat(voxel_thresh)
    frame = est.inputs_["coordinates"].drop(columns=["x", "y", "z"], errors="ignore").copy()
    t0 = time.perf_counter()
    theirs = np.array([est._correct_fwe_montecarlo_permutation(
        ijk[i], frame, conn, thresh, voxel_thresh is None, mask_arr) for i in range(n_iters)],
        dtype=object)
    t_loop_nimare = time.perf_counter() - t0
    engine = null._Engine(plan)
    t0 = time.perf_counter()
    ours_loop = engine.run(ijk)
    t_loop_ours = time.perf_counter() - t0
    columns = 1 if voxel_thresh is None else 3
    same_iters = all(
        np.array_equal(np.asarray(theirs[:, c], dtype=np.float64).astype(np.float32),
                       ours_loop[:, c].astype(np.float32)) for c in range(columns))

    # the whole correction: FWECorrector against the engine plus correct_fwe
    t0 = time.perf_counter()
    ref = nimare_fwe(result.copy(), n_iters=n_iters, voxel_thresh=voxel_thresh)
    t_nimare = time.perf_counter() - t0
    keys = ["values_level-voxel_corr-fwe_method-montecarlo"]
    if voxel_thresh is not None:
        keys += [f"values_desc-{d}_level-cluster_corr-fwe_method-montecarlo"
                 for d in ("size", "mass")]
    ref_null = {k: ref.estimator.null_distributions_[k].copy() for k in keys}
    t0 = time.perf_counter()
    ours = engine_fwe(result.copy(), plan, ijk, voxel_thresh=voxel_thresh)
    t_ours = time.perf_counter() - t0
    same_null = all(np.array_equal(ref_null[k], ours.estimator.null_distributions_[k])
                    for k in keys)
    fwe = [k for k in ref.maps if "corr-FWE" in k]
    same_maps = sorted(fwe) == sorted(k for k in ours.maps if "corr-FWE" in k) and all(
        np.array_equal(ref.maps[k], ours.maps[k]) for k in fwe)

    short = max(2, min(n_iters, 20))
    mem_nimare = peak_mb(lambda: nimare_fwe(result.copy(), n_iters=short,
                                            voxel_thresh=voxel_thresh))
    mem_ours = peak_mb(lambda: engine_fwe(result.copy(), null.build_plan(
        est, voxel_thresh=voxel_thresh), ijk[:short], voxel_thresh=voxel_thresh))

    ms = {k: 1e3 * v / n_iters for k, v in (("nl", t_loop_nimare), ("ol", t_loop_ours),
                                             ("nw", t_nimare), ("ow", t_ours))}
    mode = ("separable bound" if plan.separable else f"{plan.side}-voxel block bound")
    print(f"  per iteration:    NiMARE {ms['nl']:9.2f} ms   mirrorflow {ms['ol']:8.3f} ms   "
          f"ratio {ms['nl'] / ms['ol']:6.1f}x   identical maxima: {same_iters}")
    print(f"  whole correction: NiMARE {ms['nw']:9.2f} ms   mirrorflow {ms['ow']:8.3f} ms   "
          f"ratio {ms['nw'] / ms['ow']:6.1f}x   (per iteration, FWE maps included)")
    print(f"  memory peak ({short} iterations): NiMARE {mem_nimare:.0f} MB, mirrorflow "
          f"{mem_ours:.0f} MB (plan included); identical null: {same_null}, identical FWE "
          f"maps ({len(fwe)}): {same_maps}")
    print(f"  mirrorflow: {mode}; plan {t_plan:.2f} s; first call {t_first:.2f} s "
          f"(numba compile, or loading its cache)")
    return ms["nl"] / ms["ol"], same_iters and same_null and same_maps


def compile_seconds() -> float:
    """Seconds to compile the engine in a fresh process with an empty numba cache."""
    import subprocess
    import sys
    import tempfile

    here = str(Path(__file__).parent)
    code = (
        "import time, warnings, numpy as np; warnings.simplefilter('ignore')\n"
        f"import sys; sys.path.insert(0, {here!r}); import ale_null as b\n"
        "from mirrorflow.meta import null\n"
        "est, _ = null.ale_estimator(b.pain()[0]); plan = null.build_plan(est, voxel_thresh=0.001)\n"
        "ijk = null.nimare_draw(est, plan, 1); t = time.perf_counter()\n"
        "null.null_maxima(plan, ijk); print(time.perf_counter() - t)\n"
    )
    with tempfile.TemporaryDirectory() as cache:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "NUMBA_CACHE_DIR": cache}, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def nimare_version():
    import nimare

    return nimare.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", nargs="+", default=["pain=1000", "synthetic=1000",
                                                         "macm=20"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)
    iters = dict(item.split("=") for item in args.iters)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, one core per engine")
    sets = {"pain": (pain, 0.001), "synthetic": (synthetic, 0.001), "macm": (macm_scale, None)}
    print(f"numba compile of the engine, cold cache: {compile_seconds():.1f} s (then cached "
          "on disk: later processes load it)")
    ok = True
    for name, n in iters.items():
        make, thresh = sets[name]
        ok &= run(name, make, int(n), voxel_thresh=thresh)[1]
    if not ok:
        raise SystemExit("the engine's null differs from NiMARE's")


if __name__ == "__main__":
    main()
