"""fMRIPrep derivatives as input: check a run's files and bring them to the workflow's grid.

fMRIPrep's ``desc-preproc_bold`` series are already motion-corrected and normalised; what
the first-level stage still needs is the workflow's template grid (resampled once, only
when fMRIPrep's grid differs), smoothing, and the confounds table, whose column names
(``trans_x``, ``framewise_displacement``, ``a_comp_cor_00``...) the workflow shares.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.bids import write_sidecar
from mirrorflow.io.validate import check_bold

__all__ = ["IMPORT_FIELDS", "REQUIRED_CONFOUNDS", "check_fmriprep_run", "import_fmriprep_run"]

LOGGER = logging.getLogger(__name__)

#: Outputs of :func:`import_fmriprep_run` (the same keys as rule preproc_bold's).
IMPORT_FIELDS = ("bold", "bold_unsmoothed", "mask", "confounds", "boldref")

#: Confound columns every fMRIPrep (>= 1.2) table has and the QC stage reads.
REQUIRED_CONFOUNDS = (
    "trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z", "framewise_displacement",
)


def _check_mask(mask_file, bold_img, bold_file) -> nib.Nifti1Image:
    try:
        mask = nib.load(mask_file)
        data = np.asarray(mask.dataobj)
    except Exception as err:
        raise InputDataError(f"{mask_file}: not a readable NIfTI image ({err})") from err
    if data.ndim != 3:
        raise InputDataError(f"{mask_file}: expected a 3D brain mask, found {data.ndim}D")
    if data.shape != bold_img.shape[:3] or not np.allclose(mask.affine, bold_img.affine,
                                                            atol=1e-3):
        raise InputDataError(f"{mask_file}: grid differs from that of {bold_file}")
    if not data.any():
        raise InputDataError(f"{mask_file}: the brain mask is empty")
    return mask


def _check_confounds(confounds_file, n_volumes) -> pd.DataFrame:
    try:
        table = pd.read_csv(confounds_file, sep="\t", na_values="n/a")
    except Exception as err:
        raise InputDataError(f"{confounds_file}: not a readable TSV table ({err})") from err
    missing = [column for column in REQUIRED_CONFOUNDS if column not in table.columns]
    if missing:
        raise InputDataError(f"{confounds_file}: missing fMRIPrep column(s) {missing}")
    if len(table) != n_volumes:
        raise InputDataError(
            f"{confounds_file}: {len(table)} rows for a BOLD series of {n_volumes} volumes"
        )
    return table


def check_fmriprep_run(bold_file, mask_file, confounds_file):
    """Check one fMRIPrep run: a 4D series with a TR, a non-empty 3D mask on its grid,
    and a confounds table with fMRIPrep's motion and FD columns and one row per volume.

    Returns ``(bold_img, tr, mask_img)``.
    """
    img, tr = check_bold(bold_file)
    mask = _check_mask(mask_file, img, bold_file)
    _check_confounds(confounds_file, img.shape[3])
    return img, tr, mask


def _to_grid(img, grid, interpolation):
    from nilearn.image import resample_to_img

    same = img.shape[:3] == grid.shape[:3] and np.allclose(img.affine, grid.affine, atol=1e-3)
    if same:
        return img
    return resample_to_img(img, grid, interpolation=interpolation, force_resample=True,
                           copy_header=True)


def _save(img, path, tr=None) -> None:
    """Save as float32 (masks uint8) through a temporary name and an atomic rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}.nii.gz")
    data = np.asarray(img.dataobj)
    dtype = np.uint8 if data.dtype == np.uint8 else np.float32
    out = nib.Nifti1Image(data.astype(dtype), img.affine)
    if tr is not None and data.ndim == 4:
        out.header.set_zooms(out.header.get_zooms()[:3] + (tr,))
    out.header.set_xyzt_units("mm", "sec")
    out.to_filename(tmp)
    os.replace(tmp, path)


def import_fmriprep_run(
    *, bold_file, mask_file, confounds_file, outputs: dict[str, str], fwhm: float,
    resolution: float, space: str,
) -> str:
    """Check one fMRIPrep run and write the workflow's preprocessed-run outputs.

    The series and mask are put on the template grid at ``resolution`` (nilearn, only when
    the grids differ), the series smoothed with ``fwhm``; the confounds table is copied.
    Every output gets a JSON sidecar. Returns the methods sentence.
    """
    from nilearn import __version__ as nilearn_version
    from nilearn.image import mean_img, smooth_img

    from mirrorflow.io.templates import template_grid

    img, tr, mask = check_fmriprep_run(bold_file, mask_file, confounds_file)
    grid = template_grid(resolution)
    bold = _to_grid(img, grid, "continuous")
    mask = _to_grid(mask, grid, "nearest")
    mask = nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), mask.affine)
    resampled = bold is not img
    _save(bold, outputs["bold_unsmoothed"], tr)
    _save(smooth_img(bold, fwhm or None), outputs["bold"], tr)
    _save(mask, outputs["mask"])
    _save(mean_img(bold, copy_header=True), outputs["boldref"])
    tmp = Path(outputs["confounds"]).with_name(f".{Path(outputs['confounds']).name}.tmp")
    shutil.copyfile(confounds_file, tmp)
    os.replace(tmp, outputs["confounds"])

    methods = (
        f"fMRIPrep's preprocessed series in {space} "
        + (f"were resampled to {resolution:g} mm (nilearn {nilearn_version}) and "
           if resampled else "")
        + f"were smoothed with a {fwhm} mm FWHM Gaussian kernel; fMRIPrep's confounds "
        "were used as they are."
    )
    common = {"Sources": [str(bold_file), str(mask_file)], "Space": space,
              "Resolution": f"{resolution:g} mm isotropic", "SkullStripped": False}
    write_sidecar(outputs["bold"], {**common, "RepetitionTime": tr, "SmoothingFWHM": fwhm,
                                    "Description": methods})
    write_sidecar(outputs["bold_unsmoothed"], {**common, "RepetitionTime": tr})
    write_sidecar(outputs["mask"], {**common, "Type": "Brain"})
    write_sidecar(outputs["boldref"], common)
    write_sidecar(outputs["confounds"], {"Sources": [str(confounds_file)],
                                         "Description": methods})
    LOGGER.info("imported %s", bold_file)
    return methods
