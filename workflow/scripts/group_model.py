"""Rule group_model: fit one group model (one-sample, paired or regression); z map and design."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.group.maps import group_model  # noqa: E402
from mirrorflow.io.bids import save_float_image, write_sidecar  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402

settle_imports("nilearn.glm.second_level")

z_img, design, column, methods = group_model(
    snakemake.input.maps,
    spec=snakemake.params.spec,
    subjects=snakemake.params.subjects,
    mask_img=snakemake.input.mask,
    participants_file=snakemake.input.participants,
)
left_out = dict(snakemake.params.left_out)
if left_out:  # participants.tsv has n/a for a score the regression reads
    methods += " Left out for want of a score: " + "; ".join(
        f"{sub} ({', '.join(columns)})" for sub, columns in left_out.items()) + "."
save_float_image(z_img, snakemake.output.z)
write_sidecar(
    snakemake.output.z,
    {"Sources": list(snakemake.input.maps), "Description": methods, "TestedColumn": column,
     "Model": snakemake.params.spec, "ParticipantsLeftOut": left_out},
)
if snakemake.params.spec["kind"] != "paired":  # rows are participants
    design = design.set_axis([f"sub-{s}" for s in design.index])
design.rename_axis("map").to_csv(snakemake.output.design, sep="\t")
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
