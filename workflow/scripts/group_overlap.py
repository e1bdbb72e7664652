"""Rule group_overlap: minimum-statistic conjunction of thresholded regression maps."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.group.overlap import conjunction  # noqa: E402
from mirrorflow.io.bids import write_sidecar  # noqa: E402

conjunction(list(snakemake.input)).to_filename(snakemake.output[0])
write_sidecar(
    snakemake.output[0],
    {
        "Sources": list(snakemake.input),
        "Description": "Minimum statistic of the thresholded maps where all are positive "
        "(conjunction null, Nichols et al. 2005).",
    },
)
