"""Rule preproc_bold: run the nipype preprocessing workflow of one BOLD run."""

import logging
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
# One ITK thread, set before ITK starts: repeatable ANTs registrations (see _seed_ants).
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.preproc.run import BOLD_FIELDS, run_bold  # noqa: E402

settle_imports("nipype.pipeline.engine", "ants", "nipy", "nilearn.image")

methods = run_bold(
    bold_file=snakemake.input.bold,
    t1w_brain=snakemake.input.t1w_brain,
    xfm=snakemake.input.xfm,
    t1w_mask_std=snakemake.input.t1w_mask_std,
    outputs={key: snakemake.output[key] for key in BOLD_FIELDS},
    work_dir=snakemake.params.work_dir,
    fwhm=snakemake.params.fwhm,
    resolution=snakemake.params.resolution,
    realign_loops=snakemake.params.realign_loops,
    slice_timing=snakemake.params.slice_timing,
    compcor_components=snakemake.params.compcor_components,
    seed=snakemake.params.seed,
    n_procs=snakemake.threads,
)
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
