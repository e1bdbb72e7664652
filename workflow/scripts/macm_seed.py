"""Rule macm_seed: the MACM seed mask (conjunction clusters, spheres or masks)."""

import logging
import sys

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

import numpy as np  # noqa: E402

from mirrorflow.io.bids import write_sidecar  # noqa: E402
from mirrorflow.meta.seeds import seed_mask  # noqa: E402

seeds = snakemake.params.seeds  # noqa: F821
inputs = snakemake.input  # noqa: F821
mask, description = seed_mask(
    kind=seeds["kind"],
    conjunction=inputs.get("conjunction"),
    radius=seeds.get("radius"),
    spheres=seeds.get("spheres", []),
    masks=list(inputs.get("masks", [])),
)
mask.to_filename(snakemake.output.mask)  # noqa: F821
n_voxels = int(np.count_nonzero(np.asarray(mask.dataobj)))
write_sidecar(snakemake.output.mask, {  # noqa: F821
    "Description": f"Binary MACM seed mask on NiMARE's MNI152 2 mm grid: {description} "
                   f"({n_voxels} voxels).",
    "Kind": seeds["kind"],
    "Radius": seeds.get("radius"),
    "Sources": [str(f) for f in inputs],
    "NVoxels": n_voxels,
})
logging.info("MACM seed: %s, %d voxels", description, n_voxels)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
