"""Per-run quality-control metrics and the study's QC table with run exclusions.

Motion comes from the fMRIPrep-style confounds table of a run (framewise
displacement, standardized DVARS), signal quality from the unsmoothed BOLD series
inside its brain mask (temporal signal-to-noise ratio). :func:`qc_table` gathers
the runs' metrics and excludes runs by mean framewise displacement.
"""

from __future__ import annotations

import logging
import math
import os
import re
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.qc.inputs import DVARS_COLUMN, FD_COLUMN, load_run

__all__ = [
    "METRICS",
    "included_runs",
    "qc_methods",
    "qc_table",
    "read_included_runs",
    "run_metrics",
    "write_qc_table",
]

LOGGER = logging.getLogger(__name__)

#: Metrics of :func:`run_metrics`, in order, with their QC-table description and units.
METRICS = {
    "n_volumes": ("Number of volumes of the BOLD series", None),
    "mean_fd": ("Mean framewise displacement (Power et al., 2012) over the run", "mm"),
    "max_fd": ("Maximum framewise displacement over the run", "mm"),
    "n_fd_above": ("Number of volumes with framewise displacement above the threshold", None),
    "mean_std_dvars": ("Mean standardized DVARS over the run (n/a if the table has none)", None),
    "median_tsnr": (
        "Median over the brain mask of the voxel-wise temporal SNR (temporal mean divided by "
        "temporal standard deviation, ddof 0) of the unsmoothed BOLD series",
        None,
    ),
    "mask_voxels": ("Number of voxels in the run's brain mask", None),
}

_ID_COLUMNS = ("sub", "ses", "run")


