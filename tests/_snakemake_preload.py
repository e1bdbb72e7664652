"""Imported once by the forkserver of :mod:`tests.snakemake_fork` (never by the tests):
Snakemake's command line with every plugin collected, and the modules the workflow's
rules/common.smk imports."""

from snakemake import cli

cli.get_argument_parser()  # collects the executor, storage, report, logger, scheduler plugins

import mirrorflow.io.bids  # noqa: E402,F401
import mirrorflow.io.config  # noqa: E402,F401
import mirrorflow.io.layout  # noqa: E402,F401
import mirrorflow.io.templates  # noqa: E402,F401
import mirrorflow.meta.inputs  # noqa: E402,F401
import mirrorflow.qc.metrics  # noqa: E402,F401
