"""Rule derivatives_description: dataset_description.json of one derivatives folder."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.io.bids import dataset_description, write_json  # noqa: E402

write_json(
    snakemake.output[0],
    dataset_description(stage=snakemake.wildcards.stage, source=snakemake.params.source),
)
