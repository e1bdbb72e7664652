# Configuration checks, input discovery, path templates and input functions.
# The only rule file with Python logic; the other .smk files stay declarative.

from pathlib import Path

from mirrorflow.io.bids import bids_path, clean_contrast_name, sidecar_path
from mirrorflow.io.config import check_config
from mirrorflow.io.layout import index_bids
from mirrorflow.io.templates import TEMPLATE_SPACE
from snakemake.utils import validate

validate(config, "../config/config.schema.yaml")
check_config(config)

OUT = config["output_dir"]
TASK = config["study"]["task"]
SPACE = TEMPLATE_SPACE
RES = str(config["preproc"]["resolution"])
SIMULATED = config["study"]["source"] == "simulate"
SIM_DIR = f"{OUT}/sourcedata/simulated"

if SIMULATED:
    BIDS_DIR = f"{SIM_DIR}/bids"
    _sim = config["simulation"]
    RUNS = {
        f"{i:02d}": [str(r) for r in range(1, _sim["n_runs"] + 1)]
        for i in range(1, _sim["n_subjects"] + 1)
    }
else:
    BIDS_DIR = config["study"]["bids_dir"]
    RUNS = index_bids(
        BIDS_DIR,
        task=TASK,
        subjects=config["study"]["subjects"],
        runs=config["study"]["runs"],
    )
SUBJECTS = sorted(RUNS)
# Parallel lists of (subject, run) for expand(..., zip, **RUN_PAIRS).
RUN_PAIRS = {
    "sub": [sub for sub in SUBJECTS for _ in RUNS[sub]],
    "run": [run for sub in SUBJECTS for run in RUNS[sub]],
}


wildcard_constraints:
    sub="[A-Za-z0-9]+",
    run="[A-Za-z0-9]+",
    contrast="[A-Za-z0-9]+",
    model="[A-Za-z0-9]+",
    category="|".join(config["meta"]["categories"]),


# ------------------------------------------------------------------ path templates
_SUB = dict(sub="{sub}")
_RUN = dict(sub="{sub}", task=TASK, run="{run}")
BOLD = bids_path(f"{BIDS_DIR}/sub-{{sub}}/func", suffix="bold", **_RUN)
EVENTS = bids_path(
    f"{BIDS_DIR}/sub-{{sub}}/func", suffix="events", extension=".tsv", **_RUN
)
T1W = bids_path(f"{BIDS_DIR}/sub-{{sub}}/anat", suffix="T1w", **_SUB)
PARTICIPANTS = f"{BIDS_DIR}/participants.tsv"

_PRE = f"{OUT}/preproc/sub-{{sub}}/func"
_STD = dict(**_RUN, space=SPACE, res=RES)
PREPROC = {
    "bold": bids_path(_PRE, desc="preproc", suffix="bold", **_STD),
    "bold_unsmoothed": bids_path(_PRE, desc="unsmoothed", suffix="bold", **_STD),
    "mask": bids_path(_PRE, desc="brain", suffix="mask", **_STD),
    "confounds": bids_path(
        _PRE, desc="confounds", suffix="timeseries", extension=".tsv", **_RUN
    ),
    "boldref": bids_path(_PRE, suffix="boldref", **_STD),
}

_FL = f"{OUT}/firstlevel/sub-{{sub}}"
_FL_ENT = dict(sub="{sub}", task=TASK, space=SPACE, res=RES)
FIRSTLEVEL_MAP = bids_path(
    _FL, contrast="{contrast}", stat="{stat}", suffix="statmap", **_FL_ENT
)
FIRSTLEVEL_MASK = bids_path(_FL, desc="brain", suffix="mask", **_FL_ENT)
DESIGN = bids_path(_FL, sub="{sub}", task=TASK, suffix="design", extension=".tsv")

_GR = dict(task=TASK, space=SPACE, res=RES, contrast="{contrast}", model="{model}")
GROUP_Z = bids_path(f"{OUT}/group", stat="z", suffix="statmap", **_GR)
GROUP_THR = bids_path(
    f"{OUT}/group", stat="z", desc="thresholded", suffix="statmap", **_GR
)
GROUP_DESIGN = bids_path(
    f"{OUT}/group",
    task=TASK,
    contrast="{contrast}",
    model="{model}",
    suffix="design",
    extension=".tsv",
)
GROUP_MASK = bids_path(
    f"{OUT}/group", task=TASK, space=SPACE, res=RES, desc="group", suffix="mask"
)
OVERLAP_MODEL = clean_contrast_name(" and ".join(config["group"]["overlap"]))
OVERLAP_CONTRAST = config["group"]["regressions"][config["group"]["overlap"][0]][
    "contrast"
]
GROUP_OVERLAP = bids_path(
    f"{OUT}/group",
    task=TASK,
    space=SPACE,
    res=RES,
    contrast=OVERLAP_CONTRAST,
    model=OVERLAP_MODEL,
    stat="z",
    desc="conjunction",
    suffix="statmap",
)
BEHAVIOUR = bids_path(
    f"{OUT}/group/behaviour",
    desc="{x}X{y}".format(**config["behaviour"]),
    suffix="correlation",
    extension=".json",
)


