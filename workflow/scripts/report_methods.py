"""Rule report_methods: the methods section and the regions against the model studies."""

import json
import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import pandas as pd  # noqa: E402

from mirrorflow.io.bids import write_json  # noqa: E402
from mirrorflow.report.literature import compare_regions  # noqa: E402
from mirrorflow.report.methods import methods_html  # noqa: E402

inp, out, p = snakemake.input, snakemake.output, snakemake.params


def read(path):
    return json.loads(Path(path).read_text())


def table(path):
    return pd.read_csv(path, sep="\t")


stages = {
    "qc": read(inp.qc_sidecar),
    "anat": [read(inp.anat)] if "anat" in inp.keys() else [],
    "bold": [read(inp.bold)],
    "firstlevel": read(inp.firstlevel),
    "group": {name: (read(m), read(t)) for name, m, t in
              zip(p.group_names, inp.group_models, inp.group_thresholded)},
    "overlap": read(inp.overlap),
    "ale": {c: read(f) for c, f in zip(p.categories, inp.ale)},
    "conjunction": read(inp.conjunction),
    "contrast": {d: read(f) for d, f in zip(p.directions, inp.contrast)},
    "macm_seed": read(inp.macm_seed),
    "macm": read(inp.macm),
}
tables = {f"group/{name}": table(f) for name, f in zip(p.group_names, inp.group_clusters)}
tables.update({"overlap": table(inp.overlap_clusters),
               "meta/conjunction": table(inp.conjunction_clusters),
               "meta/macm": table(inp.macm_clusters)})
comparison = compare_regions(tables)
comparison.to_csv(out.regions, sep="\t", index=False)
write_json(out.regions_sidecar, {
    "Description": "Regions reported in the abstracts of Braadbaart et al. 2014 and Fu et "
                   "al. 2025, each beside the mirrorflow map it is compared with; found when "
                   "a peak of that map's cluster table carries one of the region's atlas "
                   "labels, in a cluster when a cluster's composition holds at least 1% of "
                   "it (mirrorflow.report.literature).",
    "Columns": {"study": "model study", "analysis": "the study's analysis",
                "reported_region": "region named in the study's abstract",
                "mirrorflow_map": "mirrorflow map compared", "found": "yes, in a cluster, no or not run",
                "matching_peaks": "peaks of the map labelled as the region, or the "
                                  "region's share of a cluster"}})
qc = pd.read_csv(inp.qc, sep="\t", dtype={"sub": str})
document = methods_html(
    snakemake.config, stages=stages,
    summaries={c: read(f) for c, f in zip(p.categories, inp.summaries)},
    behaviour=read(inp.behaviour), qc=qc,
    n_macm_experiments=len(table(inp.macm_experiments)), comparison=comparison,
)
tmp = Path(out.methods).with_suffix(".tmp")
tmp.write_text(document)
tmp.replace(out.methods)
logging.info("regions found: %d of %d (%d more in a cluster)",
             (comparison["found"] == "yes").sum(), len(comparison),
             (comparison["found"] == "in a cluster").sum())

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
