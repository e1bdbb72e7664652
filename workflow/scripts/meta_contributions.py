"""Rule meta_contributions: each experiment's share of each cluster of a category's ALE."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.tables import write_contributions  # noqa: E402

settle_imports("nimare.diagnostics", "nimare.meta.cbma.ale", "nilearn.reporting")

write_contributions(
    dataset_file=snakemake.input.dataset,  # noqa: F821
    map_file=snakemake.input.thresholded,  # noqa: F821
    output_file=snakemake.output.table,  # noqa: F821
    method=snakemake.params.method,  # noqa: F821
    n_cores=snakemake.threads,  # noqa: F821
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
