"""Rule simulate_study: write the seeded simulated study and its ground truth."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.simulate.study import SimulationParams, simulate_study  # noqa: E402

params = SimulationParams(**snakemake.params.simulation, task=snakemake.params.task)
result = simulate_study(
    Path(snakemake.output.description).parent,
    snakemake.output.truth,
    params,
    fmriprep_dir=snakemake.params.fmriprep_dir,
)
logging.info(result["methods"])
