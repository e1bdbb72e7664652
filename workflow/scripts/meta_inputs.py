"""Rule meta_inputs: check one category's coordinates and write them as NiMARE JSON."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.meta.inputs import write_category  # noqa: E402

write_category(
    label=snakemake.wildcards.category,  # noqa: F821
    spec=snakemake.params.spec,  # noqa: F821
    source=snakemake.input.source,  # noqa: F821
    output_file=snakemake.output.dataset,  # noqa: F821
    summary_file=snakemake.output.summary,  # noqa: F821
    assumed_sample_size=snakemake.params.assumed_sample_size,  # noqa: F821
)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake, documents=[snakemake.output.summary])  # noqa: F821
