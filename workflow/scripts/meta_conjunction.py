"""Rule meta_conjunction: minimum-statistic conjunction of the thresholded ALE maps."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.conjunction import run_conjunction  # noqa: E402

settle_imports("nimare.workflows.misc")

run_conjunction(
    maps=list(snakemake.input.maps),  # noqa: F821
    labels=list(snakemake.params.categories),  # noqa: F821
    conjunction_file=snakemake.output.conjunction,  # noqa: F821
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
