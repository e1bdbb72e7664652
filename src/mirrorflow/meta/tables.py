"""Cluster tables, glass-brain figures and per-cluster contributions of meta-analysis maps.

- :func:`write_clusters`: peaks (MNI x/y/z), size (mm3, voxels), peak z and the region
  of each peak in every configured atlas (:func:`mirrorflow.clusters.cluster_table`,
  nilearn's ``get_clusters_table``), with a JSON sidecar naming the atlases; and a
  glass-brain figure (:func:`mirrorflow.report.figures.glass_brain`).
- :func:`write_contributions`: how much each experiment drives each cluster, by NiMARE's
  :class:`~nimare.diagnostics.Jackknife` (share of the cluster's mean ALE lost when the
  experiment is left out) or FocusCounter (the experiment's foci in the cluster;
  :func:`focus_counts`, NiMARE's rule vectorised), on the clusters of the thresholded
  map.
"""

from __future__ import annotations

import logging
from pathlib import Path

import nibabel as nib
import numpy as np

from mirrorflow.exceptions import ConfigError

__all__ = [
    "CONTRIBUTION_METHODS",
    "contributions_table",
    "focus_counts",
    "save_contributions",
    "write_clusters",
    "write_contributions",
]

LGR = logging.getLogger(__name__)

#: Contribution methods -> NiMARE diagnostics class name.
CONTRIBUTION_METHODS = {"jackknife": "Jackknife", "focuscounter": "FocusCounter"}

#: Key under which the thresholded map is added to the NiMARE result for diagnostics.
_TARGET = "z_desc-thresholded"


def write_clusters(map_file, *, table_file, figure_file, atlases, title: str) -> dict:
    """Cluster table (TSV + JSON sidecar) and glass brain of a thresholded z map.

    Parameters
    ----------
    map_file : path
        Thresholded map (z in surviving voxels, 0 elsewhere).
    table_file, figure_file : path
        TSV table and PNG figure to write.
    atlases : :obj:`list` of :obj:`str`
        Atlas names (:data:`mirrorflow.io.atlases.ATLASES`), one label column each.
    title : :obj:`str`
        Figure title.

    Returns
    -------
    :obj:`dict`
        ``"n_clusters"`` and ``"table"`` (the DataFrame).
    """
    from mirrorflow.clusters import COLUMNS, cluster_table, label_columns
    from mirrorflow.io.atlases import ATLASES
    from mirrorflow.io.bids import write_sidecar
    from mirrorflow.report.figures import glass_brain

    img = nib.load(str(map_file))
    table = cluster_table(img, atlas=list(atlases))
    table_file = Path(table_file)
    table_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = table_file.with_name(f".{table_file.name}.tmp")
    table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    tmp.replace(table_file)
    n_clusters = int(table["size_voxels"].notna().sum()) if len(table) else 0
    columns = {k: v for k, v in COLUMNS.items() if k != "label"}
    columns["peak_stat"] = "z at the peak"
    write_sidecar(table_file, {
        "Description": f"Clusters of {Path(map_file).name}: {n_clusters} cluster(s), peaks and "
                       "sub-peaks at least 8 mm apart (nilearn get_clusters_table, clusters of "
                       "face-connected voxels), each peak labelled in "
                       + " and ".join(ATLASES[a] for a in atlases) + ".",
        "Source": str(map_file),
        "Atlases": {name: ATLASES[name] for name in atlases},
        "Columns": {**columns, **label_columns(list(atlases))},
    })
    glass_brain(img, figure_file, title=title)
    LGR.info("%s: %d cluster(s)", table_file, n_clusters)
    return {"n_clusters": n_clusters, "table": table}


def focus_counts(coordinates, ids, map_img):
    """FocusCounter's table, vectorised: foci of each experiment in each cluster.

    Same rule as :class:`nimare.diagnostics.FocusCounter` (tested equal): clusters and
    their numbers from nilearn's ``get_clusters_table`` label map, each focus rounded to
    its voxel (NiMARE's ``mm2vox``) and counted in the cluster there. NiMARE loops over
    experiments and scans every focus for each: ~25 min for the 4,300 experiments (250,730
    foci) of the default MACM on this machine, against well under a second here.

    Parameters
    ----------
    coordinates : :class:`pandas.DataFrame`
        ``id``, ``x``, ``y``, ``z`` (MNI mm) of every focus.
    ids : :obj:`list` of :obj:`str`
        Experiments (rows of the table, in this order).
    map_img : :class:`nibabel.nifti1.Nifti1Image`
        Thresholded map (positive in clusters, 0 elsewhere).
    """
    import pandas as pd
    from nilearn.reporting import get_clusters_table

    data = np.asarray(map_img.dataobj, dtype=np.float32)
    if not np.any(data > 0):
        return pd.DataFrame({"id": list(ids)})
    _, (labels,) = get_clusters_table(
        nib.Nifti1Image(data, map_img.affine), stat_threshold=float(data[data > 0].min()) / 2,
        cluster_threshold=0, two_sided=False, return_label_maps=True)
    labels = np.asarray(labels.dataobj).astype(int)
    n_clusters = int(labels.max())
    ijk = np.rint(nib.affines.apply_affine(
        np.linalg.inv(map_img.affine), coordinates[["x", "y", "z"]].to_numpy(float))).astype(int)
    inside = np.all((ijk >= 0) & (ijk < labels.shape), axis=1)
    cluster = np.zeros(len(ijk), dtype=int)
    cluster[inside] = labels[tuple(ijk[inside].T)]
    hits = pd.DataFrame({"id": coordinates["id"].to_numpy(), "cluster": cluster})
    hits = hits[hits["cluster"] > 0]
    counts = pd.crosstab(hits["id"], hits["cluster"]).reindex(
        index=list(ids), columns=range(1, n_clusters + 1), fill_value=0)
    counts.columns = [f"cluster_{k}" for k in counts.columns]
    return counts.rename_axis(index="id", columns=None).reset_index()


