"""Rule macm_ale: select reference experiments by the conjunction seed and run ALE."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.macm import run_macm  # noqa: E402

settle_imports("nimare.meta.cbma.ale", "nimare.correct")

params = snakemake.params  # noqa: F821
run_macm(
    seed_file=snakemake.input.seed,  # noqa: F821
    reference_file=snakemake.input.reference,  # noqa: F821
    output_dir=Path(snakemake.output.thresholded).parent,  # noqa: F821
    experiments_file=snakemake.output.experiments,  # noqa: F821
    contributions_file=snakemake.output.contributions,  # noqa: F821
    contributions=params.contributions,
    assumed_sample_size=params.assumed_sample_size,
    alpha=params.alpha,
    n_iters=params.n_iters,
    n_cores=snakemake.threads,  # noqa: F821
    seed=params.seed,
    null_files=list(snakemake.input.nulls),  # noqa: F821
    early_stop=params.early_stop,
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
