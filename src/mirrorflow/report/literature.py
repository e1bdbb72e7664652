"""Regions found beside the regions the two model studies reported.

The reported regions are those named in the abstracts of Braadbaart et al. (2014,
NeuroImage 84:367-375) and Fu et al. (2025, SCAN, doi:10.1093/scan/nsaf091). Each is
matched to a mirrorflow map and to atlas labels (Harvard-Oxford and AAL names, lower
case, underscores as spaces): a region counts as found (``yes``) when a peak or sub-peak
of that map's cluster table carries one of its labels, and as ``in a cluster`` when no
peak does but a cluster's composition lists it (the region holds at least 1% of the
cluster's voxels: the putamen beside an insula peak), with its share.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["REPORTED", "compare_regions"]

_PREMOTOR = ("precentral", "juxtapositional lobule", "supp motor area")
_SOMATOSENSORY = ("postcentral", "supramarginal gyrus anterior", "rolandic oper")
_IPS = ("superior parietal", "parietal sup", "parietal inf", "supramarginal")
_INSULA = ("insular", "insula")
_MOTOR = (*_PREMOTOR, "putamen", "pallidum", "caudate", "cerebelum", "cerebellum",
          "thalamus")

#: (study, analysis, map, region, label keywords); ``map`` is a key of the tables given
#: to :func:`compare_regions`: ``group/<contrast>/<model>``, ``overlap``, ``meta/<name>``.
REPORTED = [
    ("Braadbaart et al. 2014", "mismatch > imitate", "group/mismatchGtImitate/paired",
     "bilateral insula", _INSULA),
    ("Braadbaart et al. 2014", "imitation activity ~ EQ", "group/imitate/eq",
     "somatosensory cortex", _SOMATOSENSORY),
    ("Braadbaart et al. 2014", "imitation activity ~ EQ", "group/imitate/eq",
     "intraparietal sulcus", _IPS),
    ("Braadbaart et al. 2014", "imitation activity ~ EQ", "group/imitate/eq",
     "premotor cortex", _PREMOTOR),
    ("Braadbaart et al. 2014", "imitation activity ~ accuracy", "group/imitate/accuracy",
     "insula", _INSULA),
    ("Braadbaart et al. 2014", "imitation activity ~ accuracy", "group/imitate/accuracy",
     "motor control areas", _MOTOR),
    ("Braadbaart et al. 2014", "EQ and accuracy overlap", "overlap",
     "premotor cortex", _PREMOTOR),
    ("Fu et al. 2025", "mimicry and contagion conjunction", "meta/conjunction",
     "cingulate gyrus", ("cingulate", "paracingulate")),
    ("Fu et al. 2025", "mimicry and contagion conjunction", "meta/conjunction",
     "middle frontal gyrus", ("middle frontal", "frontal mid")),
    ("Fu et al. 2025", "mimicry and contagion conjunction", "meta/conjunction",
     "inferior parietal lobule", ("supramarginal", "angular", "parietal inf")),
    ("Fu et al. 2025", "MACM of the shared regions", "meta/macm", "thalamus",
     ("thalamus",)),
    ("Fu et al. 2025", "MACM of the shared regions", "meta/macm", "putamen", ("putamen",)),
    ("Fu et al. 2025", "MACM of the shared regions", "meta/macm", "precentral gyrus",
     ("precentral",)),
    ("Fu et al. 2025", "MACM of the shared regions", "meta/macm", "insula", _INSULA),
]

_COLUMNS = ["study", "analysis", "reported_region", "mirrorflow_map", "found",
            "matching_peaks"]  # matching_peaks: peaks, or a cluster's share of the region


def _labels(row, label_columns) -> list[str]:
    return [str(row[c]).replace("_", " ").lower() for c in label_columns
            if isinstance(row[c], str)]


def _peak(row, label_columns) -> str:
    name = next((str(row[c]) for c in label_columns if isinstance(row[c], str)
                 and row[c] != "no_label"), "no_label")
    return f"{name} ({row['x']:g}, {row['y']:g}, {row['z']:g}; z {row['peak_stat']:.1f})"


def _in_clusters(table, keywords, label_columns) -> list[str]:
    """``"Left_Putamen 11% of cluster 1 (peak ...)"`` for each region of a cluster's
    composition (``composition`` columns) that matches ``keywords``."""
    columns = [c for c in table.columns if c == "composition" or c.startswith("composition_")]
    found = []
    for _, row in table.iterrows():
        for column in columns:
            if not isinstance(row[column], str):
                continue
            for part in row[column].split("; "):
                name, _, share = part.rpartition(" ")
                if any(k in name.replace("_", " ").lower() for k in keywords):
                    found.append(f"{name} {share} of cluster {row['cluster_id']} (peak "
                                 f"{_peak(row, label_columns)})")
    return found


def compare_regions(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per reported region: the mirrorflow map it is compared with, whether a peak
    of that map is labelled as the region (``yes``), or else a cluster's composition holds
    it (``in a cluster``), ``no``, or ``not run`` when the map is not among ``tables``; and
    the matching peaks (label, MNI x/y/z, peak z) or cluster shares."""
    rows = []
    for study, analysis, key, region, keywords in REPORTED:
        table = tables.get(key)
        if table is None:
            rows.append([study, analysis, region, key, "not run", ""])
            continue
        label_columns = [c for c in table.columns if c == "label" or c.startswith("label_")]
        peaks = [
            _peak(row, label_columns)
            for _, row in table.iterrows()
            if any(k in label for label in _labels(row, label_columns) for k in keywords)
        ]
        shares = [] if peaks else _in_clusters(table, keywords, label_columns)
        found = "yes" if peaks else "in a cluster" if shares else "no"
        rows.append([study, analysis, region, key, found, "; ".join(peaks or shares)])
    return pd.DataFrame(rows, columns=_COLUMNS)
