"""Rule preproc_bold: run the nipype preprocessing workflow of one BOLD run."""

import logging
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
# One ITK thread, set before ITK starts: repeatable ANTs registrations (see _seed_ants).
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

from mirrorflow.preproc.run import run_preproc  # noqa: E402

methods = run_preproc(
    bold_file=snakemake.input.bold,
    t1w_file=snakemake.input.t1w,
    outputs=dict(snakemake.output.items()),
    work_dir=snakemake.params.work_dir,
    fwhm=snakemake.params.fwhm,
    resolution=snakemake.params.resolution,
    realign_loops=snakemake.params.realign_loops,
    t1w_to_template=snakemake.params.t1w_to_template,
    skull_strip=snakemake.params.skull_strip,
    seed=snakemake.params.seed,
    n_procs=snakemake.threads,
)
logging.info(methods)
