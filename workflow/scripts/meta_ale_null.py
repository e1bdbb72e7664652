"""Rule meta_ale_null: one shard of a category's ALE Monte Carlo null."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.ale import run_null_shard  # noqa: E402

settle_imports("nimare.meta.cbma.ale", "nimare.correct")

p = snakemake.params  # noqa: F821
done = run_null_shard(
    dataset_file=snakemake.input.dataset,  # noqa: F821
    output=snakemake.output[0],  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    shards=p.shards,
    voxel_thresh=p.voxel_thresh,
    n_iters=p.n_iters,
    seed=p.seed,
    **({"early_stop": p.early_stop["early_stop"], "alpha": p.early_stop["alpha"],
        "level": p.early_stop["level"]} if p.early_stop else {}),
)
logging.info("blocks %s: %d iterations", done["blocks"], done["n_iters"])
