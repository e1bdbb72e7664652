"""Rule group_behaviour: correlation of two behavioural scores across participants."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.group.behaviour import correlate  # noqa: E402
from mirrorflow.io.bids import write_json  # noqa: E402
from mirrorflow.io.validate import check_participants  # noqa: E402
from mirrorflow.report.figures import scatter_figure  # noqa: E402

p = snakemake.params
table = check_participants(
    snakemake.input.participants, columns=[p.x, p.y], subjects=p.subjects
)
result = correlate(table, x=p.x, y=p.y, n_boot=p.n_boot, seed=p.seed)
write_json(snakemake.output.correlation, result)
scatter_figure(table, result, snakemake.output.figure)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake, documents=[snakemake.output.correlation])
