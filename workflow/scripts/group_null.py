"""Rule group_null: maximum statistics of one shard of the permutation blocks."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.group.inference import null_shard, permutation_data, write_null_shard  # noqa: E402
from mirrorflow.group.maps import group_design  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402

settle_imports("nilearn.mass_univariate", "nilearn.maskers")

p = snakemake.params
design, column = group_design(p.spec, p.subjects, participants_file=snakemake.input.participants)
data = permutation_data(snakemake.input.maps, design, column, mask_img=snakemake.input.mask,
                        paired=p.spec["kind"] == "paired")
shard = int(snakemake.wildcards.shard)
result = null_shard(data, shard=shard, shards=p.inference["shards"], settings=p.inference)
write_null_shard(snakemake.output[0], result, p.inference)
logging.info("shard %d: permutation blocks %s", shard, result["blocks"])
