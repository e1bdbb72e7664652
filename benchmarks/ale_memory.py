#!/usr/bin/env python3
"""Peak memory of an ALE fit: NiMARE's ``ALE.fit`` against mirrorflow's streamed fit.

Fits NiMARE's ALE (analytic null, the MACM's assumed sample size of 20) on the first
``--experiments`` experiments of the shipped Neurosynth copy (``resources/neurosynth``),
once with NiMARE's ``fit`` (every experiment's modelled-activation map held at once) and
once with :func:`mirrorflow.meta.streaming.fit_ale` (a chunk at a time). Each fit runs in
a fresh process, whose peak resident set (getrusage) is its own; the script checks that
the maps and the null are identical and prints both peaks and times.

Usage: python benchmarks/ale_memory.py [--experiments 1000] [--only streamed|nimare]
(``--only streamed --experiments 14371``: the whole database, which NiMARE's fit cannot
hold in this machine's 24 GB.)
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
import numpy as np
warnings.simplefilter("ignore")
from nimare.meta.cbma.ale import ALE
from mirrorflow.meta.reference import load_reference
from mirrorflow.meta.streaming import fit_ale
engine, reference, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
dset = load_reference(reference)
dset = dset.slice(sorted(dset.ids)[:n])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start = time.perf_counter()
estimator = ALE(null_method="approximate", kernel__sample_size=20)
result = estimator.fit(dset) if engine == "nimare" else fit_ale(estimator, dset)
seconds = time.perf_counter() - start
np.savez(out, weights=estimator.null_distributions_[
    "histweights_corr-none_method-approximate"], **result.maps)
print(json.dumps({"seconds": seconds, "loaded_mb": before, "experiments": len(dset.ids),
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run(engine: str, reference: Path, n: int, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, engine, str(reference), str(n),
                           str(out)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiments", type=int, default=1000)
    parser.add_argument("--only", choices=("streamed", "nimare"))
    args = parser.parse_args()

    from mirrorflow.meta.reference import build_reference

    print(f"{platform.node()}, {platform.processor() or platform.machine()}, one process each")
    with tempfile.TemporaryDirectory() as tmp:
        reference = Path(tmp) / "reference.pkl"
        build_reference(reference_dir=ROOT / "resources" / "neurosynth",
                        output_file=reference)
        engines = [args.only] if args.only else ["nimare", "streamed"]
        results = {}
        for engine in engines:
            start = time.perf_counter()
            results[engine] = run(engine, reference, args.experiments,
                                  Path(tmp) / f"{engine}.npz")
            info = results[engine]
            print(f"{engine:>8}: {info['experiments']} experiments, peak resident "
                  f"{info['peak_mb']:.0f} MB (dataset loaded: {info['loaded_mb']:.0f} MB), "
                  f"fit {info['seconds']:.1f} s (process {time.perf_counter() - start:.1f} s)")
        if len(engines) == 2:
            a, b = (np.load(Path(tmp) / f"{e}.npz") for e in engines)
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
            print(f"identical maps and null ({', '.join(sorted(a.files))}); peak ratio "
                  f"{results['nimare']['peak_mb'] / results['streamed']['peak_mb']:.1f}x")


if __name__ == "__main__":
    main()
