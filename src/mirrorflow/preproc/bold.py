"""Nipype interfaces of the BOLD steps: slice timing, head motion, the single resampling to
the template, brain and tissue masks, and the confounds table.
"""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from mirrorflow.preproc.interfaces import _fname, _save_with_timing

__all__ = [
    "DVARS",
    "BrainMask",
    "GatherConfounds",
    "Realign",
    "ResampleToTemplate",
    "NoiseMask",
    "SliceTiming",
]

MOTION_COLUMNS = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]


class _SliceTimingInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD series")
    tr = traits.Float(mandatory=True, desc="repetition time (s)")
    slice_times = traits.List(traits.Float, desc="slice acquisition times (s); empty: none")
    slice_axis = traits.Int(2, usedefault=True, desc="voxel axis along which slices lie")


class _SliceTimingOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="slice-time corrected series (or the input)")
    corrected = traits.Bool(desc="whether slice timing was corrected")


class SliceTiming(SimpleInterface):
    """Slice-timing correction to the middle of the acquisition window (cubic spline in
    time, :func:`~mirrorflow.preproc.resampling.slice_timing_correct`); a pass-through when
    the slice times are unknown or all equal."""

    input_spec = _SliceTimingInputSpec
    output_spec = _SliceTimingOutputSpec

    def _run_interface(self, runtime):
        from mirrorflow.preproc.resampling import slice_timing_correct

        times = list(self.inputs.slice_times or [])
        if not times or np.ptp(times) == 0:
            self._results.update(out_file=self.inputs.in_file, corrected=False)
            return runtime
        img = nib.load(self.inputs.in_file)
        data = slice_timing_correct(
            img.dataobj, slice_times=times, tr=self.inputs.tr, slice_axis=self.inputs.slice_axis
        )
        out_file = _fname(self.inputs.in_file, "stc", runtime.cwd)
        _save_with_timing(nib.Nifti1Image(data, img.affine), self.inputs.in_file, out_file)
        self._results.update(out_file=out_file, corrected=True)
        return runtime


class _RealignInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD series (raw)")
    loops = traits.Int(1, usedefault=True, desc="realignment loops to the mean (nipy default 5)")
    speedup = traits.Int(5, usedefault=True, desc="voxel subsampling factor while estimating")


class _RealignOutputSpec(TraitedSpec):
    par_file = File(exists=True, desc="motion parameters: 3 translations (mm), 3 rotations (rad)")
    motion_file = File(exists=True, desc="per-volume 4x4 maps reference world -> volume world")
    ref_file = File(exists=True, desc="mean of the motion-corrected volumes (BOLD reference)")


class Realign(SimpleInterface):
    """Head-motion estimation with nipy's realigner (Roche 2011); nothing is resampled.

    :class:`nipy.algorithms.registration.groupwise_registration.SpaceRealign` estimates one
    rigid transform per volume, exposing the number of loops that nipype's
    ``SpaceTimeRealigner`` fixes at 5. The transforms are kept (``motion_file``) for the
    single resampling to the template; the BOLD reference is the mean of (up to 50 evenly
    spaced) volumes interpolated once through them.
    """

    input_spec = _RealignInputSpec
    output_spec = _RealignOutputSpec

    def _run_interface(self, runtime):
        from nipy import load_image
        from nipy.algorithms.registration.groupwise_registration import SpaceRealign

        from mirrorflow.preproc.resampling import grid_points, resample_series

        realigner = SpaceRealign(load_image(self.inputs.in_file))
        realigner.estimate(refscan=None, loops=self.inputs.loops, speedup=self.inputs.speedup)
        rigids = realigner._transforms[0]
        motion = np.stack([rigid.as_affine() for rigid in rigids])
        params = np.array([np.r_[rigid.translation, rigid.rotation] for rigid in rigids])
        par_file = _fname(self.inputs.in_file, "motion", runtime.cwd, ext=".par")
        np.savetxt(par_file, params, fmt="%.8f")
        motion_file = _fname(self.inputs.in_file, "motion", runtime.cwd, ext=".npy")
        np.save(motion_file, motion)

        # The reference: mean of up to 50 evenly spaced volumes, each interpolated once.
        img = nib.load(self.inputs.in_file)
        volumes = np.unique(np.linspace(0, img.shape[3] - 1, 50).round().astype(int))
        data = np.asarray(img.dataobj, dtype=np.float32)[..., volumes]
        series, _ = resample_series(
            data, img.affine, grid_points(img.shape, img.affine), motion[volumes],
            out_shape=img.shape[:3],
        )
        ref_file = _fname(self.inputs.in_file, "boldref", runtime.cwd)
        nib.Nifti1Image(series.mean(axis=-1), img.affine).to_filename(ref_file)
        self._results.update(par_file=par_file, motion_file=motion_file, ref_file=ref_file)
        return runtime


