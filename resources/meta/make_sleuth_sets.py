#!/usr/bin/env python3
"""Regenerate the default run's coordinate sets from the Neurosynth v7 files.

Writes, beside this script:

- ``mimicry.txt``: Sleuth file of the Neurosynth studies whose title matches
  imitation or mimicry (``MIMICRY``);
- ``contagion.txt``: Sleuth file of the studies whose title matches empathy or
  (emotional) contagion (``CONTAGION``), without the studies already in the mimicry
  set (the ALE subtraction needs disjoint groups; the few titles that match both,
  e.g. "The shared neural basis of empathy and facial imitation", are imitation
  experiments);
- ``studies.tsv``: every selected study, its set, its number of foci, and how many
  foci were dropped because they lie outside the MNI152 template's bounding box.

Selection is by title only: the Neurosynth v7 files have no abstracts. Neurosynth
gives coordinates already in MNI space (``// Reference=MNI``) and one experiment per
study (all of a paper's tables), and no sample sizes: every experiment gets
``--sample-size`` subjects (default 20), an assumption stated in the README here.

The files are a derivative of Neurosynth (Yarkoni et al. 2011, Nature Methods
8:665-670), under the Open Database License (ODbL 1.0); see README.md.

Usage: python resources/meta/make_sleuth_sets.py [--neurosynth DIR] [--sample-size N]
(DIR defaults to resources/neurosynth, the project's compact copy; the full release
from ``nimare.extract.fetch_neurosynth`` gives the same files.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from mirrorflow.meta.sleuth import Experiment, mni_bounds, write_sleuth

HERE = Path(__file__).resolve().parent
#: Title patterns (case-insensitive regular expressions, word starts) of each set.
MIMICRY = r"\bimitat|\bmimicry\b"
CONTAGION = r"\bempath|\bcontagio"


def select(titles: pd.Series) -> dict[str, pd.Series]:
    """Boolean selection of each set from the study titles (mimicry first, disjoint)."""
    lowered = titles.fillna("").str.lower()
    mimicry = lowered.str.contains(MIMICRY, regex=True)
    contagion = lowered.str.contains(CONTAGION, regex=True) & ~mimicry
    return {"mimicry": mimicry, "contagion": contagion}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurosynth", type=Path, default=HERE.parent / "neurosynth")
    parser.add_argument("--sample-size", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, default=HERE)
    args = parser.parse_args(argv)

    folder = args.neurosynth
    metadata = pd.read_csv(folder / "data-neurosynth_version-7_metadata.tsv.gz", sep="\t")
    coordinates = pd.read_csv(folder / "data-neurosynth_version-7_coordinates.tsv.gz", sep="\t")
    low, high = mni_bounds()
    xyz = coordinates[["x", "y", "z"]].to_numpy(float)
    coordinates["inside"] = np.all((xyz >= low) & (xyz <= high), axis=1)
    foci = {study: rows for study, rows in coordinates.groupby("id", sort=False)}

    rows = []
    for label, chosen in select(metadata["title"]).items():
        experiments = []
        for study in metadata[chosen].sort_values("id").itertuples(index=False):
            table = foci.get(study.id)
            if table is None:
                continue
            kept = table[table["inside"]]
            rows.append({"id": study.id, "set": label, "year": study.year,
                         "n_foci": len(kept), "n_dropped": len(table) - len(kept),
                         "title": study.title})
            if kept.empty:
                continue
            title = " ".join(str(study.title).split())
            experiments.append(Experiment(
                name=f"pmid-{study.id} ({study.year}); {title}",
                subjects=args.sample_size,
                line=0,
                foci=[tuple(v) for v in kept[["x", "y", "z"]].to_numpy(float)],
            ))
        path = write_sleuth(args.output_dir / f"{label}.txt", experiments, space="MNI")
        n_foci = sum(len(e.foci) for e in experiments)
        print(f"{path}: {len(experiments)} experiments, {n_foci} foci")
    table = pd.DataFrame(rows)
    table.to_csv(args.output_dir / "studies.tsv", sep="\t", index=False)
    print(f"{args.output_dir / 'studies.tsv'}: {int(table['n_dropped'].sum())} foci outside "
          "the template's bounding box dropped")


if __name__ == "__main__":
    main()
