# mirrorflow: the shared neural basis of facial imitation, mimicry and empathy.
# A task-fMRI study (Braadbaart et al. 2014) and a coordinate-based meta-analysis with
# MACM (Fu et al. 2025), as one Snakemake workflow. See README.md.

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "rules/common.smk"
include: "rules/simulate.smk"
include: "rules/preproc.smk"
include: "rules/firstlevel.smk"
include: "rules/group.smk"
include: "rules/meta.smk"
include: "rules/macm.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
