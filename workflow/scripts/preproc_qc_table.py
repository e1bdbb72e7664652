"""Checkpoint preproc_qc_table: one QC table for the study, with exclusions."""

import json
import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.qc.metrics import qc_table, write_qc_table  # noqa: E402

records = []
for (sub, ses, run), path in zip(snakemake.params.runs, snakemake.input.metrics, strict=True):
    metrics = json.loads(open(path).read())
    for key in ("Sources", "Provenance"):  # where the metrics came from, not metrics
        metrics.pop(key, None)
    records.append({"sub": sub, **({"ses": ses} if ses else {}), "run": run, **metrics})
table = qc_table(records, max_mean_fd=snakemake.params.max_mean_fd)
write_qc_table(
    table,
    snakemake.output.table,
    max_mean_fd=snakemake.params.max_mean_fd,
    fd_spike=snakemake.params.fd_spike,
)
excluded = table[~table["included"]]
logging.info("%d of %d runs excluded", len(excluded), len(table))
for _, row in excluded.iterrows():
    logging.info("excluded sub-%s run-%s: %s", row["sub"], row["run"], row["reason"])

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