def _check_threshold(value, *, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{what} must be a number of mm, got {value!r}") from err
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{what} must be a positive number of mm, got {value}")
    return value


# ------------------------------------------------------------------ metrics of one run
def _tsnr(bold: nib.Nifti1Image, mask: np.ndarray, *, bold_file) -> float:
    """Median voxel-wise tSNR inside ``mask``, reading only the mask's bounding box."""
    box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
    try:
        data = np.asarray(bold.dataobj[(*box, slice(None))], dtype=np.float32)
    except Exception as err:
        raise InputDataError(f"{bold_file}: cannot read the BOLD data ({err})") from err
    series = data[mask[box]]  # (voxels, time)
    del data
    mean = series.mean(axis=1, dtype=np.float64)
    std = series.std(axis=1, dtype=np.float64)
    valid = np.isfinite(mean) & np.isfinite(std) & (std > 0)
    if not valid.all():
        LOGGER.warning(
            "%s: %d of %d mask voxels are constant or not finite over time; left out of tSNR",
            bold_file, int((~valid).sum()), valid.size,
        )
    if not valid.any():
        return math.nan
    return float(np.median(mean[valid] / std[valid]))


def _finite(values: pd.Series) -> np.ndarray:
    values = values.to_numpy(dtype=float)
    return values[np.isfinite(values)]


def run_metrics(*, confounds_file, bold_file, mask_file, fd_spike: float = 0.5) -> dict:
    """Motion and signal-quality metrics of one preprocessed BOLD run.

    Parameters
    ----------
    confounds_file : :obj:`str` or :class:`~pathlib.Path`
        fMRIPrep-style confounds table of the run (needs ``framewise_displacement`` and
        the six motion parameters; ``std_dvars`` is used when present).
    bold_file : :obj:`str` or :class:`~pathlib.Path`
        4D unsmoothed BOLD series, one volume per table row.
    mask_file : :obj:`str` or :class:`~pathlib.Path`
        3D brain mask on the BOLD grid (non-zero voxels are inside).
    fd_spike : :obj:`float`, default=0.5
        Framewise displacement (mm) above which a volume counts in ``n_fd_above``
        (strictly above).

    Returns
    -------
    :obj:`dict`
        Plain Python numbers, in the order of :data:`METRICS`: ``n_volumes``, ``mean_fd``,
        ``max_fd``, ``n_fd_above``, ``mean_std_dvars``, ``median_tsnr``, ``mask_voxels``.
        A metric that cannot be computed (no finite FD value, no ``std_dvars`` column,
        no voxel with temporal variance) is ``nan``.

    Raises
    ------
    InputDataError
        A file is missing or unreadable, the table lacks a required column, the series
        is not 4D, the number of volumes differs from the number of table rows, or the
        mask is empty or not on the BOLD grid.
    ConfigError
        ``fd_spike`` is not a positive number.

    Notes
    -----
    FD and standardized DVARS are undefined for the first volume (``n/a``); means and
    maxima are over the finite values. tSNR uses the population standard deviation
    (ddof 0), as nipype's ``TSNR``, without detrending.
    """
    fd_spike = _check_threshold(fd_spike, what="fd_spike")
    table, bold, mask = load_run(
        confounds_file=confounds_file, bold_file=bold_file, mask_file=mask_file
    )
    fd = _finite(table[FD_COLUMN])
    if DVARS_COLUMN in table.columns:
        dvars = _finite(pd.to_numeric(table[DVARS_COLUMN], errors="coerce"))
    else:
        LOGGER.warning("%s: no '%s' column; mean_std_dvars is n/a", confounds_file, DVARS_COLUMN)
        dvars = np.array([])
    metrics = {
        "n_volumes": int(bold.shape[3]),
        "mean_fd": float(fd.mean()) if fd.size else math.nan,
        "max_fd": float(fd.max()) if fd.size else math.nan,
        "n_fd_above": int((fd > fd_spike).sum()),
        "mean_std_dvars": float(dvars.mean()) if dvars.size else math.nan,
        "median_tsnr": _tsnr(bold, mask, bold_file=bold_file),
        "mask_voxels": int(mask.sum()),
    }
    LOGGER.info("QC metrics of %s: %s", bold_file, metrics)
    return metrics


# ------------------------------------------------------------------ the study's table
def _natural_key(text: str):
    """Sort key that orders ``run-2`` before ``run-10``."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(text)) if part]


def _format_pair(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` with enough decimals (at least 2) to tell them apart."""
    for decimals in range(2, 7):
        pair = (f"{value:.{decimals}f}", f"{limit:.{decimals}f}")
        if pair[0] != pair[1]:
            return pair
    return f"{value:g}", f"{limit:g}"


def _exclusion(mean_fd, max_mean_fd: float) -> str:
    """Reason to exclude a run, or ``""``."""
    if mean_fd is None or not math.isfinite(float(mean_fd)):
        return "mean FD not available (n/a)"
    if float(mean_fd) > max_mean_fd:
        value, limit = _format_pair(float(mean_fd), max_mean_fd)
        return f"mean FD {value} mm > {limit} mm"
    return ""


def qc_table(records, *, max_mean_fd: float | None) -> pd.DataFrame:
    """One row per run with its metrics and whether it is included.

    Parameters
    ----------
    records : sequence of :obj:`dict`
        One dict per run with ``"sub"`` and ``"run"`` labels (strings, and ``"ses"`` in
        every record or in none) plus the metrics of :func:`run_metrics`; ``"mean_fd"``
        is required, other keys become columns after the known metrics.
    max_mean_fd : :obj:`float` or None
        Runs whose mean framewise displacement (mm) is above this are excluded; a run
        exactly at the threshold is included, a run without a finite mean FD is excluded.
        None: the runs have no motion estimates (series another pipeline preprocessed,
        without a confounds table), and none is excluded.

    Returns
    -------
    :class:`pandas.DataFrame`
        Columns ``sub``, [``ses``,] ``run``, the metrics, ``included`` (bool) and
        ``reason`` (``""`` for included runs, else e.g. ``"mean FD 0.62 mm > 0.50 mm"``),
        sorted by subject, session and run (numbers in labels sort by value).

    Raises
    ------
    ConfigError
        ``max_mean_fd`` is not a positive number.
    ValueError
        A record lacks ``sub``, ``run`` or ``mean_fd``, only some records have ``ses``, or
        two records have the same labels.
    """
    if max_mean_fd is not None:
        max_mean_fd = _check_threshold(max_mean_fd, what="max_mean_fd")
    records = [dict(r) for r in records]
    with_ses = sum("ses" in r for r in records)
    if with_ses not in (0, len(records)):
        raise ValueError(f"'ses' is in {with_ses} of {len(records)} QC records: all or none")
    ids = ["sub", "ses", "run"] if with_ses else ["sub", "run"]
    metrics: list[str] = []
    for index, record in enumerate(records):
        missing = [k for k in (*ids, "mean_fd") if k not in record]
        if missing:
            raise ValueError(f"QC record {index} lacks {missing}: {record}")
        for key in ids:
            record[key] = str(record[key])
        metrics += [k for k in record if k not in _ID_COLUMNS and k not in metrics]
    # Known metrics in their order (JSON round trips may sort keys), then any others.
    metrics = [k for k in METRICS if k in metrics] + [
        k for k in metrics if k not in METRICS and k not in ("included", "reason")
    ]
    keys = [tuple(r[k] for k in ids) for r in records]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"QC records repeat the run(s) {duplicates} ({', '.join(ids)})")
    records.sort(key=lambda r: [_natural_key(r[k]) for k in ids])
    rows = []
    for record in records:
        reason = "" if max_mean_fd is None else _exclusion(record["mean_fd"], max_mean_fd)
        row = {k: record[k] for k in ids}
        row.update({k: record.get(k, math.nan) for k in metrics})
        row.update(included=not reason, reason=reason)
        rows.append(row)
    columns = [*ids, *(metrics or METRICS), "included", "reason"]
    table = pd.DataFrame(rows, columns=columns)
    table["mean_fd"] = pd.to_numeric(table["mean_fd"], errors="coerce").astype(float)
    table["included"] = table["included"].astype(bool)
    n_out = int((~table["included"]).sum())
    LOGGER.info("QC table: %d runs, %d excluded (max mean FD %s mm)", len(table), n_out,
                max_mean_fd)
    return table


