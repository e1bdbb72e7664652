"""Rule meta_contrast: ALE subtraction, group 1 minus group 2 and the reverse."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.contrast import run_contrast  # noqa: E402

settle_imports("nimare.meta.cbma.ale")

params = snakemake.params  # noqa: F821
run_contrast(
    dataset_files=list(snakemake.input.datasets),  # noqa: F821
    labels=list(params.categories),
    output_dir=Path(snakemake.output.maps[0]).parent,  # noqa: F821
    direction_files=list(snakemake.output.directions),  # noqa: F821
    voxel_thresh=params.voxel_thresh,
    n_iters=params.n_iters,
    seed=params.seed,
    min_cluster_mm3=params.min_cluster_mm3,
    null_files=list(snakemake.input.nulls),  # noqa: F821
    gate_files=list(snakemake.input.gates) or None,  # noqa: F821
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
