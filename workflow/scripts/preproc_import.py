"""Rule preproc_import: bring one imported run (fMRIPrep or another pipeline) onto the
workflow's grid and smooth it."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.preproc.fmriprep import IMPORT_FIELDS, import_fmriprep_run  # noqa: E402

settle_imports("nilearn.image")

methods = import_fmriprep_run(
    bold_file=snakemake.input.bold,
    # Another pipeline's run may come without a mask or table (an empty input).
    mask_file=snakemake.input.mask or None,
    confounds_file=snakemake.input.confounds or None,
    outputs={key: snakemake.output[key] for key in IMPORT_FIELDS},
    fwhm=snakemake.params.fwhm,
    resolution=snakemake.params.resolution,
    space=snakemake.params.space,
    pipeline=snakemake.params.pipeline,
    smoothed=snakemake.params.smoothed,
)
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
