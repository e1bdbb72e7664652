# mirrorflow: the shared neural basis of facial imitation, mimicry and empathy.
# A task-fMRI study (Braadbaart et al. 2014) and a coordinate-based meta-analysis with
# MACM (Fu et al. 2025), as one Snakemake workflow. See README.md.

from pathlib import Path

from mirrorflow.io.config import check_config_file
from snakemake.utils import min_version

min_version("9.0")

# Snakemake's YAML reading keeps the later of two equal keys and names neither the file
# nor the line of a syntax error: every config file (those given with --configfile, which
# Snakemake has read already, and the workflow's own) is read strictly first.
_config_files = list(workflow.configfiles)
if Path("config/config.yaml").exists():
    _config_files.append("config/config.yaml")
for _file in _config_files:
    check_config_file(_file)


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"


# The simulator's rule exists only for the simulated study: with a real dataset, no rule
# may claim (and so rewrite) the user's input files.
if SIMULATED:

    include: "rules/simulate.smk"


if LAYOUT == "raw":

    include: "rules/preproc.smk"

else:

    include: "rules/fmriprep.smk"


include: "rules/qc.smk"
include: "rules/firstlevel.smk"
include: "rules/group.smk"
include: "rules/meta.smk"
include: "rules/macm.smk"
include: "rules/report.smk"


# Every input is checked before the first job (not in dry runs; see check_inputs).
onstart:
    check_inputs()


rule all:
    default_target: True
    input:
        get_final_output(),