class _ResampleInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D series (slice-time corrected)")
    motion_file = File(exists=True, mandatory=True, desc="per-volume motion maps (.npy)")
    reference = File(exists=True, mandatory=True, desc="output grid (template, 3D)")
    transforms = InputMultiObject(
        File(exists=True), mandatory=True,
        desc="template -> BOLD reference chain, in ants.apply_transforms order",
    )
    mask = File(exists=True, desc="interpolate only within this mask (dilated by margin_mm)")
    margin_mm = traits.Float(8.0, usedefault=True, desc="dilation of the mask (mm)")


class _ResampleOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="series on the template grid")
    fov_mask = File(exists=True, desc="output voxels inside the acquired field of view")


class ResampleToTemplate(SimpleInterface):
    """Resample the BOLD series to the template grid in one interpolation per volume.

    The output grid's points go through the anatomical chain once (ANTs); each volume's
    motion is composed with it as a matrix product, and each raw volume is interpolated
    once (trilinear): motion correction, BOLD-to-T1w and T1w-to-template registration are
    applied together, without intermediate resampled series. With ``mask``, only voxels
    within ``margin_mm`` of it are interpolated (the rest is zero).
    """

    input_spec = _ResampleInputSpec
    output_spec = _ResampleOutputSpec

    def _run_interface(self, runtime):
        from mirrorflow.preproc.resampling import grid_points, map_points, resample_series

        from scipy import ndimage

        reference = nib.load(self.inputs.reference)
        shape = reference.shape[:3]
        keep = np.ones(shape, dtype=bool)
        if self.inputs.mask:
            # Only voxels near the brain: the rest of the grid is zero (a third of the work).
            steps = int(np.ceil(self.inputs.margin_mm / min(reference.header.get_zooms()[:3])))
            keep = np.asarray(nib.load(self.inputs.mask).dataobj) > 0
            keep = ndimage.binary_dilation(keep, iterations=steps) if steps else keep
        points = map_points(
            grid_points(shape, reference.affine)[keep.ravel()], list(self.inputs.transforms)
        )
        img = nib.load(self.inputs.in_file)
        values, inside = resample_series(
            np.asarray(img.dataobj, dtype=np.float32), img.affine, points,
            np.load(self.inputs.motion_file), out_shape=(len(points),),
        )
        series = np.zeros(shape + (img.shape[3],), dtype=np.float32)
        series[keep] = values
        fov = np.zeros(shape, dtype=bool)
        fov[keep] = inside
        out_file = _fname(self.inputs.in_file, "space", runtime.cwd)
        _save_with_timing(nib.Nifti1Image(series, reference.affine), self.inputs.in_file, out_file)
        fov_file = _fname(self.inputs.in_file, "fov", runtime.cwd)
        nib.Nifti1Image(fov.astype(np.uint8), reference.affine).to_filename(fov_file)
        self._results.update(out_file=out_file, fov_mask=fov_file)
        return runtime


class _MaskInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D series in template space")
    anat_mask = File(exists=True, mandatory=True, desc="T1w brain mask on the same grid")
    fov_mask = File(exists=True, mandatory=True, desc="acquired field of view, same grid")


class _MaskOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="BOLD brain mask")


class BrainMask(SimpleInterface):
    """Brain mask of a normalised run: the subject's T1w brain (warped to the template),
    within the field of view, where the mean BOLD signal is above 20% of its brain median
    (drops signal voids)."""

    input_spec = _MaskInputSpec
    output_spec = _MaskOutputSpec

    def _run_interface(self, runtime):
        img = nib.load(self.inputs.in_file)
        mean = np.asarray(img.dataobj, dtype=np.float32).mean(axis=-1)
        brain = np.asarray(nib.load(self.inputs.anat_mask).dataobj) > 0
        brain &= np.asarray(nib.load(self.inputs.fov_mask).dataobj) > 0
        covered = mean > 0.2 * np.median(mean[brain]) if brain.any() else brain
        out_file = _fname(self.inputs.in_file, "mask", runtime.cwd)
        nib.Nifti1Image((brain & covered).astype(np.uint8), img.affine).to_filename(out_file)
        self._results["out_file"] = out_file
        return runtime


class _NoiseMaskInputSpec(BaseInterfaceInputSpec):
    template_noise = File(exists=True, mandatory=True, desc="template WM + CSF mask")
    bold_mask = File(exists=True, mandatory=True, desc="BOLD brain mask, same grid")


class _NoiseMaskOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="white matter + CSF mask of this run")


class NoiseMask(SimpleInterface):
    """aCompCor's noise region (Behzadi et al. 2007) for one run: the template's white
    matter and CSF (:func:`~mirrorflow.io.templates.template_files`) within the BOLD mask."""

    input_spec = _NoiseMaskInputSpec
    output_spec = _NoiseMaskOutputSpec

    def _run_interface(self, runtime):
        noise = nib.load(self.inputs.template_noise)
        inside = np.asarray(nib.load(self.inputs.bold_mask).dataobj) > 0
        out = (np.asarray(noise.dataobj) > 0) & inside
        out_file = os.path.join(runtime.cwd, "wmcsf_mask.nii")
        nib.Nifti1Image(out.astype(np.uint8), noise.affine).to_filename(out_file)
        self._results["out_file"] = out_file
        return runtime


