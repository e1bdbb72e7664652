"""Rule meta_simulate: seeded coordinate sets for each category, plus the planted truth."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.io.bids import write_json  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.simulate.coordinates import simulate_coordinate_sets  # noqa: E402

settle_imports("nimare.generate")

params = snakemake.params  # noqa: F821
outputs = dict(zip(params.categories, snakemake.output.datasets))  # noqa: F821

datasets, truth = simulate_coordinate_sets(
    categories=dict(params.categories),
    shared_foci=params.shared_foci,
    n_experiments=params.n_experiments,
    sample_size=tuple(params.sample_size),
    n_noise_foci=params.n_noise_foci,
    fwhm=params.fwhm,
    seed=params.seed,
)
for label, path in outputs.items():
    write_json(path, datasets[label])
write_json(snakemake.output.truth, truth)  # noqa: F821
