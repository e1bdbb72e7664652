"""Rule macm_null: one shard of the MACM's voxel-level Monte Carlo null."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.macm import run_macm_null_shard  # noqa: E402

settle_imports("nimare.meta.cbma.ale", "nimare.correct")

p = snakemake.params  # noqa: F821
done = run_macm_null_shard(
    seed_file=snakemake.input.seed,  # noqa: F821
    reference_file=snakemake.input.reference,  # noqa: F821
    output=snakemake.output[0],  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    shards=p.shards,
    assumed_sample_size=p.assumed_sample_size,
    n_iters=p.n_iters,
    seed=p.seed,
    **({"early_stop": p.early_stop["early_stop"], "alpha": p.early_stop["alpha"]}
       if p.early_stop else {}),
)
logging.info("blocks %s: %d iterations", done["blocks"], done["n_iters"])