def standardized_dvars(bold, mask) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """DVARS (Power et al. 2012) and its standardised forms (Nichols 2013) of a 4D series in
    a brain mask: ``(std, non-std, voxelwise std)``, one value per volume after the first.

    The computation of nipype's ``ComputeDVARS`` (``remove_zerovariance=True``, intensities
    scaled to a median of 1000, the robust standard deviation from FSL's "lower"
    interquartile range), with each voxel's lag-1 autocorrelation (Yule-Walker, as nitime's
    ``AR_est_YW`` of order 1: lag-1 over lag-0 autocorrelation of the demeaned series) for
    all voxels at once instead of one call per voxel: 5.6 s -> 0.24 s per run of the small
    study on this 2-core machine, equal to nipype's to float32 precision
    (tests/preproc/test_preproc.py).
    """
    data = np.asarray(bold.dataobj, dtype=np.float32)[np.asarray(mask.dataobj, dtype=bool)]
    data = data / np.median(data) * 1000
    lower = np.percentile(data, [25, 75], axis=1, method="lower")
    sd = (lower[1] - lower[0]) / 1.349
    data, sd = data[sd > 0], sd[sd > 0]
    centred = (data - data.mean(axis=1, keepdims=True)).astype(np.float64)
    ar1 = (centred[:, 1:] * centred[:, :-1]).sum(axis=1) / np.square(centred).sum(axis=1)
    diff_sd = np.sqrt(2 * (1 - ar1)) * sd  # predicted SD of the temporal difference
    diff = np.diff(data, axis=1)
    dvars = np.sqrt(np.square(diff).mean(axis=0))
    voxelwise = np.sqrt(np.square(diff / diff_sd[:, None]).mean(axis=0))
    return dvars / diff_sd.mean(), dvars, voxelwise


class _DVARSInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D BOLD series")
    in_mask = File(exists=True, mandatory=True, desc="brain mask")


class _DVARSOutputSpec(TraitedSpec):
    out_all = File(exists=True, desc="TSV: std, non-std and voxelwise std DVARS")


class DVARS(SimpleInterface):
    """DVARS of a series (:func:`standardized_dvars`), written as nipype's ``ComputeDVARS``
    writes its ``save_all`` file (same columns and header)."""

    input_spec = _DVARSInputSpec
    output_spec = _DVARSOutputSpec

    def _run_interface(self, runtime):
        values = standardized_dvars(nib.load(self.inputs.in_file), nib.load(self.inputs.in_mask))
        out_file = os.path.join(runtime.cwd, "dvars.tsv")
        np.savetxt(out_file, np.vstack(values).T, fmt="%0.8f", delimiter="\t", comments="",
                   header="std DVARS\tnon-std DVARS\tvx-wise std DVARS")
        self._results["out_all"] = out_file
        return runtime


class _ConfoundsInputSpec(BaseInterfaceInputSpec):
    par_file = File(exists=True, mandatory=True, desc="nipy motion parameters")
    fd_file = File(exists=True, mandatory=True, desc="framewise displacement (nipype)")
    dvars_file = File(exists=True, mandatory=True, desc="DVARS, all variants (:class:`DVARS`)")
    acompcor_file = File(exists=True, desc="aCompCor components (nipype), with header")


class _ConfoundsOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="confounds TSV with fMRIPrep column names")


class GatherConfounds(SimpleInterface):
    """Collect motion, derivatives, FD, DVARS and aCompCor into one BIDS confounds table.

    Columns follow fMRIPrep: ``trans_x`` ... ``rot_z`` (mm, rad), ``*_derivative1``,
    ``framewise_displacement`` (Power et al. 2012), ``dvars``, ``std_dvars`` and
    ``a_comp_cor_NN``.
    """

    input_spec = _ConfoundsInputSpec
    output_spec = _ConfoundsOutputSpec

    def _run_interface(self, runtime):
        motion = pd.DataFrame(np.loadtxt(self.inputs.par_file, ndmin=2), columns=MOTION_COLUMNS)
        derivatives = motion.diff().add_suffix("_derivative1")
        fd = np.r_[np.nan, np.loadtxt(self.inputs.fd_file, skiprows=1, ndmin=1)]
        dvars = np.loadtxt(self.inputs.dvars_file, skiprows=1, ndmin=2)
        table = pd.concat([motion, derivatives], axis=1)
        table["framewise_displacement"] = fd
        # DVARS's file: std DVARS, non-standardised DVARS, voxelwise std.
        table["std_dvars"] = np.r_[np.nan, dvars[:, 0]]
        table["dvars"] = np.r_[np.nan, dvars[:, 1]]
        if self.inputs.acompcor_file:
            compcor = pd.read_csv(self.inputs.acompcor_file, sep="\t")
            table = pd.concat([table, compcor.set_axis(table.index)], axis=1)
        out_file = os.path.join(runtime.cwd, "desc-confounds_timeseries.tsv")
        table.to_csv(out_file, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
        self._results["out_file"] = out_file
        return runtime
