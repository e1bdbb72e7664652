"""fMRIPrep derivatives, or another pipeline's normalised series, as input: check a run's
files and bring them to the workflow's grid.

fMRIPrep's ``desc-preproc_bold`` series are already motion-corrected and normalised; what
the first-level stage still needs is the workflow's template grid (resampled once, only
when fMRIPrep's grid differs), smoothing, and the confounds table, whose column names
(``trans_x``, ``framewise_displacement``, ``a_comp_cor_00``...) the workflow shares.

Series from another pipeline (SPM, FSL, AFNI: ``study.preprocessed``) are imported the
same way; their brain mask and confounds table are optional. Without a mask, the template's
brain mask where the series has signal is used; without a table, the run's confounds are
written as ``n/a`` (the first level then uses no motion regressors, and QC excludes no run
for motion: the rules decide this from the config).
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
from mirrorflow.io.bids import temporary_path, write_sidecar
from mirrorflow.io.validate import check_bold

__all__ = [
    "IMPORT_FIELDS", "REQUIRED_CONFOUNDS", "check_fmriprep_run", "import_fmriprep_run",
    "signal_mask",
]

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
    """Check one imported run: a 4D series with a TR, a non-empty 3D mask on its grid,
    and a confounds table with fMRIPrep's motion and FD columns and one row per volume
    (mask and table: where they are given, not None).

    Returns ``(bold_img, tr, mask_img)`` (``mask_img`` None without a mask).
    """
    img, tr = check_bold(bold_file)
    mask = _check_mask(mask_file, img, bold_file) if mask_file else None
    if confounds_file:
        _check_confounds(confounds_file, img.shape[3])
    return img, tr, mask


def signal_mask(img) -> nib.Nifti1Image:
    """A brain mask for a normalised series that came without one: nilearn's MNI152 brain
    mask on the series' grid, where the series is finite and varies over time (pipelines
    write 0 or NaN outside their own mask)."""
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.image import resample_to_img
    from nilearn.image.resampling import BoundingBoxError

    outside = InputDataError(f"{img.get_filename()}: no voxel of the MNI152 brain mask has "
                             "signal (is the series in MNI space?)")
    try:
        brain = resample_to_img(load_mni152_brain_mask(resolution=2), img,
                                interpolation="nearest", force_resample=True,
                                copy_header=True)
    except BoundingBoxError as err:  # the series' field of view misses the template
        raise outside from err
    data = np.asarray(img.dataobj, dtype=np.float32)
    with np.errstate(invalid="ignore"):
        signal = np.isfinite(data).all(axis=3) & (np.nanstd(data, axis=3) > 0)
    mask = (np.asarray(brain.dataobj) > 0) & signal
    if not mask.any():
        raise outside
    return nib.Nifti1Image(mask.astype(np.uint8), img.affine)


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
    tmp = temporary_path(path, ".nii.gz")
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
    resolution: float, space: str, pipeline: str = "fMRIPrep", smoothed: bool = False,
) -> str:
    """Check one imported run and write the workflow's preprocessed-run outputs.

    The series and mask are put on the template grid at ``resolution`` (nilearn, only when
    the grids differ), the series smoothed with ``fwhm`` (unless ``smoothed``: the
    ``pipeline`` did); the confounds table is copied. Without a mask (``mask_file`` None),
    :func:`signal_mask`; without a table, one of ``n/a`` with fMRIPrep's motion and FD
    columns. Every output gets a JSON sidecar. Returns the methods sentence.
    """
    from nilearn import __version__ as nilearn_version
    from nilearn.image import mean_img, smooth_img

    from mirrorflow.io.templates import template_grid

    img, tr, mask = check_fmriprep_run(bold_file, mask_file, confounds_file)
    if mask is None:
        mask = signal_mask(img)
    grid = template_grid(resolution)
    bold = _to_grid(img, grid, "continuous")
    mask = _to_grid(mask, grid, "nearest")
    mask = nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), mask.affine)
    resampled = bold is not img
    _save(bold, outputs["bold_unsmoothed"], tr)
    _save(bold if smoothed else smooth_img(bold, fwhm or None), outputs["bold"], tr)
    _save(mask, outputs["mask"])
    _save(mean_img(bold, copy_header=True), outputs["boldref"])
    tmp = Path(outputs["confounds"]).with_name(f".{Path(outputs['confounds']).name}.tmp")
    if confounds_file:
        shutil.copyfile(confounds_file, tmp)
    else:
        pd.DataFrame(np.nan, index=range(img.shape[3]), columns=REQUIRED_CONFOUNDS).to_csv(
            tmp, sep="\t", index=False, na_rep="n/a")
    os.replace(tmp, outputs["confounds"])

    smoothing = (f"had been smoothed by {pipeline} and were not smoothed again" if smoothed
                 else f"were smoothed with a {fwhm} mm FWHM Gaussian kernel")
    methods = (
        f"{pipeline}'s preprocessed series in {space} "
        + (f"were resampled to {resolution:g} mm (nilearn {nilearn_version}) and "
           if resampled else "")
        + f"{smoothing}; "
        + (f"{pipeline}'s confounds were used as they are." if confounds_file else
           "they came without motion estimates or a confounds table, so no motion "
           "regressors were used and no run was excluded for motion.")
        + ("" if mask_file else " The brain mask was the MNI152 brain mask where the "
           "series had signal.")
    )
    common = {"Sources": [str(f) for f in (bold_file, mask_file) if f], "Space": space,
              "Resolution": f"{resolution:g} mm isotropic", "SkullStripped": False}
    write_sidecar(outputs["bold"], {**common, "RepetitionTime": tr,
                                    "SmoothingFWHM": None if smoothed else fwhm,
                                    "Description": methods})
    write_sidecar(outputs["bold_unsmoothed"], {**common, "RepetitionTime": tr})
    write_sidecar(outputs["mask"], {**common, "Type": "Brain"})
    write_sidecar(outputs["boldref"], common)
    write_sidecar(outputs["confounds"], {"Sources": [str(confounds_file)] if confounds_file
                                         else [], "Description": methods})
    LOGGER.info("imported %s", bold_file)
    return methods
