"""Nipype interfaces of the anatomical steps (brain extraction, ANTs registration) and the
generic ones (smoothing, temporal mean, derivative sinks); BOLD steps are in ``bold``.

Each interface is a small :class:`~nipype.interfaces.base.SimpleInterface`: an input spec,
an output spec and one ``_run_interface`` that writes into ``runtime.cwd``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    traits,
)

__all__ = [
    "AntsRegistration",
    "ApplyTransforms",
    "ComposeTransforms",
    "CopyDerivative",
    "SkullStrip",
    "Smooth",
    "TemporalMean",
]

#: Largest plausible brain volume (litres): a T1w image whose non-zero voxels fill less
#: is taken as already skull-stripped.
MAX_BRAIN_LITRES = 2.5

#: Schedule of every linear (rigid or affine) ANTs stage, coarse to fine: iterations per
#: level, shrink factors and smoothing sigmas (voxels); each level stops early when it
#: converges. As in ANTs' own quick protocol (antsRegistrationSyNQuick.sh: 1000x500x250x0),
#: the full-resolution level is skipped: on the simulated study its ten iterations took
#: 60% of a T1w-to-template affine (4.5 s with them, 1.8 s without) and two thirds of a
#: BOLD-to-T1w rigid registration (3.1-3.5 s, 1.0-1.2 s), and the brain masks carried to
#: the template with and without them overlap with a Dice of 0.9992-0.9995.
LINEAR_SCHEDULE = {
    "aff_iterations": (1000, 500, 250, 0),
    "aff_shrink_factors": (6, 4, 2, 1),
    "aff_smoothing_sigmas": (3, 2, 1, 0),
}


def _fname(in_file, suffix, cwd, ext=".nii") -> str:
    """Intermediate file name in ``cwd``; uncompressed NIfTI by default (gzip costs seconds
    per 4D series and the working directory is not kept for reading)."""
    stem = Path(in_file).name.split(".")[0]
    return os.path.join(cwd, f"{stem}_{suffix}{ext}")


def _save_with_timing(img, reference_file, out_file) -> None:
    """Save ``img`` as float32 with the repetition time of ``reference_file``'s header
    (ANTs and nilearn drop it)."""
    zooms = nib.load(reference_file).header.get_zooms()
    # A copy: ``img`` may memory-map ``out_file`` itself.
    data = np.array(img.dataobj, dtype=np.float32)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_zooms(img.header.get_zooms()[:3] + tuple(zooms[3:4])[: data.ndim - 3])
    out.header.set_xyzt_units("mm", "sec")
    out.to_filename(out_file)


def _seed_ants(seed: int) -> None:
    """Make ANTs registration reproducible: a fixed seed for its metric sampling.

    antspyx 0.6 ignores ``ants.registration(random_seed=...)``; only the package-wide
    deterministic mode passes ``--random-seed`` to antsRegistration. Repeatable results also
    need one ITK thread, set in ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` before ITK's first
    use in the process (rule preproc_bold's script does). Measured: without the seed, two
    affine registrations of the same images differ by up to 3e-3 in their parameters.
    """
    import ants.config

    ants.config.set_ants_deterministic(True, seed_value=int(seed))


class _StripInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="T1w image")
    mode = traits.Enum("auto", "force", "skip", usedefault=True,
                       desc="auto: strip unless the image is already skull-stripped")
    resolution = traits.Float(2.0, usedefault=True, desc="working resolution (mm)")
    seed = traits.Int(1, usedefault=True, desc="random seed of ANTs' metric sampling")


class _StripOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="brain-extracted T1w at the working resolution")
    out_mask = File(exists=True, desc="brain mask on the same grid")
    stripped = traits.Bool(desc="whether skull stripping was applied")


class SkullStrip(SimpleInterface):
    """Template-based T1w brain extraction with ANTs.

    The T1w image, resampled to ``resolution`` mm, is registered (affine) to the whole-head
    MNI152NLin6Asym T1w template that NiMARE ships, and the template's brain mask is brought
    back through the inverse transform. In ``auto`` mode an image that is already
    skull-stripped (non-zero voxels fill less than :data:`MAX_BRAIN_LITRES`; a head with
    skull and scalp fills far more) is only resampled and masked where it is non-zero.
    """

    input_spec = _StripInputSpec
    output_spec = _StripOutputSpec

    def _run_interface(self, runtime):
        import ants
        from importlib.resources import files
        from nilearn.image import resample_img, resample_to_img

        img = nib.load(self.inputs.in_file)
        nonzero_litres = np.count_nonzero(np.asarray(img.dataobj)) * np.prod(
            img.header.get_zooms()[:3]) / 1e6
        already = nonzero_litres < MAX_BRAIN_LITRES
        strip = self.inputs.mode == "force" or (self.inputs.mode == "auto" and not already)
        size = self.inputs.resolution
        resampled = resample_img(img, target_affine=np.diag([size] * 3),
                                 interpolation="continuous", force_resample=True,
                                 copy_header=True)
        resampled_file = _fname(self.inputs.in_file, "resampled", runtime.cwd)
        _save_with_timing(resampled, self.inputs.in_file, resampled_file)
        mask_file = _fname(self.inputs.in_file, "brainmask", runtime.cwd)
        out_file = _fname(self.inputs.in_file, "brain", runtime.cwd)
        if strip:
            templates = files("nimare") / "resources" / "templates"
            head = ants.image_read(str(templates / "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz"))
            brain_mask = ants.image_read(
                str(templates / "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz"))
            moving = ants.image_read(resampled_file)
            _seed_ants(self.inputs.seed)
            reg = ants.registration(fixed=head, moving=moving, type_of_transform="Affine",
                                    **LINEAR_SCHEDULE)
            mask = ants.apply_transforms(
                fixed=moving, moving=brain_mask, transformlist=reg["invtransforms"],
                whichtoinvert=[True], interpolator="nearestNeighbor",
            )
            _remove_transforms(reg)
            ants.image_write(mask, mask_file)
            inside = np.asarray(nib.load(mask_file).dataobj) > 0
        else:
            # The non-zero voxels, carried by nearest neighbour (spline ringing is not brain).
            nonzero = nib.Nifti1Image((np.asarray(img.dataobj) > 0).astype(np.uint8),
                                      img.affine)
            inside = resample_to_img(nonzero, resampled, interpolation="nearest",
                                     force_resample=True, copy_header=True).get_fdata() > 0
        nib.Nifti1Image(inside.astype(np.uint8), resampled.affine).to_filename(mask_file)
        brain = np.where(inside, resampled.get_fdata(), 0).astype(np.float32)
        nib.Nifti1Image(brain, resampled.affine).to_filename(out_file)
        self._results.update(out_file=out_file, out_mask=mask_file, stripped=strip)
        return runtime


class _MeanInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="4D series")


class _MeanOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="temporal mean (3D)")


class TemporalMean(SimpleInterface):
    """Temporal mean of a 4D series, used as the BOLD reference for registration."""

    input_spec = _MeanInputSpec
    output_spec = _MeanOutputSpec

    def _run_interface(self, runtime):
        from nilearn.image import mean_img

        out_file = _fname(self.inputs.in_file, "mean", runtime.cwd)
        mean_img(self.inputs.in_file, copy_header=True).to_filename(out_file)
        self._results["out_file"] = out_file
        return runtime


class _RegInputSpec(BaseInterfaceInputSpec):
    fixed = File(exists=True, mandatory=True, desc="fixed (reference) image")
    moving = File(exists=True, mandatory=True, desc="moving image")
    transform = traits.Enum("Rigid", "Affine", "SyN", usedefault=True, desc="ANTs transform")
    seed = traits.Int(1, usedefault=True, desc="random seed of ANTs' metric sampling")
    linear_iterations = traits.List(
        traits.Int, list(LINEAR_SCHEDULE["aff_iterations"]), usedefault=True,
        desc="iterations of the linear stage per level (shrink 6, 4, 2, 1; "
        ":data:`LINEAR_SCHEDULE`); empty: antspyx's defaults (2100, 1200, 1200, 10)")


class _RegOutputSpec(TraitedSpec):
    transforms = traits.List(File(exists=True), desc="forward transforms, ANTs order")
    warped = File(exists=True, desc="moving image resampled onto the fixed image")


class AntsRegistration(SimpleInterface):
    """ANTs registration (Avants et al. 2008) through antspyx, with a fixed random seed."""

    input_spec = _RegInputSpec
    output_spec = _RegOutputSpec

    def _run_interface(self, runtime):
        import ants

        fixed = ants.image_read(self.inputs.fixed)
        moving = ants.image_read(self.inputs.moving)
        _seed_ants(self.inputs.seed)
        options = {}
        if self.inputs.linear_iterations:
            options = {**LINEAR_SCHEDULE,
                       "aff_iterations": tuple(self.inputs.linear_iterations)}
        result = ants.registration(
            fixed=fixed, moving=moving, type_of_transform=self.inputs.transform, **options
        )
        transforms = []
        for index, path in enumerate(result["fwdtransforms"]):
            ext = ".mat" if path.endswith(".mat") else ".nii.gz"
            target = _fname(self.inputs.moving, f"xfm{index}", runtime.cwd, ext=ext)
            shutil.copyfile(path, target)
            transforms.append(target)
        _remove_transforms(result)
        warped = _fname(self.inputs.moving, "warped", runtime.cwd)
        ants.image_write(result["warpedmovout"], warped)
        self._results.update(transforms=transforms, warped=warped)
        return runtime


def _remove_transforms(result: dict) -> None:
    """Delete the transform files ants.registration wrote to the system temp folder (it
    never does: ~22 MB of warps per SyN registration would pile up in /tmp)."""
    for path in {*result.get("fwdtransforms", []), *result.get("invtransforms", [])}:
        Path(path).unlink(missing_ok=True)


class _ComposeInputSpec(BaseInterfaceInputSpec):
    reference = File(exists=True, mandatory=True, desc="grid of the composed field")
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc="ANTs order")


class _ComposeOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="one displacement field (ANTs warp) on the reference grid")


class ComposeTransforms(SimpleInterface):
    """Compose a chain of ANTs transforms (affine and warps) into one displacement field,
    so that an anatomical registration of any kind is a single file."""

    input_spec = _ComposeInputSpec
    output_spec = _ComposeOutputSpec

    def _run_interface(self, runtime):
        import ants

        reference = ants.image_read(self.inputs.reference)
        prefix = os.path.join(runtime.cwd, "composed_")
        field = ants.apply_transforms(
            fixed=reference, moving=reference, transformlist=list(self.inputs.transforms),
            compose=prefix,
        )
        self._results["out_file"] = field
        return runtime


class _ApplyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="3D image to resample")
    reference = File(exists=True, mandatory=True, desc="target grid (3D)")
    transforms = InputMultiObject(File(exists=True), mandatory=True, desc="ANTs order")
    interpolation = traits.Enum("linear", "nearestNeighbor", usedefault=True,
                                desc="ANTs interpolator")


class _ApplyOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="image on the reference grid")


class ApplyTransforms(SimpleInterface):
    """Resample a 3D image through a chain of ANTs transforms (antspyx)."""

    input_spec = _ApplyInputSpec
    output_spec = _ApplyOutputSpec

    def _run_interface(self, runtime):
        import ants

        out = ants.apply_transforms(
            fixed=ants.image_read(self.inputs.reference),
            moving=ants.image_read(self.inputs.in_file),
            transformlist=list(self.inputs.transforms),
            interpolator=self.inputs.interpolation,
        )
        out_file = _fname(self.inputs.in_file, "space", runtime.cwd)
        ants.image_write(out, out_file)
        if self.inputs.interpolation == "nearestNeighbor":
            img = nib.load(out_file)
            mask = (np.asarray(img.dataobj) > 0).astype(np.uint8)
            nib.Nifti1Image(mask, img.affine).to_filename(out_file)
        self._results["out_file"] = out_file
        return runtime


class _SmoothInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="image to smooth")
    fwhm = traits.Float(mandatory=True, desc="Gaussian kernel FWHM (mm); 0 leaves it as is")


class _SmoothOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="smoothed image")


class Smooth(SimpleInterface):
    """Isotropic Gaussian smoothing with :func:`nilearn.image.smooth_img`."""

    input_spec = _SmoothInputSpec
    output_spec = _SmoothOutputSpec

    def _run_interface(self, runtime):
        from nilearn.image import smooth_img

        out_file = _fname(self.inputs.in_file, "smooth", runtime.cwd)
        smoothed = smooth_img(self.inputs.in_file, self.inputs.fwhm or None)
        _save_with_timing(smoothed, self.inputs.in_file, out_file)
        self._results["out_file"] = out_file
        return runtime


class _CopyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="file to publish")
    out_file = traits.Str(mandatory=True, desc="destination path (a Snakemake output)")
    metadata = traits.Dict(desc="JSON sidecar content; empty: no sidecar")


class _CopyOutputSpec(TraitedSpec):
    out_file = File(exists=True, desc="published file")


class CopyDerivative(SimpleInterface):
    """Publish a result to its BIDS-Derivatives path, with its JSON sidecar (a ``ds_`` sink).

    The copy goes through a temporary name and an atomic rename, so a killed job never
    leaves a complete-looking file behind. It always runs, even when nipype's cache holds
    its inputs: Snakemake deletes a job's outputs before it reruns the job (a new FWHM,
    say), and the cached upstream nodes must still be published.
    """

    input_spec = _CopyInputSpec
    output_spec = _CopyOutputSpec
    always_run = True

    def _run_interface(self, runtime):
        from mirrorflow.io.bids import write_sidecar

        target = Path(self.inputs.out_file)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        if target.name.endswith(".nii.gz") and not self.inputs.in_file.endswith(".nii.gz"):
            tmp = tmp.with_name(tmp.name + ".nii.gz")  # nibabel compresses by extension
            img = nib.load(self.inputs.in_file)
            if img.ndim == 4 and np.issubdtype(img.get_data_dtype(), np.floating):
                # Series as int16 with nibabel's scale factor (steps of range / 65535: far
                # below the noise): half the bytes to compress and store.
                img.header.set_data_dtype(np.int16)
            nib.save(img, tmp)
        else:
            shutil.copyfile(self.inputs.in_file, tmp)
        os.replace(tmp, target)
        if self.inputs.metadata:
            write_sidecar(target, self.inputs.metadata)
        self._results["out_file"] = str(target)
        return runtime
