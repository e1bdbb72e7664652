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
    """Write the template T1w (2 mm, the registration target), and T1w and brain mask at
    ``resolution`` into ``folder``; return their paths."""
    from nilearn.image import resample_to_img

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    res = f"{resolution:g}"
    paths = {
        "template_t1": folder / f"tpl-{TEMPLATE_SPACE}_res-2_T1w.nii.gz",
        "template": folder / f"tpl-{TEMPLATE_SPACE}_res-{res}_T1w.nii.gz",
        "template_mask": folder / f"tpl-{TEMPLATE_SPACE}_res-{res}_desc-brain_mask.nii.gz",
    }
    if not all(p.exists() for p in paths.values()):
        from nilearn.datasets import load_mni152_brain_mask, load_mni152_template

        load_mni152_template(resolution=2).to_filename(paths["template_t1"])
        grid = template_grid(resolution)
        grid.to_filename(paths["template"])
        mask = resample_to_img(
            load_mni152_brain_mask(resolution=2), grid, interpolation="nearest",
            force_resample=True, copy_header=True,
        )
        nib.Nifti1Image(np.asarray(mask.dataobj).astype(np.uint8), grid.affine).to_filename(
            paths["template_mask"]
        )
    return {key: str(path) for key, path in paths.items()}


def world_coords(shape, affine) -> np.ndarray:
    """World (MNI) coordinates in mm of every voxel of a grid, shape ``(*shape, 3)``."""
    ijk = np.indices(shape).reshape(3, -1).T
    return nib.affines.apply_affine(affine, ijk).reshape(*shape, 3)
