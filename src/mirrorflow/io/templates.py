"""The MNI152 template that nilearn ships, written to disk at the grids the workflow uses."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["TEMPLATE_SPACE", "template_files", "template_grid", "world_coords"]

#: TemplateFlow label of nilearn's template (mni_icbm152_t1_tal_nlin_sym_09a).
TEMPLATE_SPACE = "MNI152NLin2009aSym"


def template_grid(resolution: float) -> nib.Nifti1Image:
    """nilearn's MNI152 T1w template resampled to an isotropic ``resolution`` (mm)."""
    from nilearn.datasets import load_mni152_template
    from nilearn.image import resample_img

    template = load_mni152_template(resolution=2)
    if resolution == 2:
        return template
    return resample_img(
        template,
        target_affine=np.diag([float(resolution)] * 3),
        interpolation="continuous",
        force_resample=True,
        copy_header=True,
    )


def template_files(folder, resolution: float) -> dict[str, str]:
    """Write the template T1w (2 mm, the registration target), and the T1w, brain mask and
    white-matter + CSF mask (aCompCor's noise region) at ``resolution`` into ``folder``;
    return their paths.

    Files already there are reused; new ones are written under temporary names and renamed,
    so concurrent jobs can share one folder.
    """
    import os

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    res = f"{resolution:g}"
    paths = {
        "template_t1": folder / f"tpl-{TEMPLATE_SPACE}_res-2_T1w.nii.gz",
        "template": folder / f"tpl-{TEMPLATE_SPACE}_res-{res}_T1w.nii.gz",
        "template_mask": folder / f"tpl-{TEMPLATE_SPACE}_res-{res}_desc-brain_mask.nii.gz",
        "noise_mask": folder / f"tpl-{TEMPLATE_SPACE}_res-{res}_desc-wmcsf_mask.nii.gz",
    }
    if not all(p.exists() for p in paths.values()):
        for key, img in _template_images(resolution).items():
            tmp = paths[key].with_name(f".{paths[key].name}.{os.getpid()}.nii.gz")
            img.to_filename(tmp)
            os.replace(tmp, paths[key])
    return {key: str(path) for key, path in paths.items()}


def _template_images(resolution: float) -> dict[str, nib.Nifti1Image]:
    from nilearn.datasets import (
        load_mni152_brain_mask,
        load_mni152_gm_template,
        load_mni152_template,
        load_mni152_wm_template,
    )
    from nilearn.image import resample_to_img
    from scipy import ndimage

    grid = template_grid(resolution)

    def on_grid(img, interpolation="continuous"):
        return resample_to_img(img, grid, interpolation=interpolation, force_resample=True,
                               copy_header=True).get_fdata()

    brain = on_grid(load_mni152_brain_mask(resolution=2), "nearest") > 0
    gm = on_grid(load_mni152_gm_template(resolution=2))
    wm = on_grid(load_mni152_wm_template(resolution=2))
    # aCompCor's noise region (Behzadi et al. 2007): white matter (probability > 0.9) and
    # CSF (inside the brain eroded by a voxel, where GM and WM probabilities are < 0.1).
    csf = ndimage.binary_erosion(brain) & (gm < 0.1) & (wm < 0.1)
    return {
        "template_t1": load_mni152_template(resolution=2),
        "template": grid,
        "template_mask": nib.Nifti1Image(brain.astype(np.uint8), grid.affine),
        "noise_mask": nib.Nifti1Image(((wm > 0.9) | csf).astype(np.uint8), grid.affine),
    }


def world_coords(shape, affine) -> np.ndarray:
    """World (MNI) coordinates in mm of every voxel of a grid, shape ``(*shape, 3)``."""
    ijk = np.indices(shape).reshape(3, -1).T
    return nib.affines.apply_affine(affine, ijk).reshape(*shape, 3)
