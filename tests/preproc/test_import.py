"""Importing a run another pipeline preprocessed (SPM, FSL, AFNI): no mask, no confounds
table, already smoothed; against the MNI152 brain mask and the series written."""

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.bids import sidecar_path
from mirrorflow.io.templates import template_grid
from mirrorflow.preproc.fmriprep import IMPORT_FIELDS, REQUIRED_CONFOUNDS, import_fmriprep_run

N_VOLUMES, TR = 12, 2.0


@pytest.fixture(scope="module")
def spm_run(tmp_path_factory):
    """A normalised series on the workflow's 4 mm grid, as SPM writes it: signal inside a
    box that covers part of the brain, NaN outside (SPM's implicit mask), uncompressed."""
    from nilearn.datasets import load_mni152_brain_mask
    from nilearn.image import resample_to_img

    folder = tmp_path_factory.mktemp("spm")
    grid = template_grid(4)
    rng = np.random.default_rng(0)
    data = np.full((*grid.shape[:3], N_VOLUMES), np.nan, dtype=np.float32)
    box = (slice(8, 38), slice(10, 46), slice(5, 34))
    data[box] = 100 + rng.standard_normal(data[box].shape)
    img = nib.Nifti1Image(data, grid.affine)
    img.header.set_zooms((4.0, 4.0, 4.0, TR))
    path = folder / "swrsub-01_task-faces_run-1_bold.nii"
    img.to_filename(path)
    brain = resample_to_img(load_mni152_brain_mask(resolution=2), grid, interpolation="nearest",
                            force_resample=True, copy_header=True).get_fdata() > 0
    expected = np.zeros(grid.shape[:3], bool)
    expected[box] = True
    return {"bold": path, "folder": folder, "mask": brain & expected, "data": data}


def _outputs(folder):
    names = {"bold": "bold.nii.gz", "bold_unsmoothed": "unsmoothed.nii.gz",
             "mask": "mask.nii.gz", "confounds": "confounds.tsv", "boldref": "ref.nii.gz"}
    folder.mkdir()
    return {key: str(folder / names[key]) for key in IMPORT_FIELDS}


def test_run_without_mask_or_confounds_already_smoothed(spm_run):
    """The mask is the MNI152 brain where the series has signal; the confounds table is
    n/a with fMRIPrep's motion and FD columns, one row per volume; a series the pipeline
    smoothed is not smoothed again; the sidecars say all of it."""
    out = _outputs(spm_run["folder"] / "smoothed")
    methods = import_fmriprep_run(
        bold_file=spm_run["bold"], mask_file=None, confounds_file=None, outputs=out, fwhm=6.0,
        resolution=4, space="MNI152NLin6Asym", pipeline="SPM", smoothed=True)
    mask = nib.load(out["mask"]).get_fdata() > 0
    assert mask.sum() > 1000 and np.array_equal(mask, spm_run["mask"])
    bold = nib.load(out["bold"]).get_fdata()
    assert np.array_equal(bold[mask], spm_run["data"][mask])  # not smoothed again
    assert nib.load(out["bold"]).header.get_zooms()[3] == TR
    table = pd.read_csv(out["confounds"], sep="\t")
    assert list(table.columns) == list(REQUIRED_CONFOUNDS) and len(table) == N_VOLUMES
    assert table.isna().all().all()
    assert "no motion regressors were used" in methods
    assert "had been smoothed by SPM" in methods
    sidecar = json.loads(sidecar_path(out["bold"]).read_text())
    assert sidecar["SmoothingFWHM"] is None and sidecar["Sources"] == [str(spm_run["bold"])]


def test_run_smoothed_here_and_a_series_outside_mni_space(spm_run, tmp_path):
    out = _outputs(spm_run["folder"] / "smooth-here")
    import_fmriprep_run(
        bold_file=spm_run["bold"], mask_file=None, confounds_file=None, outputs=out, fwhm=6.0,
        resolution=4, space="MNI152NLin6Asym", pipeline="SPM")
    # Smoothed here: white noise over time averaged away inside the signal's box (away
    # from its edges by more than the 6 mm FWHM); the mean level kept.
    inner = (slice(12, 34), slice(14, 42), slice(9, 30))
    bold = nib.load(out["bold"]).get_fdata()[inner]
    raw = spm_run["data"][inner]
    assert np.median(bold.std(axis=3)) < 0.5 * np.median(raw.std(axis=3))
    assert abs(bold.mean() - raw.mean()) < 0.1
    far = nib.Nifti1Image(np.ones((4, 4, 4, N_VOLUMES), np.float32) + np.arange(N_VOLUMES),
                          np.diag([4.0, 4, 4, 1]) @ np.array([[1, 0, 0, 500], [0, 1, 0, 500],
                                                              [0, 0, 1, 500], [0, 0, 0, 1]]))
    far.header.set_zooms((4.0, 4.0, 4.0, TR))
    far.to_filename(tmp_path / "far.nii.gz")
    with pytest.raises(InputDataError, match=r"far.nii.gz: no voxel of the MNI152 brain mask "
                                             r"has signal \(is the series in MNI space\?\)"):
        import_fmriprep_run(bold_file=tmp_path / "far.nii.gz", mask_file=None,
                            confounds_file=None, outputs=_outputs(tmp_path / "far"), fwhm=6.0,
                            resolution=4, space="MNI152NLin6Asym", pipeline="SPM")
