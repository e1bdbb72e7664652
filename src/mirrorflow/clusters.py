"""Cluster tables of thresholded maps: peaks, sizes and atlas labels.

nilearn's ``get_clusters_table`` finds the clusters (voxels sharing a face,
6-connectivity) and their peaks and sub-peaks (at least ``min_distance`` mm apart); each peak gets the label of the atlas region at its MNI
coordinate (:func:`mirrorflow.io.atlases.atlas_label`).
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.io.atlases import ATLASES, atlas_label

__all__ = ["COLUMNS", "cluster_table", "label_columns"]

#: Columns of a cluster table, and what each holds (for the JSON sidecar).
COLUMNS = {
    "cluster_id": "cluster number by descending peak; sub-peaks get a letter (1a, 1b)",
    "x": "peak MNI x (mm)",
    "y": "peak MNI y (mm)",
    "z": "peak MNI z (mm)",
    "peak_stat": "value of the map at the peak",
    "size_mm3": "cluster volume (mm3), on the cluster's first row",
    "size_voxels": "cluster size (voxels), on the cluster's first row",
    "label": "atlas region at the peak",
}


def label_columns(atlases) -> dict[str, str]:
    """Label column(s) of a table labelled by ``atlases``: ``label`` for one atlas name (a
    string), ``label_<atlas>`` for each of a list; with their descriptions."""
    if isinstance(atlases, str):
        return {"label": f"region at the peak in the {ATLASES[atlases]}"}
    return {f"label_{name}": f"region at the peak in the {ATLASES[name]}" for name in atlases}


def cluster_table(img, *, atlas="harvard_oxford", min_distance: float = 8.0
                  ) -> pd.DataFrame:
    """Clusters of the positive voxels of a thresholded map (0 elsewhere), largest peak
    first, with :data:`COLUMNS`. An empty map gives an empty table with the columns.

    ``atlas`` is one atlas name (column ``label``) or a list of names (one column
    ``label_<name>`` each, e.g. Harvard-Oxford and AAL)."""
    from nilearn.reporting import get_clusters_table

    names = [atlas] if isinstance(atlas, str) else list(atlas)
    unknown = [name for name in names if name not in ATLASES]
    if unknown or not names:
        raise ValueError(f"unknown atlas {unknown or names!r}; choose from {sorted(ATLASES)}")
    labels = label_columns(atlas)
    columns = [c for c in COLUMNS if c != "label"] + list(labels)
    img = nib.load(img) if not isinstance(img, nib.Nifti1Image) else img
    data = np.asarray(img.dataobj, dtype=float)
    if not np.any(data > 0):
        return pd.DataFrame(columns=columns)
    threshold = float(data[data > 0].min()) / 2  # every positive voxel is kept
    table = get_clusters_table(img, stat_threshold=threshold, cluster_threshold=0,
                               two_sided=False, min_distance=min_distance)
    voxel_mm3 = float(abs(np.linalg.det(img.affine[:3, :3])))
    size = pd.to_numeric(table["Cluster Size (mm3)"], errors="coerce")
    out = pd.DataFrame({
        "cluster_id": table["Cluster ID"].astype(str),
        "x": table["X"].astype(float),
        "y": table["Y"].astype(float),
        "z": table["Z"].astype(float),
        "peak_stat": table["Peak Stat"].astype(float),
        "size_mm3": size,
        "size_voxels": (size / voxel_mm3).round().astype("Int64"),
    })
    peaks = list(out[["x", "y", "z"]].itertuples(index=False))
    for column, name in zip(labels, names):
        out[column] = [atlas_label(tuple(xyz), atlas=name) for xyz in peaks]
    return out
