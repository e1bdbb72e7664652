"""MACM seed regions: the conjunction clusters, spheres, or masks given by the user.

The seed is one binary mask on the grid of NiMARE's MNI152 2 mm template (the grid of
every ALE map and of the reference Dataset); the MACM selects the reference experiments
with at least one focus in it.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from mirrorflow.exceptions import ConfigError, InputDataError

__all__ = ["KINDS", "check_seeds", "peak_spheres", "read_mask", "resample_mask", "seed_mask",
           "spheres_mask"]

#: Seed kinds of ``macm.seeds.kind``.
KINDS = ("conjunction", "spheres", "masks")


def _template():
    from nimare.utils import get_template

    return get_template("mni152_2mm", mask="brain")


def _world(shape, affine):
    from mirrorflow.io.templates import world_coords

    return world_coords(shape, affine)


def spheres_mask(centres, radii, template) -> nib.Nifti1Image:
    """Union of spheres (MNI mm centres, mm radii) on the template's grid."""
    xyz = _world(template.shape[:3], template.affine)
    mask = np.zeros(template.shape[:3], dtype=np.uint8)
    for centre, radius in zip(centres, radii):
        mask[np.linalg.norm(xyz - np.asarray(centre, float), axis=-1) <= float(radius)] = 1
    return nib.Nifti1Image(mask, template.affine)


def peak_spheres(conjunction, radius: float) -> nib.Nifti1Image:
    """Union of spheres of ``radius`` mm around the peak of each conjunction cluster
    (clusters of face-connected voxels)."""
    from scipy import ndimage

    data = np.asarray(conjunction.dataobj, dtype=float)
    labels, n_clusters = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    xyz = _world(data.shape, conjunction.affine)
    peaks = []
    for cluster in range(1, n_clusters + 1):
        values = np.where(labels == cluster, data, -np.inf)
        peaks.append(xyz[np.unravel_index(np.argmax(values), data.shape)])
    return spheres_mask(peaks, [radius] * len(peaks), conjunction)


def read_mask(path) -> nib.Nifti1Image:
    """A mask file (non-zero = in): readable, 3D, not empty.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or not 3D, or has no non-zero voxel.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"MACM seed mask {path}: file does not exist")
    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as err:  # nibabel raises several types for corrupt files
        raise InputDataError(f"MACM seed mask {path}: cannot be read ({err})") from err
    if data.ndim != 3:
        raise InputDataError(f"MACM seed mask {path}: expected a 3D image, got {data.shape}")
    if not np.any(data != 0):
        raise InputDataError(f"MACM seed mask {path}: the mask is empty (no non-zero voxel)")
    return nib.Nifti1Image((data != 0).astype(np.uint8), img.affine)


def check_seeds(seeds: dict) -> None:
    """Parse-time checks of ``macm.seeds``: every sphere holds a voxel of the template grid
    (one that holds none would be left out of the seed's union without a word), and every
    mask file is readable, 3D and not empty (:func:`read_mask`). No NiMARE import.

    Raises
    ------
    ConfigError
        Naming the sphere, its centre and radius, and the nearest voxel's distance.
    InputDataError
        Naming the mask file and the problem.
    """
    from mirrorflow.meta.sleuth import nimare_template

    if seeds["kind"] == "spheres":
        grid = nimare_template()
        xyz = _world(grid.shape[:3], grid.affine)
        for index, sphere in enumerate(seeds.get("spheres") or []):
            distance = np.linalg.norm(xyz - np.asarray(sphere["xyz"], float), axis=-1).min()
            if distance > float(sphere["radius"]):
                raise ConfigError(
                    f"macm.seeds.spheres[{index}] ('{sphere['label']}' at "
                    f"{list(sphere['xyz'])}, radius {sphere['radius']:g} mm) holds no voxel "
                    f"of the 2 mm template grid: the nearest voxel centre is "
                    f"{distance:.2f} mm away; use a larger radius"
                )
    if seeds["kind"] == "masks":
        for path in seeds.get("masks") or []:
            read_mask(path)


def resample_mask(path, target) -> nib.Nifti1Image:
    """A mask file (:func:`read_mask`) resampled (nearest neighbour) to ``target``'s grid,
    uint8.

    Raises
    ------
    InputDataError
        If the file is missing, unreadable or not 3D, or has no non-zero voxel (before or
        after resampling).
    """
    from nilearn.image import resample_to_img

    binary = read_mask(path)
    resampled = resample_to_img(binary, target, interpolation="nearest",
                                force_resample=True, copy_header=True)
    out = (np.asarray(resampled.dataobj) > 0).astype(np.uint8)
    if not out.any():
        raise InputDataError(
            f"MACM seed mask {path}: no voxel left after resampling to the grid {target.shape}"
        )
    return nib.Nifti1Image(out, target.affine)


def seed_mask(*, kind: str, conjunction=None, radius=None, spheres=(), masks=()):
    """The MACM seed mask and a sentence describing it.

    Parameters
    ----------
    kind : {"conjunction", "spheres", "masks"}
        Conjunction clusters (``conjunction``, a thresholded map), whole or, with
        ``radius``, as spheres at their peaks; the ``spheres`` (dicts with ``label``,
        ``xyz``, ``radius``); or the union of the NIfTI ``masks``.

    Returns
    -------
    mask : :class:`nibabel.nifti1.Nifti1Image`
        uint8 mask on the template grid.
    description : :obj:`str`

    Raises
    ------
    InputDataError
        If the seed is empty (e.g. an empty conjunction: nothing is shared) or a mask file
        is missing, unreadable, not 3D or empty.
    """
    template = _template()
    if kind == "conjunction":
        img = nib.load(str(conjunction))
        data = np.asarray(img.dataobj, dtype=float)
        if not np.any(data > 0):
            raise InputDataError(
                f"MACM seed: the conjunction map {conjunction} is empty (no voxel survives in "
                "every category), so there is no shared region to seed the MACM; seed it with "
                "macm.seeds kind spheres or masks instead"
            )
        if radius:
            mask = peak_spheres(img, radius)
            description = f"spheres of {radius:g} mm at the peaks of the conjunction clusters"
        else:
            mask = nib.Nifti1Image((data > 0).astype(np.uint8), img.affine)
            description = "the conjunction clusters"
    elif kind == "spheres":
        if not spheres:
            raise ConfigError("macm.seeds: kind spheres needs a list of spheres")
        mask = spheres_mask([s["xyz"] for s in spheres], [s["radius"] for s in spheres],
                            template)
        description = "spheres " + ", ".join(
            f"{s['label']} ({', '.join(f'{v:g}' for v in s['xyz'])}; {s['radius']:g} mm)"
            for s in spheres)
    elif kind == "masks":
        if not masks:
            raise ConfigError("macm.seeds: kind masks needs a list of mask files")
        union = np.zeros(template.shape[:3], dtype=bool)
        for path in masks:
            union |= np.asarray(resample_mask(path, template).dataobj) > 0
        mask = nib.Nifti1Image(union.astype(np.uint8), template.affine)
        description = "the union of the masks " + ", ".join(str(m) for m in masks)
    else:
        raise ConfigError(f"macm.seeds.kind must be one of {KINDS}, got {kind!r}")
    if not np.asarray(mask.dataobj).any():
        raise InputDataError(f"MACM seed ({description}) has no voxel on the template grid")
    return mask, description
