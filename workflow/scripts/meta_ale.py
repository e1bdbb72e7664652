"""Rule meta_ale: corrected ALE of one category's coordinate set."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.ale import run_ale  # noqa: E402

settle_imports("nimare.meta.cbma.ale", "nimare.correct")

params = snakemake.params  # noqa: F821
run_ale(
    dataset_file=snakemake.input.dataset,  # noqa: F821
    output_dir=Path(snakemake.output.thresholded).parent,  # noqa: F821
    label=snakemake.wildcards.category,  # noqa: F821
    voxel_thresh=params.voxel_thresh,
    alpha=params.alpha,
    n_iters=params.n_iters,
    seed=params.seed,
    level=params.level,
    null_files=list(snakemake.input.nulls),  # noqa: F821
    early_stop=params.early_stop,
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
