"""Cheap checks of input files, run before any heavy work.

Each check raises :class:`~mirrorflow.exceptions.InputDataError` with one message that
names the file and the problem.
"""

from __future__ import annotations

import gzip
import json
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import InputDataError

__all__ = [
    "check_complete",
    "validate_inputs",
    "check_bold",
    "check_events",
    "check_participants",
    "check_signal",
    "check_t1w",
    "open_nifti",
    "read_bold_metadata",
    "read_repetition_time",
]


def open_nifti(path) -> nib.Nifti1Image:
    """Open a NIfTI image (its header), or raise :class:`InputDataError` naming the file
    and the problem. :func:`check_complete` finds a truncated file."""
    path = Path(path)
    if not path.exists():
        raise InputDataError(f"{path}: file does not exist")
    try:
        img = nib.load(path)
        img.header.get_data_shape()
    except Exception as err:  # nibabel raises many types for corrupt files
        raise InputDataError(f"{path}: not a readable NIfTI image ({err})") from err
    return img


def _expected_bytes(img) -> int:
    """Bytes of an uncompressed single-file NIfTI: header (to vox_offset) and data."""
    header = img.header
    data = int(np.prod(header.get_data_shape())) * header.get_data_dtype().itemsize
    return int(img.dataobj.offset) + data  # where nibabel reads the data from


def check_complete(path, img) -> None:
    """Raise :class:`InputDataError` if ``path`` does not hold all of ``img``'s data.

    Cheap for any size: an uncompressed file must be at least header plus data long; a
    gzip file ends with the length of its content (ISIZE, modulo 2**32), which a truncated
    file lacks. Where that trailer disagrees (a file of several gzip members, or damage),
    the whole file is decompressed to decide.
    """
    path = Path(path)
    expected = _expected_bytes(img)
    if path.suffix != ".gz":
        if path.stat().st_size < expected:
            raise InputDataError(
                f"{path}: truncated NIfTI image ({path.stat().st_size} bytes, header and "
                f"data need {expected})"
            )
        return
    with open(path, "rb") as handle:
        handle.seek(-4, 2)
        isize = int.from_bytes(handle.read(4), "little")
    if isize == expected % 2**32:
        return
    try:
        total = 0
        with gzip.open(path, "rb") as stream:  # checks each member's CRC at its end
            while chunk := stream.read(1 << 24):
                total += len(chunk)
    except (OSError, EOFError, zlib.error) as err:
        raise InputDataError(f"{path}: not a readable NIfTI image, truncated or corrupt "
                             f"({err})") from err
    if total < expected:
        raise InputDataError(
            f"{path}: truncated NIfTI image ({total} bytes decompressed, header and data "
            f"need {expected})"
        )


def _load_image(path) -> nib.Nifti1Image:
    img = open_nifti(path)
    check_complete(path, img)
    return img


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputDataError(f"{path}: invalid JSON ({err})") from err
    if not isinstance(data, dict):
        raise InputDataError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def read_bold_metadata(bold_file) -> dict:
    """Metadata of a BOLD file by the BIDS inheritance principle: its sidecars
    (:func:`mirrorflow.io.layout.bold_sidecars`) merged from the dataset root down, the
    deepest and, within a folder, the most specific (most entities) winning."""
    from mirrorflow.io.layout import bold_sidecars

    metadata = {}
    for sidecar in bold_sidecars(bold_file):
        metadata.update(_read_json(Path(sidecar)))
    return metadata


def read_repetition_time(bold_file) -> float:
    """RepetitionTime from the JSON sidecars (BIDS inheritance), else from the header."""
    tr = read_bold_metadata(bold_file).get("RepetitionTime")
    if tr is not None:
        try:
            return float(tr)
        except (TypeError, ValueError) as err:
            raise InputDataError(f"{bold_file}: RepetitionTime {tr!r} is not a number") from err
    zooms = nib.load(bold_file).header.get_zooms()
    if len(zooms) < 4 or zooms[3] <= 0:
        raise InputDataError(f"{bold_file}: no RepetitionTime in the sidecar nor the header")
    return float(zooms[3])


