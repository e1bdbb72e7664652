"""Rule report_runtimes: per-job and per-rule runtimes from the benchmark files."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.io.bids import write_json  # noqa: E402
from mirrorflow.report.figures import runtime_figure  # noqa: E402
from mirrorflow.report.runtimes import runtime_summary, runtime_table  # noqa: E402

out = snakemake.output
jobs = runtime_table(snakemake.input)
summary = runtime_summary(jobs)
jobs.to_csv(out.jobs, sep="\t", index=False, float_format="%.2f")
summary.to_csv(out.rules, sep="\t", index=False, float_format="%.2f")
runtime_figure(summary, out.figure)
columns = {"rule": "Snakemake rule", "s": "wall time (s)", "max_rss": "peak memory (MB)",
           "cpu_time": "CPU time (s)"}
write_json(out.jobs_sidecar, {
    "Description": "Runtime of every job with a benchmark file (Snakemake benchmark:).",
    "Columns": {**columns, "job": "the job's wildcards"}})
write_json(out.rules_sidecar, {
    "Description": "Runtimes per rule: jobs, total, mean and longest wall time, largest "
                   "peak memory.", "Columns": {
        "rule": "Snakemake rule", "jobs": "jobs with a benchmark file",
        "total_s": "wall time of all jobs (s)", "mean_s": "mean wall time (s)",
        "max_s": "longest job (s)", "max_rss_mb": "largest peak memory (MB)"}})
logging.info("%d jobs, %d rules, %.0f s in all", len(jobs), len(summary), jobs["s"].sum())

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
