"""Rule preproc_qc: metrics and figures of one preprocessed run."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from pathlib import Path  # noqa: E402

from mirrorflow.io.bids import write_json  # noqa: E402
from mirrorflow.io.templates import template_files  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.qc.metrics import run_metrics  # noqa: E402
from mirrorflow.qc.plots import plot_carpet, plot_motion, plot_registration  # noqa: E402

settle_imports("nilearn.image", "nilearn.plotting")

inp, out, params = snakemake.input, snakemake.output, snakemake.params
title = Path(inp.bold).name.split("_space-")[0]
metrics = run_metrics(
    confounds_file=inp.confounds, bold_file=inp.bold, mask_file=inp.mask,
    fd_spike=params.fd_spike,
)
plot_motion(inp.confounds, out.motion, fd_threshold=params.fd_spike, title=title)
plot_carpet(inp.bold, inp.mask, inp.confounds, out.carpet, title=title)
# The templates on the output grid, written once and shared with the preprocessing jobs.
template = template_files(params.templates_dir, params.resolution)
plot_registration(inp.boldref, template["template"], template["template_mask"],
                  out.registration, title=title)
write_json(out.metrics, {**metrics, "Sources": [inp.bold, inp.mask, inp.confounds]})

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake, documents=[snakemake.output.metrics])