def sidecar(path):
    """The JSON sidecar of a data file template (declared, so storage plugins carry it)."""
    return str(sidecar_path(path))


PREPROC_SIDECARS = {f"{key}_sidecar": sidecar(path) for key, path in PREPROC.items()}

# Maps NiMARE writes for each estimate (its own names), declared as outputs.
_FWE = "level-{level}_corr-FWE_method-montecarlo"
ALE_MAPS = [
    "stat",
    "p",
    "z",
    "logp",
    *(
        f"{kind}_desc-{desc}_{_FWE.format(level='cluster')}"
        for kind in ("z", "logp")
        for desc in ("size", "mass")
    ),
    *(f"{kind}_{_FWE.format(level='voxel')}" for kind in ("z", "logp")),
]
MACM_MAPS = [
    "stat",
    "p",
    "z",
    "logp",
    *(f"{kind}_{_FWE.format(level='voxel')}" for kind in ("z", "logp")),
]
CONTRAST_MAPS = [
    f"{kind}_desc-{group}"
    for kind in ("stat", "p", "z", "logp")
    for group in ("group1", "group2", "group1MinusGroup2")
]


# ------------------------------------------------------------------ input functions
def get_subject_runs(template):
    """Input function: ``template`` expanded over one subject's runs."""

    def _expand(wildcards):
        return expand(template, sub=wildcards.sub, run=RUNS[wildcards.sub])

    return _expand


def get_firstlevel_template(wildcards):
    """First-level map file name of one subject, with {contrast} and {stat} left to fill
    (the script writes it beside its declared outputs, wherever storage puts them)."""
    return Path(FIRSTLEVEL_MAP).name.replace("{sub}", wildcards.sub)


def get_preproc_workdir(wildcards, output):
    """nipype's working directory of one run: ``<output_dir>/work/preproc/...``, beside the
    declared outputs (so it also works when a storage plugin relocates them)."""
    root = Path(output.bold).parents[3]
    return str(root / "work" / "preproc" / f"sub-{wildcards.sub}_run-{wildcards.run}")


def get_group_maps(wildcards):
    """First-level effect maps of every subject for the wildcard's contrast."""
    contrast = get_model_contrast(wildcards)
    return expand(FIRSTLEVEL_MAP, sub=SUBJECTS, contrast=contrast, stat="effect")


def get_model_contrast(wildcards):
    """The first-level contrast a group model tests."""
    if wildcards.model == "onesample":
        return wildcards.contrast
    return config["group"]["regressions"][wildcards.model]["contrast"]


def get_covariate(wildcards):
    """participants.tsv column of a regression model (None for one-sample models)."""
    if wildcards.model == "onesample":
        return None
    return config["group"]["regressions"][wildcards.model]["covariate"]


def get_overlap_inputs(wildcards):
    """Thresholded maps of the regressions that enter the overlap."""
    return [
        GROUP_THR.format(contrast=OVERLAP_CONTRAST, model=name)
        for name in config["group"]["overlap"]
    ]


def get_final_output():
    """Every final product of the workflow."""
    group = config["group"]
    targets = [
        f"{OUT}/{stage}/dataset_description.json"
        for stage in ("preproc", "firstlevel", "group", "meta", "macm")
    ]
    targets += expand(GROUP_THR, contrast=group["onesample"], model="onesample")
    targets += [
        GROUP_THR.format(contrast=spec["contrast"], model=name)
        for name, spec in group["regressions"].items()
    ]
    targets.append(GROUP_OVERLAP)
    targets.append(BEHAVIOUR)
    targets += get_meta_output()
    return targets


def _meta_dataset(category):
    """NiMARE JSON coordinate file of one category: simulated, or given in config."""
    if config["meta"]["source"] == "simulate":
        return f"{OUT}/meta/sourcedata/desc-{category}_coordinates.json"
    return config["meta"]["inputs"][category]


def get_meta_dataset(wildcards):
    """Input of meta_ale: the coordinate file of ``wildcards.category``."""
    return _meta_dataset(wildcards.category)


def get_meta_datasets(wildcards):
    """Input of meta_contrast: all coordinate files, in config order (group 1 first)."""
    return [_meta_dataset(category) for category in config["meta"]["categories"]]


def get_meta_output():
    """Final products of the meta-analysis and MACM stages."""
    return [
        *expand(
            f"{OUT}/meta/ale/meta-{{category}}_z_desc-thresholded.nii.gz",
            category=list(config["meta"]["categories"]),
        ),
        f"{OUT}/meta/conjunction/meta-conjunction_z_desc-thresholded.nii.gz",
        f"{OUT}/meta/contrast/meta-contrast_z_desc-group1GtGroup2Thresholded.nii.gz",
        f"{OUT}/meta/contrast/meta-contrast_z_desc-group2GtGroup1Thresholded.nii.gz",
        f"{OUT}/macm/meta-macm_z_desc-thresholded.nii.gz",
        f"{OUT}/macm/meta-macm_experiments.tsv",
    ]
