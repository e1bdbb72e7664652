"""Rule macm_reference: convert the Neurosynth tables to a pickled NiMARE Dataset, once."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.meta.reference import build_reference  # noqa: E402

settle_imports("nimare.io", "nimare.dataset")

build_reference(
    reference_dir=Path(snakemake.input.coordinates).parent,  # noqa: F821
    output_file=snakemake.output.dataset,  # noqa: F821
)