def included_runs(table: pd.DataFrame) -> dict[str, list[str]]:
    """Included runs of each subject, from a :func:`qc_table` table.

    Parameters
    ----------
    table : :class:`pandas.DataFrame`
        QC table with ``sub``, ``run`` and ``included`` columns.

    Returns
    -------
    :obj:`dict` of :obj:`str` to :obj:`list` of :obj:`str`
        ``{sub: [run, ...]}`` in table order, from the ``run`` column only. Subjects with
        no included run are absent.

    Notes
    -----
    The ``ses`` column is ignored: with sessions, either pass run labels that already
    combine session and run (for example ``"pre:01"``) or use :func:`read_included_runs`,
    which returns ``(ses, run)`` pairs.
    """
    kept = table[table["included"].astype(bool)]
    result: dict[str, list[str]] = {}
    for sub, run in zip(kept["sub"], kept["run"], strict=True):
        result.setdefault(str(sub), []).append(str(run))
    return result


def read_included_runs(table_file) -> dict[str, list[tuple[str | None, str]]]:
    """Included ``(ses, run)`` pairs of each subject, read from a written QC table.

    Parameters
    ----------
    table_file : :obj:`str` or :class:`~pathlib.Path`
        TSV written by :func:`write_qc_table`.

    Returns
    -------
    :obj:`dict`
        ``{sub: [(ses, run), ...]}`` in table order; ``ses`` is ``None`` when the table
        has no ``ses`` column. Subjects with no included run are absent. Labels are read
        as text, so ``"01"`` stays ``"01"``.

    Raises
    ------
    InputDataError
        The file is missing or unreadable, lacks ``sub``, ``run`` or ``included``, or
        ``included`` holds something other than True/False.
    """
    path = Path(table_file)
    if not path.exists():
        raise InputDataError(f"{path}: file does not exist")
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputDataError(f"{path}: not a readable tab-separated table ({err})") from err
    missing = [c for c in ("sub", "run", "included") if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")
    flags = table["included"].str.strip().str.lower().map({"true": True, "false": False})
    if flags.isna().any():
        bad = sorted(set(table.loc[flags.isna(), "included"]))
        raise InputDataError(f"{path}: column 'included' must be True or False, found {bad}")
    sessions = table["ses"] if "ses" in table.columns else [None] * len(table)
    result: dict[str, list[tuple[str | None, str]]] = {}
    for sub, ses, run, keep in zip(table["sub"], sessions, table["run"], flags, strict=True):
        if keep:
            result.setdefault(sub, []).append((ses, run))
    return result


def qc_methods(*, max_mean_fd: float | None, fd_spike: float | None = None) -> str:
    """Methods sentence of the run quality control (``max_mean_fd`` None: runs without
    motion estimates, none excluded).
    """
    from mirrorflow import __version__

    if max_mean_fd is None:
        return (
            f"Run quality control (mirrorflow {__version__}) used the median over the brain "
            "mask of the voxel-wise temporal SNR of the unsmoothed BOLD series; the series "
            "came without motion estimates, so no run was excluded for motion."
        )
    spikes = (
        f", volumes with FD above {fd_spike:g} mm were counted" if fd_spike is not None else ""
    )
    return (
        f"Run quality control (mirrorflow {__version__}) used the framewise displacement (FD; "
        "Power et al., 2012) and standardized DVARS of each run's confounds table and the "
        "median over the brain mask of the voxel-wise temporal SNR of the unsmoothed BOLD "
        f"series{spikes}; runs with a mean FD above {max_mean_fd:g} mm, or without one, were "
        "excluded."
    )


def _column_sidecar(table: pd.DataFrame, *, max_mean_fd: float, fd_spike) -> dict:
    described = {
        "sub": {"Description": "Subject label (without 'sub-')"},
        "ses": {"Description": "Session label (without 'ses-')"},
        "run": {"Description": "Run label (without 'run-')"},
        "included": {
            "Description": "Whether the run is kept: "
            + (f"mean FD at most {max_mean_fd:g} mm" if max_mean_fd is not None else
               "always (no motion estimates)"),
            "Levels": {"True": "included", "False": "excluded"},
        },
        "reason": {"Description": "Why the run is excluded (empty when included)"},
    }
    for name, (description, units) in METRICS.items():
        described[name] = {"Description": description}
        if units:
            described[name]["Units"] = units
    if fd_spike is not None:
        described["n_fd_above"]["Description"] += f" ({fd_spike:g} mm)"
    return {c: described.get(c, {"Description": f"QC metric {c}"}) for c in table.columns}


def write_qc_table(table: pd.DataFrame, path, *, max_mean_fd: float | None,
                   fd_spike: float | None = None) -> Path:
    """Write a :func:`qc_table` table as TSV with a JSON sidecar.

    Parameters
    ----------
    table : :class:`pandas.DataFrame`
        The QC table.
    path : :obj:`str` or :class:`~pathlib.Path`
        Output ``.tsv``; the sidecar goes beside it (``.json``).
    max_mean_fd : :obj:`float` or None
        The exclusion threshold used for ``table`` (mm), stated in the sidecar (None: no
        motion estimates, as :func:`qc_table`).
    fd_spike : :obj:`float`, optional
        The FD spike threshold used for ``n_fd_above`` (mm), stated when given.

    Returns
    -------
    :class:`~pathlib.Path`
        ``path``.

    Notes
    -----
    Missing values are written ``n/a`` and floats with 4 significant digits. Both files
    are written under a temporary name and renamed, so an interrupted job never leaves
    a complete-looking file.
    """
    from mirrorflow.io.bids import temporary_path, write_sidecar

    if max_mean_fd is not None:
        max_mean_fd = _check_threshold(max_mean_fd, what="max_mean_fd")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sidecar = {
        **_column_sidecar(table, max_mean_fd=max_mean_fd, fd_spike=fd_spike),
        "Description": qc_methods(max_mean_fd=max_mean_fd, fd_spike=fd_spike),
        "MaxMeanFD": max_mean_fd,
        "MaxMeanFDUnits": "mm",
    }
    if fd_spike is not None:
        sidecar["FDSpikeThreshold"] = float(fd_spike)
    write_sidecar(path, sidecar)
    tmp = temporary_path(path)
    try:
        table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.4g")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    LOGGER.info("wrote %s (%d runs)", path, len(table))
    return path
