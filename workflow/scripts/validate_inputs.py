"""Rule validate_inputs: check every input of the study before any heavy job.

A bad input stops the workflow with one message per bad file, on the terminal and in the
log; the report (each file with its SHA-256) is written only when every check passes.
"""

import logging
import sys

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.bids import write_json
from mirrorflow.io.validate import validate_inputs

log = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=log, level=logging.INFO)

inp, p = snakemake.input, snakemake.params
events = list(inp.events)
runs = [{"bold": bold, "events": events[i]} for i, bold in enumerate(inp.bold)]
try:
    report = validate_inputs(
        runs=runs,
        t1w=list(inp.t1w),
        participants=inp.participants,
        columns=p.columns,
        subjects=p.subjects,
        conditions=p.conditions,
        n_jobs=snakemake.threads,
    )
except InputDataError as err:
    # On the terminal too: the user should not have to open the log to see what is wrong.
    for stream in (log, sys.stderr):
        print(f"InputDataError: {err}", file=stream)
    sys.exit(1)
report.update(
    Description="Every input file of the study, checked before any heavy job",
    Subjects=p.subjects,
    ParticipantColumns=p.columns,
    Conditions=p.conditions,
)
write_json(snakemake.output[0], report)
logging.info("%d input files checked", len(report["files"]))
