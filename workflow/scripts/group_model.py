"""Rule group_model: one-sample map or regression on a covariate, and its threshold."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.group.maps import group_model  # noqa: E402
from mirrorflow.io.bids import write_sidecar  # noqa: E402

z_img, thresholded, z_threshold, design, methods = group_model(
    snakemake.input.maps,
    subjects=snakemake.params.subjects,
    mask_img=snakemake.input.mask,
    threshold=snakemake.params.threshold,
    participants_file=snakemake.input.participants,
    covariate=snakemake.params.covariate,
)
sidecar = {"Sources": list(snakemake.input.maps), "Description": methods}
z_img.to_filename(snakemake.output.z)
write_sidecar(snakemake.output.z, sidecar)
thresholded.to_filename(snakemake.output.thresholded)
write_sidecar(
    snakemake.output.thresholded,
    {**sidecar, "Threshold": z_threshold, **snakemake.params.threshold},
)
design.to_csv(snakemake.output.design, sep="\t")
logging.info(methods)