def check_bold(bold_file, *, min_volumes: int = 10) -> tuple[nib.Nifti1Image, float]:
    """A readable 4D series with enough volumes and a TR that agrees with its sidecar."""
    img = _load_image(bold_file)
    if img.ndim != 4:
        raise InputDataError(f"{bold_file}: expected a 4D BOLD series, found {img.ndim}D {img.shape}")
    if img.shape[3] < min_volumes:
        raise InputDataError(
            f"{bold_file}: only {img.shape[3]} volumes; at least {min_volumes} are needed"
        )
    tr = read_repetition_time(bold_file)
    header_tr = float(img.header.get_zooms()[3])
    if header_tr > 0 and not np.isclose(tr, header_tr, rtol=0.01):
        raise InputDataError(
            f"{bold_file}: RepetitionTime {tr} s in the sidecar disagrees with {header_tr} s "
            "in the NIfTI header"
        )
    return img, tr


#: Bytes of a BOLD series decoded at a time by :func:`check_signal` (whole volumes).
CHUNK_BYTES = 1 << 26


def _volumes(img):
    """The image's data as (first volume, 4D float64 block) in runs of whole volumes of
    about CHUNK_BYTES, so that memory stays bounded for any length (a gzip file is read
    once, forwards); a 3D image is one block of one volume."""
    if img.ndim == 3:
        yield 0, np.asarray(img.dataobj, dtype=np.float64)[..., None]
        return
    step = max(1, CHUNK_BYTES // (int(np.prod(img.shape[:3])) * 8))
    for start in range(0, img.shape[3], step):
        yield start, np.asarray(img.dataobj[..., start:start + step], dtype=np.float64)


def check_signal(path, img, *, finite: bool = True) -> None:
    """Raise :class:`InputDataError` for an image a pipeline cannot use: a value that is not
    finite (with ``finite``; another pipeline's normalised series may hold NaN outside its
    field of view, and its import masks them), an image whose values are all zero or all
    equal, or a 4D series constant over time in half or more of the brain (the voxels
    whose mean is at least a fifth of the 98th percentile of the positive means).

    Reads the data once, a run of volumes at a time: about as long as decompressing it.
    """
    low = high = None
    total, count, non_finite, first_bad = 0.0, 0, 0, None
    for start, data in _volumes(img):
        good = np.isfinite(data)
        if not good.all():
            non_finite += int(good.size - good.sum())
            if first_bad is None:
                first_bad = start + int(np.flatnonzero(~good.all(axis=(0, 1, 2)))[0])
            data = np.where(good, data, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a voxel never finite
            block_low, block_high = np.nanmin(data, axis=3), np.nanmax(data, axis=3)
        low = block_low if low is None else np.fmin(low, block_low)
        high = block_high if high is None else np.fmax(high, block_high)
        total = total + np.nansum(data, axis=3)
        count = count + good.sum(axis=3)
    if non_finite and finite:
        where = f" (the first in volume {first_bad + 1})" if img.ndim == 4 else ""
        raise InputDataError(
            f"{path}: {non_finite} value(s) are NaN or infinite{where}; a scanner's images "
            "hold finite numbers: reconvert the series, or set those voxels to 0"
        )
    seen = count > 0
    if not seen.any():
        raise InputDataError(f"{path}: no value is finite: no signal")
    if not (np.any(low[seen] != 0) or np.any(high[seen] != 0)):
        raise InputDataError(f"{path}: every value is zero: no signal")
    if low[seen].min() == high[seen].max():
        raise InputDataError(f"{path}: every value is {low[seen].min():g}: no signal")
    if img.ndim == 3:
        return
    mean = np.where(seen, total / np.maximum(count, 1), 0.0)
    positive = mean[mean > 0]
    brain = mean >= 0.2 * np.percentile(positive, 98) if positive.size else seen
    constant = 1.0 - (high > low)[brain].mean()
    if constant >= 0.5:
        raise InputDataError(
            f"{path}: {100 * constant:.0f}% of its {int(brain.sum())} brain voxels are "
            "constant over time: no BOLD signal"
        )


def check_t1w(t1w_file) -> nib.Nifti1Image:
    """A readable 3D anatomical image."""
    img = _load_image(t1w_file)
    if img.ndim != 3:
        raise InputDataError(f"{t1w_file}: expected a 3D T1w image, found {img.ndim}D {img.shape}")
    return img


def check_events(events_file, *, conditions, run_duration: float | None = None,
                 modulation: bool = False, required=()) -> pd.DataFrame:
    """An events table with onset, duration and trial_type, known conditions, onsets in range.

    Every condition in ``required`` (those the contrasts use) must have an event: nilearn
    computes each contrast in every run of a model, and a run without one of its
    conditions has no column for it.

    Durations may not be negative, and no event may repeat another's trial type, onset and
    duration (nilearn would add the two into one event of twice the amplitude). nilearn
    reads a ``modulation`` column as each event's amplitude: with ``modulation`` the
    column is required, numeric and finite; without it, the column is an error.
    """
    events_file = Path(events_file)
    if not events_file.exists():
        raise InputDataError(f"{events_file}: file does not exist")
    table = pd.read_csv(events_file, sep="\t", na_values="n/a")
    missing = {"onset", "duration", "trial_type"} - set(table.columns)
    if missing:
        raise InputDataError(
            f"{events_file}: missing column(s) {sorted(missing)}; found {list(table.columns)}"
        )
    for column in ("onset", "duration"):
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero(values.isna().to_numpy())
        if bad.size:
            raise InputDataError(
                f"{events_file}: column '{column}' has non-numeric or missing values "
                f"(rows {_rows(bad)})"
            )
        table[column] = values
    if (table["onset"] < 0).any():
        rows = np.flatnonzero(table["onset"].to_numpy() < 0) + 1
        raise InputDataError(f"{events_file}: negative onsets (rows {rows.tolist()})")
    if (table["duration"] < 0).any():
        rows = np.flatnonzero(table["duration"].to_numpy() < 0) + 1
        raise InputDataError(f"{events_file}: negative durations (rows {rows.tolist()})")
    if run_duration is not None and (table["onset"] >= run_duration).any():
        rows = np.flatnonzero(table["onset"].to_numpy() >= run_duration) + 1
        raise InputDataError(
            f"{events_file}: onsets at or beyond the end of the run ({run_duration:g} s) "
            f"(rows {rows.tolist()})"
        )
    missing = np.flatnonzero(table["trial_type"].isna().to_numpy())
    if missing.size:
        raise InputDataError(
            f"{events_file}: column 'trial_type' has missing values (rows {_rows(missing)})"
        )
    unknown = sorted(set(table["trial_type"].astype(str)) - set(conditions))
    if unknown:
        raise InputDataError(
            f"{events_file}: unknown trial types {unknown}; the configured conditions are "
            f"{sorted(conditions)}"
        )
    absent = sorted(set(required) - set(table["trial_type"].astype(str)))
    if absent:
        raise InputDataError(
            f"{events_file}: no events of condition(s) {absent}, which the contrasts "
            "(firstlevel.contrasts) use; nilearn computes each contrast in every run of a "
            "model, so each run needs an event of each condition they use (or leave the run "
            "out with study.runs)"
        )
    keys = ["trial_type", "onset", "duration"]
    repeated = table.duplicated(keys, keep=False).to_numpy()
    if repeated.any():
        raise InputDataError(
            f"{events_file}: rows {(np.flatnonzero(repeated) + 1).tolist()} repeat an event "
            "(the same trial_type, onset and duration); nilearn would add them into one "
            "event of the summed amplitude. Keep one row per event"
        )
    _check_modulation(events_file, table, modulation)
    return table


def _rows(indices) -> str:
    """The first five of a table's row ``indices`` (from 0) as 1-based row numbers."""
    return ", ".join(str(i + 1) for i in indices[:5])


def _check_modulation(events_file, table: pd.DataFrame, modulation: bool) -> None:
    if not modulation:
        if "modulation" in table.columns:
            raise InputDataError(
                f"{events_file}: column 'modulation' would set each event's amplitude "
                "(nilearn reads it so); set firstlevel.modulation: true to use it, or rename "
                "or remove the column"
            )
        return
    if "modulation" not in table.columns:
        raise InputDataError(
            f"{events_file}: firstlevel.modulation is true but the file has no 'modulation' "
            f"column; found {list(table.columns)}"
        )
    values = pd.to_numeric(table["modulation"], errors="coerce").to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InputDataError(
            f"{events_file}: column 'modulation' has non-numeric, missing or infinite values "
            f"(rows {_rows(bad)})"
        )
    table["modulation"] = values


def check_participants(participants_file, *, columns, subjects=None,
                       missing: bool = False) -> pd.DataFrame:
    """participants.tsv with unique ids and numeric, complete values in ``columns``.

    Returns the table indexed by ``participant_id``; with ``subjects`` (labels without
    ``sub-``), only their rows, in that order, each of which must exist. With ``missing``,
    a score may be missing (``n/a`` or empty: NaN in the table), but not anything else
    that is not a number.
    """
    participants_file = Path(participants_file)
    if not participants_file.exists():
        raise InputDataError(f"{participants_file}: file does not exist")
    table = pd.read_csv(participants_file, sep="\t", dtype={"participant_id": str}, na_values="n/a")
    needed = ["participant_id", *columns]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise InputDataError(
            f"{participants_file}: missing column(s) {absent}; found {list(table.columns)}"
        )
    duplicated = table["participant_id"][table["participant_id"].duplicated()].tolist()
    if duplicated:
        raise InputDataError(f"{participants_file}: duplicate participant ids {duplicated}")
    if subjects is not None:
        table = table[table["participant_id"].isin([f"sub-{s}" for s in subjects])]
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = values.isna()
        if missing:
            bad &= table[column].notna()  # n/a and empty cells are read as NaN
        if bad.any():
            raise InputDataError(
                f"{participants_file}: column '{column}' has "
                + ("non-numeric values (n/a marks a missing score)" if missing
                   else "missing or non-numeric values")
                + f" for {table['participant_id'][bad].tolist()}"
            )
        table[column] = values
    table = table.set_index("participant_id")
    if subjects is None:
        return table
    labels = [f"sub-{s}" for s in subjects]
    absent = [label for label in labels if label not in table.index]
    if absent:
        raise InputDataError(f"{participants_file}: no row for {absent}")
    return table.loc[labels]


def _check_run(run: dict, conditions, *, modulation: bool, raw: bool, required) -> list[dict]:
    img, tr = check_bold(run["bold"])
    entry = {"path": str(run["bold"]), "shape": list(img.shape), "RepetitionTime": tr}
    events = []
    if run.get("events"):
        check_events(run["events"], conditions=conditions, run_duration=img.shape[3] * tr,
                     modulation=modulation, required=required)
        events = [{"path": str(run["events"])}]
    check_signal(run["bold"], img, finite=raw)
    return [entry, *events]


def _check_anat(path) -> list[dict]:
    img = check_t1w(path)
    check_signal(path, img)
    return [{"path": str(path), "shape": list(img.shape)}]


def validate_inputs(*, runs, t1w=(), participants=None, columns=(), subjects=None,
                    conditions=(), modulation: bool = False, required=(), raw: bool = True,
                    n_jobs: int = 1) -> dict:
    """Check every input of the study before any heavy job; return the files checked.

    ``runs``: dicts with ``bold`` (a 4D series, complete: see :func:`check_complete`,
    with a TR that agrees with the header) and optionally ``events`` (known trial types,
    onsets within the run, whose length is volumes x TR); ``t1w``: 3D images;
    ``participants``: participants.tsv, whose ``columns`` must be numeric and complete for
    ``subjects`` (labels), with unique ids; ``modulation``, ``required``: see
    :func:`check_events`. The images' data are read once for :func:`check_signal` (NaN and
    infinite values refused in ``raw`` series, which go into registration; in imported
    series, which may hold NaN outside their field of view, only series without signal).
    Headers, tables and gzip trailers are read first; ``n_jobs`` threads. Every problem is
    reported: one :class:`InputDataError` with a line per bad file, each naming it and the
    problem.
    """
    problems, files = [], []

    def guarded(check, *args):
        try:
            return check(*args)
        except InputDataError as err:
            problems.append(str(err))
            return []

    if participants is not None:
        guarded(lambda: check_participants(participants, columns=list(columns),
                                           subjects=subjects))
        if Path(participants).exists():
            files.append({"path": str(participants)})
    with ThreadPoolExecutor(max(1, n_jobs)) as pool:
        anat = pool.map(lambda path: guarded(_check_anat, path), t1w)
        func = pool.map(lambda run: guarded(lambda: _check_run(
            run, conditions, modulation=modulation, raw=raw, required=required)), runs)
        for entries in [*anat, *func]:
            files.extend(entries)
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in sorted(problems))
        raise InputDataError(f"{len(problems)} bad input file(s):\n{listed}")
    return {"files": files}
