"""Rule group_threshold: threshold one group map (parametric or permutation FWE) and
tabulate its clusters with atlas labels."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.clusters import COLUMNS, cluster_table  # noqa: E402
from mirrorflow.group import inference  # noqa: E402
from mirrorflow.group.maps import group_design  # noqa: E402
from mirrorflow.io.atlases import ATLASES  # noqa: E402
from mirrorflow.io.bids import save_float_image, write_json, write_sidecar  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.report.figures import map_figures  # noqa: E402

settle_imports("nilearn.glm", "nilearn.maskers", "nilearn.reporting", "nilearn.plotting")

p, inp, out = snakemake.params, snakemake.input, snakemake.output
settings = p.inference
if settings["method"] == "permutation":
    design, column = group_design(p.spec, p.subjects, participants_file=inp.participants)
    data = inference.permutation_data(inp.maps, design, column, mask_img=inp.mask,
                                      paired=p.spec["kind"] == "paired")
    null = inference.merge_nulls(inp.nulls, settings)
    logp, thresholded, info = inference.permutation_threshold(data, null, inp.z,
                                                              settings=settings)
    save_float_image(logp, out.logp)
    write_sidecar(out.logp, {"Sources": [inp.z, *inp.nulls], "Description":
                             "-log10 family-wise p-value", "Threshold": info})
else:
    thresholded, info = inference.parametric_threshold(inp.z, mask_img=inp.mask,
                                                       settings=settings)
save_float_image(thresholded, out.thresholded)
write_sidecar(out.thresholded, {"Sources": [inp.z], "Threshold": info,
                                "Description": info["Description"]})
table = cluster_table(thresholded, atlas=p.atlas)
table.to_csv(out.clusters, sep="\t", index=False, na_rep="n/a")
write_json(out.clusters_sidecar, {
    "Sources": [out.thresholded], "Threshold": info,
    "Atlas": ATLASES[p.atlas], "Columns": COLUMNS,
})
map_figures(out.thresholded, glass_file=out.glassbrain, slices_file=out.slices,
            title=f"{snakemake.wildcards.contrast} {snakemake.wildcards.model} (z)")
logging.info("%s: %d cluster peaks", info["Description"], len(table))

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
