"""Rule group_mask: voxels inside every participant's analysis mask."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from nilearn.masking import intersect_masks  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402

settle_imports()

intersect_masks(list(snakemake.input), threshold=1, connected=False).to_filename(
    snakemake.output[0]
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
