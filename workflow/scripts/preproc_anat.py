"""Rule preproc_anat: run the nipype anatomical workflow of one subject."""

import logging
import os
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)
# One ITK thread, set before ITK starts: repeatable ANTs registrations (see _seed_ants).
os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "1"

from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.preproc.run import ANAT_FIELDS, run_anat  # noqa: E402

settle_imports("nipype.pipeline.engine", "ants", "nilearn.image")

methods = run_anat(
    t1w_file=snakemake.input.t1w,
    outputs={key: snakemake.output[key] for key in ANAT_FIELDS},
    work_dir=snakemake.params.work_dir,
    resolution=snakemake.params.resolution,
    skull_strip=snakemake.params.skull_strip,
    t1w_to_template=snakemake.params.t1w_to_template,
    seed=snakemake.params.seed,
    n_procs=snakemake.threads,
)
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