def contributions_table(result, map_img, *, method: str, n_cores: int = 1):
    """Contribution table of a fitted NiMARE ALE ``result`` on the clusters of ``map_img``.

    ``jackknife``: NiMARE's :class:`~nimare.diagnostics.Jackknife` on the clusters of the
    thresholded map (face-connected, as NiMARE defines them); ``focuscounter``:
    :func:`focus_counts`, NiMARE's FocusCounter rule vectorised. Rows are experiments
    (``id``), columns ``cluster_<k>`` the clusters, numbered by descending peak as
    ``cluster_id`` in the cluster table; a map without clusters gives a table of the
    experiment ids only.
    """
    import pandas as pd
    from nimare import diagnostics

    if method not in CONTRIBUTION_METHODS:
        raise ConfigError(
            f"contribution method must be one of {sorted(CONTRIBUTION_METHODS)}, got {method!r}"
        )
    data = np.asarray(map_img.dataobj, dtype=np.float32)
    ids = sorted(result.estimator.inputs_["id"])
    if method == "focuscounter":
        return focus_counts(result.estimator.inputs_["coordinates"], ids, map_img)
    if not np.any(data > 0):
        return pd.DataFrame({"id": ids})
    name = CONTRIBUTION_METHODS[method]
    values = result.masker.transform(nib.Nifti1Image(data, map_img.affine))
    result.maps[_TARGET] = np.ravel(values).astype(np.float32)
    diagnostic = getattr(diagnostics, name)(
        target_image=_TARGET, target_threshold=0.0, n_cores=int(n_cores)
    )
    result = diagnostic.transform(result)
    # CBMA estimators give one table per tail; the map is positive only.
    table = result.tables[f"{_TARGET}_diag-{name}_tab-counts_tail-positive"].copy()
    table.columns = ["id", *(f"cluster_{c.split()[-1]}" for c in table.columns[1:])]
    return table


def save_contributions(table, *, output_file, method: str, map_file, source, extra=None):
    """Write a contribution table (TSV) and its JSON sidecar."""
    import nimare

    from mirrorflow.io.bids import write_sidecar

    output_file = Path(output_file)
    output_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_file.with_name(f".{output_file.name}.tmp")
    table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.6g")
    tmp.replace(output_file)
    what = ("the proportion of the cluster's mean ALE value lost when the experiment is left "
            "out (NiMARE Jackknife)" if method == "jackknife" else
            "the number of the experiment's foci inside the cluster (NiMARE FocusCounter's "
            "rule, vectorised: mirrorflow.meta.tables.focus_counts)")
    n_clusters = len(table.columns) - 1
    write_sidecar(output_file, {
        "Description": f"Contribution of each of {len(table)} experiments to each of the "
                       f"{n_clusters} cluster(s) of {Path(map_file).name}: {what}.",
        "Columns": {"id": "experiment (NiMARE id: study-contrast)",
                    "cluster_<k>": "contribution to cluster k of the cluster table"},
        "Method": CONTRIBUTION_METHODS[method],  # NiMARE's class, or its rule
        "Source": str(map_file),
        "Dataset": str(source),
        "NiMAREVersion": nimare.__version__,
        **(extra or {}),
    })
    LGR.info("%s: %d experiments x %d clusters", output_file, len(table), n_clusters)
    return output_file


def write_contributions(*, dataset_file, map_file, output_file, method: str, n_cores: int = 1
                        ) -> dict:
    """Per-cluster contribution of each experiment to a thresholded ALE map (TSV + sidecar).

    The ALE is refitted on ``dataset_file`` with each experiment's sample size (the
    Turkeltaub kernel of the map's estimate; no Monte Carlo: contributions use the ALE
    values only), then :func:`contributions_table`.

    Parameters
    ----------
    dataset_file : path
        NiMARE JSON of the experiments the map was estimated from.
    map_file : path
        Thresholded z map.
    output_file : path
        Contribution table (TSV).
    method : {"jackknife", "focuscounter"}
        NiMARE diagnostic.
    n_cores : :obj:`int`
        Cores of the jackknife refits.
    """
    from mirrorflow.meta.ale import load_dataset
    from mirrorflow.meta.streaming import StatOnlyALE

    if method not in CONTRIBUTION_METHODS:
        raise ConfigError(
            f"contribution method must be one of {sorted(CONTRIBUTION_METHODS)}, got {method!r}"
        )
    # The ALE map only, here and in each of the Jackknife's refits: all either reads.
    result = StatOnlyALE().fit(load_dataset(dataset_file))
    table = contributions_table(result, nib.load(str(map_file)), method=method, n_cores=n_cores)
    save_contributions(table, output_file=output_file, method=method, map_file=map_file,
                       source=dataset_file)
    return {"n_clusters": len(table.columns) - 1, "table": table}
