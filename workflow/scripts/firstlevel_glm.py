"""Rule firstlevel_glm: fit one participant's GLM and write every contrast's maps."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.glm.firstlevel import fit_first_level, write_first_level  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.report.figures import design_figure  # noqa: E402

settle_imports("nilearn.glm.first_level", "nilearn.masking", "nilearn.plotting")

maps, designs, methods, mask = fit_first_level(
    bold_files=snakemake.input.bold,
    events_files=snakemake.input.events,
    confounds_files=snakemake.input.confounds,
    mask_files=snakemake.input.masks,
    conditions=snakemake.params.conditions,
    contrasts=snakemake.params.contrasts,
    confound_columns=snakemake.params.confounds,
    hrf_model=snakemake.params.hrf_model,
    drift_model=snakemake.params.drift_model,
    high_pass=snakemake.params.high_pass,
    noise_model=snakemake.params.noise_model,
    modulation=snakemake.params.modulation,
)
write_first_level(
    maps,
    designs,
    mask,
    map_template=str(Path(snakemake.output.mask).parent / snakemake.params.map_template),
    mask_file=snakemake.output.mask,
    design_file=snakemake.output.design,
    methods=methods,
    sources=list(snakemake.input.bold),
)
design_figure(snakemake.output.design, snakemake.output.design_figure)
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
