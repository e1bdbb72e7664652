"""Rule meta_contrast_null: one shard of the ALE subtraction's permutations."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.contrast import run_subtraction_shard  # noqa: E402

settle_imports("nimare.meta.cbma.ale")

p = snakemake.params  # noqa: F821
done = run_subtraction_shard(
    dataset_files=list(snakemake.input.datasets),  # noqa: F821
    labels=list(p.categories),
    output=snakemake.output[0],  # noqa: F821
    shard=int(snakemake.wildcards.shard),  # noqa: F821
    shards=p.shards,
    n_iters=p.n_iters,
    seed=p.seed,
)
logging.info("permutation blocks %s", done["blocks"])
