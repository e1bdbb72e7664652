"""Rule firstlevel_fixed: one participant's maps from its session models (fixed effects)."""

import logging
import sys
from pathlib import Path

sys.stderr = sys.stdout = open(snakemake.log[0], "w", buffering=1)  # noqa: F821
logging.basicConfig(stream=sys.stderr, level=logging.INFO)

from mirrorflow.glm.firstlevel import combine_sessions, write_maps  # noqa: E402

p = snakemake.params  # noqa: F821
inputs = snakemake.input  # noqa: F821
n = len(inputs.masks)
maps, mask, methods = combine_sessions(
    effects={c: inputs.effects[i * n:(i + 1) * n] for i, c in enumerate(p.contrasts)},
    variances={c: inputs.variances[i * n:(i + 1) * n] for i, c in enumerate(p.contrasts)},
    masks=inputs.masks,
    designs=inputs.designs,
)
write_maps(
    maps,
    mask,
    map_template=str(Path(snakemake.output.mask).parent / p.map_template),  # noqa: F821
    mask_file=snakemake.output.mask,  # noqa: F821
    methods=methods,
    sources=list(inputs.effects) + list(inputs.variances),
)
logging.info(methods)

from mirrorflow.io.provenance import stamp  # noqa: E402

stamp(snakemake)  # noqa: F821
