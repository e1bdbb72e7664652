"""Rule meta_clusters: cluster table with atlas labels and glass brain of a thresholded map."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.tables import write_clusters  # noqa: E402

settle_imports("nilearn.reporting", "nilearn.plotting")

write_clusters(
    snakemake.input.thresholded,  # noqa: F821
    table_file=snakemake.output.table,  # noqa: F821
    figure_file=snakemake.output.figure,  # noqa: F821
    atlases=snakemake.params.atlases,  # noqa: F821
    title=snakemake.params.title,  # noqa: F821
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
