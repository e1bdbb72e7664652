"""Cluster tables of thresholded maps: peaks, sizes, atlas labels and composition.

nilearn's ``get_clusters_table`` finds the clusters (voxels sharing a face,
6-connectivity) and their peaks and sub-peaks (at least ``min_distance`` mm apart); each
peak gets the label of the atlas region at its MNI coordinate
(:func:`mirrorflow.io.atlases.atlas_label`), and each cluster its composition: the share
of its voxels in each atlas region, as GingerALE's and atlasreader's reports give it, so
that a region inside a larger cluster (the putamen beside an insula peak) is named.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.io.atlases import ATLASES, atlas_label, atlas_labels

__all__ = ["COLUMNS", "MIN_SHARE", "cluster_table", "composition", "label_columns"]

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
    "composition": "share of the cluster's voxels in each atlas region (>= 1%, largest "
                   "first; no_label: outside every region), on the cluster's first row",
}

#: Smallest share of a cluster's voxels that its composition lists.
MIN_SHARE = 0.01


def label_columns(atlases) -> dict[str, str]:
    """Label column(s) of a table labelled by ``atlases``: ``label`` for one atlas name (a
    string), ``label_<atlas>`` for each of a list; with their descriptions."""
    if isinstance(atlases, str):
        return {"label": f"region at the peak in the {ATLASES[atlases]}",
                "composition": COLUMNS["composition"]}
    return {
        **{f"label_{name}": f"region at the peak in the {ATLASES[name]}" for name in atlases},
        **{f"composition_{name}": f"{COLUMNS['composition']}, in the {ATLASES[name]}"
           for name in atlases},
    }


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
    columns = [c for c in COLUMNS if c not in ("label", "composition")] + list(labels)
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
    label_names = [c for c in labels if c.startswith("label")]
    for column, name in zip(label_names, names):
        out[column] = [atlas_label(tuple(xyz), atlas=name) for xyz in peaks]
    voxels = _cluster_voxels(img, data, out)
    for column, name in zip([c for c in labels if c.startswith("composition")], names):
        out[column] = [None if v is None else composition(v, atlas=name) for v in voxels]
    return out


def _cluster_voxels(img, data, table) -> list:
    """MNI coordinates (mm) of the voxels of each cluster of ``table``, on its first row
    (None on sub-peak rows): the face-connected component of the positive voxels at the
    cluster's peak, as ``get_clusters_table`` labels them."""
    from scipy import ndimage

    components, _ = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    inverse = np.linalg.inv(img.affine)
    out = []
    for _, row in table.iterrows():
        if pd.isna(row["size_voxels"]):
            out.append(None)
            continue
        ijk = np.rint(nib.affines.apply_affine(inverse, [row["x"], row["y"], row["z"]]))
        component = components[tuple(ijk.astype(int))]
        members = np.argwhere(components == component)
        if component == 0 or len(members) != row["size_voxels"]:
            raise ValueError(f"cluster {row['cluster_id']} at ({row['x']:g}, {row['y']:g}, "
                             f"{row['z']:g}): {len(members)} voxels in its component, "
                             f"nilearn counts {row['size_voxels']}")
        out.append(nib.affines.apply_affine(img.affine, members))
    return out


def composition(coordinates, *, atlas: str) -> str:
    """``"region 62%; other 21%; ..."``: the share of ``coordinates`` (a cluster's voxels,
    MNI mm) in each region of ``atlas``, largest first, regions of at least
    :data:`MIN_SHARE`."""
    shares = pd.Series(atlas_labels(coordinates, atlas=atlas)).value_counts(normalize=True)
    shares = shares[shares >= MIN_SHARE]
    return "; ".join(f"{name} {share:.0%}" for name, share in shares.items())
