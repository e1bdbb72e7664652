"""Readers and cheap checks of one run's QC inputs: confounds table, BOLD series, mask.

Each check raises :class:`~mirrorflow.exceptions.InputDataError` with one message that
names the file and the problem. Images are opened header-first; only the mask's data are
read here.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.validate import open_nifti

__all__ = ["DVARS_COLUMN", "FD_COLUMN", "MOTION_COLUMNS", "load_run", "read_confounds"]

#: The six rigid-body motion parameters of fMRIPrep's confounds (mm and radians).
MOTION_COLUMNS = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
#: Framewise displacement (mm), ``n/a`` in the first row.
FD_COLUMN = "framewise_displacement"
#: Standardized DVARS, ``n/a`` in the first row; optional.
DVARS_COLUMN = "std_dvars"


def read_confounds(confounds_file, *, columns=(FD_COLUMN, *MOTION_COLUMNS)) -> pd.DataFrame:
    """Read an fMRIPrep-style confounds table and check its required columns.

    Parameters
    ----------
    confounds_file : :obj:`str` or :class:`~pathlib.Path`
        Tab-separated table, ``n/a`` for missing values, one row per volume.
    columns : sequence of :obj:`str`, optional
        Columns that must be present and numeric; by default framewise displacement and
        the six motion parameters.

    Returns
    -------
    :class:`pandas.DataFrame`
        The whole table (all columns), missing values as NaN.

    Raises
    ------
    InputDataError
        The file is missing, unreadable or empty, lacks a required column, or a required
        column holds text that is not a number.
    """
    path = Path(confounds_file)
    if not path.exists():
        raise InputDataError(f"{path}: file does not exist")
    try:
        table = pd.read_csv(path, sep="\t", na_values="n/a")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputDataError(f"{path}: not a readable tab-separated table ({err})") from err
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(
            f"{path}: missing confound column(s) {missing}; found {list(table.columns)}"
        )
    if table.empty:
        raise InputDataError(f"{path}: the confounds table has no rows")
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = np.flatnonzero((values.isna() & table[column].notna()).to_numpy())
        if bad.size:
            rows = ", ".join(str(i + 1) for i in bad[:5]) + (", ..." if bad.size > 5 else "")
            raise InputDataError(
                f"{path}: column '{column}' has {bad.size} non-numeric value(s) (rows {rows})"
            )
        table[column] = values.astype(float)
    return table


def _load_image(path, *, ndim: int, what: str) -> nib.Nifti1Image:
    """A NIfTI image with ``ndim`` dimensions (header only; the data stay on disk)."""
    img = open_nifti(path)
    if img.ndim != ndim:
        raise InputDataError(f"{path}: expected a {ndim}D {what}, found {img.ndim}D {img.shape}")
    return img


def _check_volumes(table: pd.DataFrame, bold: nib.Nifti1Image, *, confounds_file, bold_file):
    """The confounds table has one row per volume."""
    if bold.shape[3] != len(table):
        raise InputDataError(
            f"{bold_file} has {bold.shape[3]} volumes but its confounds table "
            f"{confounds_file} has {len(table)} rows; they must match"
        )


def _check_mask(mask: nib.Nifti1Image, bold: nib.Nifti1Image, *, mask_file, bold_file):
    """A non-empty mask on the BOLD series' grid; returns it as a boolean array."""
    if mask.shape != bold.shape[:3] or not np.allclose(mask.affine, bold.affine, atol=1e-3):
        raise InputDataError(
            f"{mask_file}: mask grid {mask.shape} does not match the grid {bold.shape[:3]} "
            f"of {bold_file} (shape and affine must agree)"
        )
    try:
        data = np.asanyarray(mask.dataobj) > 0
    except Exception as err:
        raise InputDataError(f"{mask_file}: not a readable NIfTI image ({err})") from err
    if not data.any():
        raise InputDataError(f"{mask_file}: the brain mask is empty")
    return data


def load_run(*, confounds_file, bold_file, mask_file):
    """Read and check the three inputs of one run.

    Parameters
    ----------
    confounds_file, bold_file, mask_file : :obj:`str` or :class:`~pathlib.Path`
        Confounds table (see :func:`read_confounds`), 4D BOLD series and 3D brain mask.

    Returns
    -------
    :obj:`tuple`
        ``(table, bold_img, mask)``: the confounds table, the BOLD image (data not yet
        read) and the mask as a boolean array.

    Raises
    ------
    InputDataError
        As :func:`read_confounds`; or an image is missing, unreadable or of the wrong
        dimension, the BOLD series has not one volume per table row, or the mask is
        empty or not on the BOLD grid.
    """
    table = read_confounds(confounds_file)
    bold = _load_image(bold_file, ndim=4, what="BOLD series")
    mask_img = _load_image(mask_file, ndim=3, what="brain mask")
    _check_volumes(table, bold, confounds_file=confounds_file, bold_file=bold_file)
    mask = _check_mask(mask_img, bold, mask_file=mask_file, bold_file=bold_file)
    return table, bold, mask
