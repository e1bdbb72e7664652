"""Rule group_overlap: minimum-statistic conjunction of thresholded regression maps."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.clusters import COLUMNS, cluster_table  # noqa: E402
from mirrorflow.group.overlap import conjunction  # noqa: E402
from mirrorflow.io.atlases import ATLASES  # noqa: E402
from mirrorflow.io.bids import save_float_image, write_json, write_sidecar  # noqa: E402
from mirrorflow.jobs import settle_imports  # noqa: E402
from mirrorflow.report.figures import map_figures  # noqa: E402

settle_imports("nilearn.image", "nilearn.reporting", "nilearn.plotting")

out = snakemake.output
img = conjunction(list(snakemake.input))
save_float_image(img, out.conjunction)
description = ("Minimum statistic of the thresholded maps where all are positive "
               "(conjunction null, Nichols et al. 2005).")
write_sidecar(out.conjunction, {"Sources": list(snakemake.input), "Description": description})
table = cluster_table(img, atlas=snakemake.params.atlas)
table.to_csv(out.clusters, sep="\t", index=False, na_rep="n/a")
write_json(out.clusters_sidecar, {"Sources": [out.conjunction], "Description": description,
                                  "Atlas": ATLASES[snakemake.params.atlas], "Columns": COLUMNS})
map_figures(out.conjunction, glass_file=out.glassbrain, slices_file=out.slices,
            title="overlap of the regressions (minimum z)")

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)
