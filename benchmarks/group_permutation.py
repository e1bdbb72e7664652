#!/usr/bin/env python3
"""Permutation inference of the group stage against nilearn's non_parametric_inference.

For each statistic (voxel t, cluster size, cluster mass, TFCE) this script times, in one
process and on the same data and permutations:

* nilearn: ``non_parametric_inference(..., n_perm, random_state)`` called directly;
* mirrorflow: the workflow's path, ``null_shard`` (one shard: every block) and
  ``permutation_threshold`` (mirrorflow.group.inference), with one block of ``n_perm``
  permutations seeded as nilearn's call, so both draw the same sign flips;

checks that the -log10 FWE p maps are identical, and prints ms per permutation and the
ratio. It then splits the permutations into blocks of 100 over 1, 2 and 4 shards
(computed one after the other, as separate jobs would), checks the merged nulls are
identical and prints the time per shard.

Data: ``--subjects`` (20) null first-level maps (smooth noise, FWHM 8 mm) in nilearn's
MNI152 brain mask at ``--resolution`` mm (4: the default run's grid), one-sample model.
mirrorflow freezes the interpreter's objects for the garbage collector while permuting
(nilearn calls ``gc.collect()`` for every permuted map it unmasks), and computes TFCE with
:mod:`mirrorflow.group.tfce` (nilearn's statistic, bit for bit); the other statistics are
nilearn's own.

Usage: python benchmarks/group_permutation.py [--subjects 20] [--resolution 4]
       [--perms voxel=1000 size=200 mass=200 tfce=50]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=20)
    parser.add_argument("--resolution", type=int, default=4)
    parser.add_argument("--perms", nargs="+", default=["voxel=1000", "size=200", "mass=200",
                                                         "tfce=50"])
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import nilearn
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.glm.second_level import non_parametric_inference

    from mirrorflow.group import inference
    from mirrorflow.group.maps import design_matrix, fit_group
    from mirrorflow.simulate.null import null_effect_maps

    from scipy.ndimage import generate_binary_structure

    from mirrorflow.group.tfce import calculate_tfce

    # mirrorflow's TFCE is compiled (numba): its first call in a process (compiling, or
    # loading the cache, ~1-2 s) is not timed here; a job pays it once.
    t0 = time.perf_counter()
    calculate_tfce(np.ones((3, 3, 3, 1)), generate_binary_structure(3, 1))
    first_call = time.perf_counter() - t0
    mask = load_mni152_brain_mask(resolution=args.resolution)
    subjects = [f"{i:02d}" for i in range(args.subjects)]
    maps = null_effect_maps(mask, n_subjects=args.subjects, fwhm=8.0, seed=1)
    design = design_matrix(subjects)
    z = fit_group(maps, design, contrast="intercept", mask_img=mask)
    n_voxels = int(np.asarray(mask.dataobj).astype(bool).sum())
    print(f"machine: {platform.machine()} {platform.system()}, {os.cpu_count()} CPUs; "
          f"nilearn {nilearn.__version__}; {args.subjects} subjects, {n_voxels} voxels "
          f"({args.resolution} mm), one-sample, cluster-forming p 0.001, one core")
    print(f"mirrorflow's TFCE: first call {first_call:.2f} s (numba compile or cache load)")
    print(f"{'statistic':>9} {'perms':>6} {'nilearn ms/perm':>16} {'mirrorflow ms/perm':>19} "
          f"{'ratio':>6}  identical")
    for item in args.perms:
        statistic, n_perm = item.split("=")
        n_perm = int(n_perm)
        settings = dict(method="permutation", statistic=statistic, n_perm=n_perm,
                        block=n_perm, shards=1, seed=0, cluster_forming_p=0.001, alpha=0.05)
        t0 = time.perf_counter()
        reference = non_parametric_inference(
            maps, design_matrix=design.reset_index(drop=True), second_level_contrast="intercept",
            mask=mask, n_perm=n_perm, random_state=inference.block_seed(0, 0),
            threshold=0.001 if statistic in ("size", "mass") else None,
            tfce=statistic == "tfce")
        nilearn_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        data = inference.permutation_data(maps, design, "intercept", mask_img=mask)
        shard = inference.null_shard(data, shard=0, shards=1, settings=settings)
        logp, _, _ = inference.permutation_threshold(data, shard["null"][0], z,
                                                     settings=settings)
        ours_s = time.perf_counter() - t0
        key = {"voxel": None, "size": "logp_max_size", "mass": "logp_max_mass",
               "tfce": "logp_max_tfce"}[statistic]
        ref = reference if key is None else reference[key]
        same = np.array_equal(logp.get_fdata(), ref.get_fdata())
        print(f"{statistic:>9} {n_perm:>6} {1000 * nilearn_s / n_perm:>16.2f} "
              f"{1000 * ours_s / n_perm:>19.2f} {nilearn_s / ours_s:>6.1f}  {same}")

    print("\nsharding (cluster mass, blocks of 100; shards run one after another here):")
    settings = dict(method="permutation", statistic="mass", n_perm=400, block=100, shards=4,
                    seed=0, cluster_forming_p=0.001, alpha=0.05)
    data = inference.permutation_data(maps, design, "intercept", mask_img=mask)
    merged = {}
    for shards in (1, 2, 4):
        t0 = time.perf_counter()
        parts = [inference.null_shard(data, shard=k, shards=shards, settings=settings)
                 for k in range(shards)]
        elapsed = time.perf_counter() - t0
        null = {b: v for part in parts for b, v in part["null"].items()}
        merged[shards] = np.concatenate([null[b] for b in sorted(null)])
        print(f"  {shards} shard(s): {elapsed / shards:.2f} s per shard, merged null identical "
              f"to 1 shard: {np.array_equal(merged[shards], merged[1])}")


if __name__ == "__main__":
    main()
