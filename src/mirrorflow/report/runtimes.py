"""Per-rule runtimes of a run, read from Snakemake's ``benchmark:`` files.

Each benchmark file is ``<output_dir>/logs/<rule>/<job>.bench.tsv``: one row with the
job's wall time (``s``), peak memory (``max_rss``, MB) and CPU time.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["runtime_summary", "runtime_table"]

_COLUMNS = ["s", "max_rss", "cpu_time"]


def runtime_table(bench_files) -> pd.DataFrame:
    """One row per job: ``rule``, ``job``, wall seconds ``s``, ``max_rss`` (MB) and
    ``cpu_time`` (s)."""
    rows = []
    for path in map(Path, bench_files):
        bench = pd.read_csv(path, sep="\t")
        missing = [c for c in _COLUMNS if c not in bench.columns]
        if missing or bench.empty:
            raise ValueError(f"{path}: not a Snakemake benchmark file (missing {missing})")
        row = pd.to_numeric(bench[_COLUMNS].iloc[-1], errors="coerce").to_dict()
        rows.append({"rule": path.parent.name, "job": path.name[: -len(".bench.tsv")], **row})
    return pd.DataFrame(rows, columns=["rule", "job", *_COLUMNS])


def runtime_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per rule: jobs, total, mean and longest wall time (s), largest peak memory (MB)."""
    grouped = table.groupby("rule")
    summary = pd.DataFrame({
        "jobs": grouped["s"].count(),
        "total_s": grouped["s"].sum(),
        "mean_s": grouped["s"].mean(),
        "max_s": grouped["s"].max(),
        "max_rss_mb": grouped["max_rss"].max(),
    })
    return summary.sort_values("total_s", ascending=False).reset_index()
