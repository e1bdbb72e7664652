# Configuration checks, input discovery, path templates and input functions.
# The only rule file with Python logic; the other .smk files stay declarative.

from functools import lru_cache
from pathlib import Path

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.bids import bids_path, clean_contrast_name, sidecar_path
from mirrorflow.io.config import (
    check_config,
    check_finite,
    check_output_dir,
    group_models,
    inference_settings,
    resolve_bundled,
)
from mirrorflow.io.layout import (
    StudyIndex,
    index_bids,
    index_fmriprep,
    index_preprocessed,
    select_runs,
)
from mirrorflow.io.paths import StudyPaths
from mirrorflow.io.templates import TEMPLATE_SPACE
from mirrorflow.meta.inputs import check_category, check_distinct_experiments
from mirrorflow.meta.outputs import (
    ALE_MAPS,
    CONTRAST_MAPS,
    MACM_MAPS,
    contrast_directions,
    early_stop_settings,
)
from mirrorflow.meta.seeds import check_seeds
from mirrorflow.qc.metrics import read_included_runs
from mirrorflow.resources import per_attempt
from snakemake.logging import logger
from snakemake.utils import validate

# The merged config (config files were read strictly in Snakefile; values given with
# --config here: .nan, .inf), the schema and the references between keys.
check_finite(config)
validate(config, "../config/config.schema.yaml")
check_config(config)
# Inputs are local files, read at parse time; with a default storage provider (cloud)
# relative paths name objects in the bucket, and the jobs check what they read.
LOCAL_FILES = workflow.storage_settings.default_storage_provider is None
# The workflow's folder (this file is in its rules/): its bundled Sleuth sets and
# Neurosynth copy are found from any working folder, e.g. when it is used as a module.
WORKFLOW_DIR = Path(str(workflow.current_basedir)).parent
if LOCAL_FILES:
    resolve_bundled(config, WORKFLOW_DIR)

OUT = config["output_dir"]
_study = config["study"]
TASK = _study["task"]
RES = str(config["preproc"]["resolution"])
SOURCE = _study["source"]
SIMULATED = SOURCE == "simulate"
SIM_DIR = f"{OUT}/sourcedata/simulated"
# Input layout: "raw" (BIDS, preprocessed here), "fmriprep" (derivatives, imported) or
# "preprocessed" (another pipeline's normalised series, imported).
if SIMULATED:
    LAYOUT = config["simulation"]["layout"]
else:
    LAYOUT = "raw" if SOURCE == "bids" else SOURCE
# Another pipeline's series: the folder of its pattern before the first placeholder.
PREPROCESSED_DIR = (
    str(Path(_study["preprocessed"]["bold"].split("{")[0]).parent)
    if LAYOUT == "preprocessed"
    else None
)
if not SIMULATED:
    check_output_dir(
        OUT,
        {
            "study.bids_dir": _study["bids_dir"],
            "study.fmriprep_dir": (
                _study["fmriprep_dir"] if LAYOUT == "fmriprep" else None
            ),
            "study.preprocessed.bold": PREPROCESSED_DIR,
        },
    )
# Imported series without a confounds table: no motion regressors, no FD exclusion.
NO_MOTION = LAYOUT == "preprocessed" and not _study["preprocessed"]["confounds"]

# ------------------------------------------------------------------ the dataset, indexed once
if SIMULATED:
    BIDS_DIR = f"{SIM_DIR}/bids"
    FMRIPREP_DIR = f"{SIM_DIR}/fmriprep"
    # The simulator writes fMRIPrep-layout series on the template grid at 4 mm.
    FMRIPREP_SPACE, FMRIPREP_RES = TEMPLATE_SPACE, "4"
    _sim = config["simulation"]
    # Everything the simulator writes; study.subjects and study.runs select from it.
    SIM_INDEX = StudyIndex(
        runs={
            f"{i:02d}": [(None, str(r)) for r in range(1, _sim["n_runs"] + 1)]
            for i in range(1, _sim["n_subjects"] + 1)
        }
    )
    SIM_INDEX.t1w = {
        sub: f"{BIDS_DIR}/sub-{sub}/anat/sub-{sub}_T1w.nii.gz" for sub in SIM_INDEX.runs
    }
    INDEX = select_runs(
        SIM_INDEX,
        subjects=_study["subjects"],
        runs=_study["runs"],
        where="the simulated study",
    )
else:
    BIDS_DIR = _study["bids_dir"]
    FMRIPREP_DIR = _study["fmriprep_dir"]
    FMRIPREP_SPACE, FMRIPREP_RES = _study["fmriprep_space"], _study["fmriprep_res"]
    _selection = dict(
        task=TASK,
        subjects=_study["subjects"],
        sessions=_study["sessions"],
        runs=_study["runs"],
        filters=_study["filters"],
    )
    if LAYOUT == "raw":
        INDEX = index_bids(
            BIDS_DIR,
            t1w_per_session=config["preproc"]["t1w"] == "session",
            **_selection,
        )
    elif LAYOUT == "preprocessed":
        FMRIPREP_SPACE = _study["preprocessed"]["space"]
        _selection.pop("filters")
        INDEX = index_preprocessed(
            _study["preprocessed"], bids_dir=BIDS_DIR, **_selection
        )
    else:
        INDEX = index_fmriprep(
            FMRIPREP_DIR,
            bids_dir=BIDS_DIR,
            space=FMRIPREP_SPACE,
            cohort=_study["fmriprep_cohort"],
            res=FMRIPREP_RES,
            **_selection,
        )
SPACE = TEMPLATE_SPACE if LAYOUT == "raw" else FMRIPREP_SPACE
# The derivatives' source dataset (dataset_description.json's SourceDatasets).
if LAYOUT == "preprocessed":
    SOURCE_DIR = PREPROCESSED_DIR
else:
    SOURCE_DIR = BIDS_DIR if LAYOUT == "raw" else FMRIPREP_DIR
SUBJECTS = INDEX.subjects
HAS_SES = INDEX.has_sessions
# Parallel lists of every (subject, [session,] run) for expand(..., zip, **RUN_PAIRS).
RUN_PAIRS = INDEX.run_fields()
# First-level models: one of all a participant's runs ("across" sessions), or one per
# session ("each"), the participant's maps then their fixed effects (firstlevel_fixed).
FL_EACH = config["firstlevel"]["sessions"] == "each"
if FL_EACH and not HAS_SES:
    raise ConfigError(
        "firstlevel.sessions is 'each' (a model per session) but the study has no sessions"
    )
# Raw data: one T1w per participant, or each session's own (preproc.t1w: session).
ANAT_EACH = LAYOUT == "raw" and config["preproc"]["t1w"] == "session"
if ANAT_EACH and not HAS_SES:
    raise ConfigError(
        "preproc.t1w is 'session' (a T1w per session) but the study has no sessions"
    )


wildcard_constraints:
    sub="[A-Za-z0-9]+",
    ses="[A-Za-z0-9]+",
    run="[A-Za-z0-9]+",
    contrast="[A-Za-z0-9]+",
    model="[A-Za-z0-9]+",
    shard="[0-9]+",
    category="|".join(config["meta"]["categories"]),


# ------------------------------------------------------------------ path templates
# File names of the study half (mirrorflow.io.paths), wildcards left for Snakemake.
PATHS = StudyPaths(
    OUT,
    task=TASK,
    space=SPACE,
    res=RES,
    sessions=HAS_SES,
    anat_sessions=ANAT_EACH,
    model_sessions=FL_EACH,
)
RUN_ID, ANAT_ID, GLM_ID = PATHS.run_id, PATHS.anat_id, PATHS.glm_id
# The raw dataset's (where the simulator writes them) and fMRIPrep's files of a run.
_RAW = PATHS.raw(BIDS_DIR)
BOLD, EVENTS, T1W = _RAW["bold"], _RAW["events"], _RAW["t1w"]
FMRIPREP = PATHS.fmriprep(FMRIPREP_DIR, FMRIPREP_SPACE, FMRIPREP_RES)
PARTICIPANTS = (
    f"{BIDS_DIR}/participants.tsv"
    if SIMULATED or not _study["participants"]
    else _study["participants"]
)
ANAT = PATHS.anat()
PREPROC = PATHS.preproc()
QC = PATHS.qc()
QC_TABLE = PATHS.qc_table()
# What the group stage reads of a participant; the GLM's own outputs (each session's,
# then their fixed effects, with firstlevel.sessions: each).
FIRSTLEVEL = PATHS.firstlevel()
FIRSTLEVEL_MAP, FIRSTLEVEL_MASK = FIRSTLEVEL["map"], FIRSTLEVEL["mask"]
GLM = PATHS.glm()
GLM_MAP, GLM_MASK, DESIGN, DESIGN_FIGURE = (
    GLM[key] for key in ("map", "mask", "design", "design_figure")
)
GLM_LABELS = {"subject": "sub-{sub}", **({"session": "ses-{ses}"} if FL_EACH else {})}
GROUP_Z = PATHS.group(stat="z")
GROUP_THR = PATHS.group(stat="z", desc="thresholded")
GROUP_DESIGN = PATHS.group(suffix="design", extension=".tsv", std=False)
GROUP_CLUSTERS = PATHS.group(desc="thresholded", suffix="clusters", extension=".tsv")
GROUP_LOGP = PATHS.group(stat="logp", desc="fwe")
GROUP_NULL = PATHS.group(
    shard="{shard}", suffix="null", extension=".npz", std=False, folder="group/nulls"
)
GROUP_MASK = PATHS.group(desc="group", suffix="mask", contrast=None, model=None)
group_figure = PATHS.group_figure
OVERLAP_MODEL = clean_contrast_name(" and ".join(config["group"]["overlap"]))
OVERLAP_CONTRAST = config["group"]["regressions"][config["group"]["overlap"][0]][
    "contrast"
]
GROUP_OVERLAP = PATHS.group(
    contrast=OVERLAP_CONTRAST, model=OVERLAP_MODEL, stat="z", desc="conjunction"
)
OVERLAP_CLUSTERS = PATHS.group(
    contrast=OVERLAP_CONTRAST,
    model=OVERLAP_MODEL,
    desc="conjunction",
    suffix="clusters",
    extension=".tsv",
    std=False,
)


def group_report(
    path, view, *, caption, contrast="{contrast}", model="{model}", subcategory=None
):
    """``path`` marked for the report's group maps, labelled by contrast, model and view
    (subcategory: the contrast and model unless given)."""
    return report(
        path,
        caption=f"../report/{caption}.rst",
        category="4. Group maps",
        subcategory=subcategory or f"{contrast} {model}",
        labels={"contrast": contrast, "model": model, "view": view},
    )


OVERLAP_FIGURES = {
    view: group_figure(
        view, contrast=OVERLAP_CONTRAST, model=OVERLAP_MODEL, desc="conjunction"
    )
    for view in ("glassbrain", "slices")
}
OVERLAP_REPORT = dict(
    caption="overlap",
    contrast=OVERLAP_CONTRAST,
    model=OVERLAP_MODEL,
    subcategory="overlap",
)
# (contrast, model) -> spec of every group model (mirrorflow.io.config.group_models).
GROUP_MODELS = group_models(config)
INFERENCE = config["group"]["inference"]
PERMUTATION = INFERENCE["method"] == "permutation"
# Each rule gets only the inference settings it reads (no reruns for the others).
INFERENCE_NULL = inference_settings(INFERENCE, "null") if PERMUTATION else None
INFERENCE_THRESHOLD = inference_settings(INFERENCE, "threshold")
BEHAVIOUR = bids_path(
    f"{OUT}/group/behaviour",
    desc="{x}X{y}".format(**config["behaviour"]),
    suffix="correlation",
    extension=".json",
)
BEHAVIOUR_FIGURE = bids_path(
    f"{OUT}/group/behaviour",
    desc="{x}X{y}".format(**config["behaviour"]),
    suffix="scatter",
    extension=".png",
)
# The study report's own outputs (besides the figures and tables of each stage).
_REP = f"{OUT}/report"
RUNTIMES = f"{_REP}/desc-runtimes_jobs.tsv"
RUNTIMES_SUMMARY = f"{_REP}/desc-runtimes_rules.tsv"
RUNTIMES_FIGURE = f"{_REP}/desc-runtimes_rules.png"
METHODS = f"{_REP}/methods.html"
REGIONS = f"{_REP}/desc-literature_regions.tsv"


# ------------------------------------------------------------------ logs and benchmarks
# Each rule's job name: its log is <output_dir>/logs/<rule>/<job>.log and its benchmark
# (runtimes in the report) the same with .bench.tsv, both derived here only.
JOB_NAMES = {
    "simulate_study": "simulate_study",
    "preproc_anat": ANAT_ID,
    "preproc_bold": RUN_ID,
    "preproc_import": RUN_ID,
    "preproc_qc": RUN_ID,
    "preproc_qc_table": "preproc_qc_table",
    "derivatives_description": "{stage}",
    "firstlevel_glm": GLM_ID,
    "firstlevel_fixed": "sub-{sub}",
    "group_mask": "group_mask",
    "group_model": "contrast-{contrast}_model-{model}",
    "group_null": "contrast-{contrast}_model-{model}_shard-{shard}",
    "group_threshold": "contrast-{contrast}_model-{model}",
    "group_overlap": "group_overlap",
    "group_behaviour": "group_behaviour",
    "meta_simulate": "meta_simulate",
    "meta_inputs": "meta-{category}",
    "meta_ale_null": "meta-{category}_shard-{shard}",
    "meta_ale": "meta-{category}",
    "meta_contributions": "meta-{category}",
    "meta_conjunction": "meta-conjunction",
    "meta_contrast_null": "meta-contrast_shard-{shard}",
    "meta_contrast": "meta-contrast",
    "meta_clusters": "{folder}/meta-{name}",
    "macm_reference": "macm_reference",
    "macm_seed": "meta-macm",
    "macm_null": "meta-macm_shard-{shard}",
    "macm_ale": "meta-macm",
    "report_runtimes": "report_runtimes",
    "report_methods": "report_methods",
}


def log_file(rule):
    """The log of a job of ``rule``: ``<output_dir>/logs/<rule>/<job>.log``."""
    return f"{OUT}/logs/{rule}/{JOB_NAMES[rule]}.log"


def benchmark_file(rule):
    """The benchmark of a job of ``rule``, beside its log (``.bench.tsv``)."""
    return f"{OUT}/logs/{rule}/{JOB_NAMES[rule]}.bench.tsv"


# participants.tsv columns that the group stage reads: numeric and complete.
PARTICIPANT_COLUMNS = sorted(
    {config["behaviour"]["x"], config["behaviour"]["y"]}
    | {spec["covariate"] for spec in config["group"]["regressions"].values()}
    | {
        c
        for spec in config["group"]["regressions"].values()
        for c in spec.get("nuisance", [])
    }
)


# A user's participants.tsv is read when the workflow is parsed, so a dry run sees it: a
# score that is neither a number nor n/a stops the workflow there; an n/a score leaves its
# participant out of the regressions and the correlation that read that column, and only
# those. (The simulator writes complete scores, and with a default storage provider the
# table is in the bucket: there the jobs check it.)
if SIMULATED or not LOCAL_FILES:
    SCORES = None
else:
    from mirrorflow.io.validate import check_participants  # pandas: user datasets only

    SCORES = check_participants(
        PARTICIPANTS, columns=PARTICIPANT_COLUMNS, subjects=SUBJECTS, missing=True
    )


def scored(subjects, columns):
    """``(kept, left_out)``: the ``subjects`` with a score in every one of ``columns``,
    and ``{"sub-<label>": [columns without a score]}`` for the others."""
    if SCORES is None or not columns:
        return list(subjects), {}
    kept, left_out = [], {}
    for sub in subjects:
        row = SCORES.loc[f"sub-{sub}", list(columns)]
        if row.notna().all():
            kept.append(sub)
        else:
            left_out[f"sub-{sub}"] = [c for c in columns if row.isna()[c]]
    return kept, left_out


def model_columns(spec):
    """participants.tsv columns of a group model: a regression's covariate and nuisance."""
    if spec["kind"] != "regression":
        return []
    return [spec["covariate"], *spec.get("nuisance", [])]


def sidecar(path):
    """The JSON sidecar of a data file template (declared, so storage plugins carry it)."""
    return str(sidecar_path(path))


PREPROC_SIDECARS = {f"{key}_sidecar": sidecar(path) for key, path in PREPROC.items()}
ANAT_SIDECARS = {f"{key}_sidecar": sidecar(path) for key, path in ANAT.items()}

# Files the simulator writes: raw BIDS, or events and participants beside fMRIPrep-layout
# derivatives.
if SIMULATED:
    SIM_SUBJECTS = SIM_INDEX.subjects
    SIM_RUN_PAIRS = SIM_INDEX.run_fields()
    SIM_OUTPUTS = dict(
        description=f"{BIDS_DIR}/dataset_description.json",
        participants=PARTICIPANTS,
        participants_sidecar=f"{BIDS_DIR}/participants.json",
        task_sidecar=f"{BIDS_DIR}/task-{TASK}_bold.json",
        events=expand(EVENTS, zip, **SIM_RUN_PAIRS),
        truth=directory(f"{SIM_DIR}/truth"),
    )
    if LAYOUT == "raw":
        SIM_OUTPUTS.update(
            bold=expand(BOLD, zip, **SIM_RUN_PAIRS),
            bold_sidecars=expand(sidecar(BOLD), zip, **SIM_RUN_PAIRS),
            t1w=expand(T1W, sub=SIM_SUBJECTS),
            t1w_sidecars=expand(sidecar(T1W), sub=SIM_SUBJECTS),
        )
    else:
        SIM_OUTPUTS.update(
            fmriprep_description=f"{FMRIPREP_DIR}/dataset_description.json",
            **{
                f"fmriprep_{key}": expand(path, zip, **SIM_RUN_PAIRS)
                for key, path in FMRIPREP.items()
            },
            fmriprep_sidecars=expand(
                [sidecar(path) for path in FMRIPREP.values()], zip, **SIM_RUN_PAIRS
            ),
        )


# ------------------------------------------------------------------ meta-analysis paths
# Every category's input is checked now, before any job: a malformed Sleuth or NiMARE
# file stops the workflow here with the file, the line and the problem. With a default
# storage provider (cloud) the files are in the bucket: meta_inputs checks them there.
for _label, _spec in config["meta"]["categories"].items():
    check_category(_label, _spec, read_file=LOCAL_FILES)
# The subtraction refuses two categories that share an experiment id: refused here.
check_distinct_experiments(
    config["meta"]["categories"],
    n_simulated=config["meta"]["simulate"]["n_experiments"],
    read_file=LOCAL_FILES,
)
# MACM seeds: spheres on the template grid, mask files readable and not empty.
check_seeds(config["macm"]["seeds"])
META_CATEGORIES = list(config["meta"]["categories"])
# Planted foci of the categories the simulator writes (format simulate).
SIM_CATEGORIES = {
    label: spec["foci"]
    for label, spec in config["meta"]["categories"].items()
    if spec["format"] == "simulate"
}
META_SIMULATED = f"{OUT}/meta/sourcedata/simulated/desc-{{category}}_coordinates.json"
META_TRUTH = f"{OUT}/meta/sourcedata/simulated/desc-truth_foci.json"
META_COORDS = f"{OUT}/meta/sourcedata/desc-{{category}}_coordinates.json"
META_COORDS_SUMMARY = f"{OUT}/meta/sourcedata/desc-{{category}}_summary.json"
MACM_REFERENCE = f"{OUT}/macm/reference/data-neurosynth_version-7_dataset.pkl"
# Subtraction directions, e.g. mimicryGtContagion and contagionGtMimicry.
CONTRAST_DIRECTIONS = contrast_directions(META_CATEGORIES)
# Output prefix of every thresholded map (its tables and figure share the prefix).
META_PREFIX = {
    **{label: f"{OUT}/meta/ale/meta-{label}" for label in META_CATEGORIES},
    "conjunction": f"{OUT}/meta/conjunction/meta-conjunction",
    **{d: f"{OUT}/meta/contrast/meta-{d}" for d in CONTRAST_DIRECTIONS},
    "macm": f"{OUT}/macm/meta-macm",
}
# Every map NiMARE writes for an estimate, {map} from ALE_MAPS, CONTRAST_MAPS, MACM_MAPS.
ALE_MAP = f"{OUT}/meta/ale/meta-{{category}}_{{map}}.nii.gz"
CONTRAST_MAP = f"{OUT}/meta/contrast/meta-contrast_{{map}}.nii.gz"
MACM_MAP = f"{OUT}/macm/meta-macm_{{map}}.nii.gz"
META_THR = {
    name: f"{prefix}_z_desc-thresholded.nii.gz" for name, prefix in META_PREFIX.items()
}
ALE_THR = f"{OUT}/meta/ale/meta-{{category}}_z_desc-thresholded.nii.gz"
META_CONTRIBUTIONS = f"{OUT}/meta/ale/meta-{{category}}_contributions.tsv"
MACM_SEED = f"{OUT}/macm/seed/meta-macm_desc-seed_mask.nii.gz"
MACM_EXPERIMENTS = f"{OUT}/macm/meta-macm_experiments.tsv"
MACM_CONTRIBUTIONS = f"{OUT}/macm/meta-macm_contributions.tsv"
# Shards of the Monte Carlo nulls (mirrorflow.meta.null; the subtraction's: NiMARE's
# permutations), merged by meta_ale, meta_contrast and macm_ale.
ALE_NULL = f"{OUT}/meta/ale/nulls/meta-{{category}}_shard-{{shard}}_null.npz"
# Early stop of the ALE and MACM nulls: tolerance, FWE alpha and level (None: off).
ALE_STOP = early_stop_settings(config["meta"]["ale"], ("early_stop", "alpha", "level"))
MACM_STOP = early_stop_settings(config["macm"])
CONTRAST_NULL = f"{OUT}/meta/contrast/nulls/meta-contrast_shard-{{shard}}_null.npz"
MACM_NULL = f"{OUT}/macm/nulls/meta-macm_shard-{{shard}}_null.npz"


# ------------------------------------------------------------------ input functions
def check_inputs():
    """Check every input of the study before the first job (onstart; not in dry runs):
    images (header, completeness, 4D, TR; values finite, a signal over time) and events
    against their run and the contrasts (the scores in participants.tsv were checked at
    parse: SCORES). One InputDataError lists every bad file; the run stops with it.
    The simulated study is valid by construction; with a default storage provider the
    files are in the bucket, and each job checks its own."""
    if SIMULATED or not LOCAL_FILES:
        return
    from mirrorflow.glm.firstlevel import contrast_conditions
    from mirrorflow.io.validate import validate_inputs  # nibabel, pandas: not at parse

    keys = [(sub, ses, run) for sub in SUBJECTS for ses, run in INDEX.runs[sub]]
    if LAYOUT != "raw":
        bold = [INDEX.imported[key]["bold"] for key in keys]
    else:
        bold = [INDEX.bold[key] for key in keys]
    runs = [{"bold": b, "events": _events_file(*key)} for b, key in zip(bold, keys)]
    checked = validate_inputs(
        runs=runs,
        t1w=(
            [_t1w_file(sub, ses) for sub, ses in _anat_units()]
            if LAYOUT == "raw"
            else []
        ),
        conditions=config["firstlevel"]["conditions"],
        modulation=config["firstlevel"]["modulation"],
        required=contrast_conditions(config["firstlevel"]["contrasts"]),
        raw=LAYOUT == "raw",
        n_jobs=workflow.cores or 1,
    )
    logger.info(f"Inputs checked: {len(checked['files'])} files.")


def _anat_units():
    """(subject, session) of every anatomical job: the session None for one per subject."""
    if ANAT_EACH:
        return sorted(INDEX.session_t1w)
    return [(sub, None) for sub in SUBJECTS]


def _t1w_file(sub, ses):
    """The subject's (or the session's: preproc.t1w) T1w image, as the index found it."""
    return INDEX.session_t1w[(sub, ses)] if ANAT_EACH else INDEX.t1w[sub]


def get_t1w(wildcards):
    """Input function: :func:`_t1w_file` of the job."""
    return _t1w_file(wildcards.sub, wildcards.get("ses"))


def _run_key(wildcards):
    return (wildcards.sub, wildcards.get("ses"), wildcards.run)


def get_bold(wildcards):
    """The run's raw BOLD series, as the index found it (``.nii`` or ``.nii.gz``, with
    the acquisition that study.filters selects); the simulator's path otherwise."""
    return INDEX.bold.get(_run_key(wildcards)) or BOLD.format(**dict(wildcards.items()))


def get_bold_sidecars(wildcards):
    """The JSON sidecars that apply to the run's series by BIDS inheritance (dataset,
    subject, session and run level), as job inputs: a changed value reruns the run's
    preprocessing or import and what depends on it (the simulated study: the sidecars the
    simulator writes)."""
    if SIMULATED and LAYOUT == "raw":
        return [f"{BIDS_DIR}/task-{TASK}_bold.json", sidecar(get_bold(wildcards))]
    if SIMULATED:
        return [sidecar(get_fmriprep("bold")(wildcards))]
    return INDEX.sidecars.get(_run_key(wildcards), [])


def get_fmriprep(key):
    """Input function of the run's imported file ``key`` (bold, mask, confounds), as the
    index found it: fMRIPrep's (the confounds table under its release's name) or another
    pipeline's (none where study.preprocessed names no mask or table); the simulator's
    path otherwise."""

    def fmriprep_file(wildcards):
        found = INDEX.imported.get(_run_key(wildcards))
        if found:
            return found[key] or []  # another pipeline's run may have no mask or table
        return FMRIPREP[key].format(**dict(wildcards.items()))

    return fmriprep_file


def _events_file(sub, ses, run):
    return INDEX.events.get((sub, ses, run)) or EVENTS.format(
        sub=sub, run=run, **({"ses": ses} if HAS_SES else {})
    )


def _model_runs(wildcards):
    """The included runs of one first-level model: the participant's, or one session's
    (firstlevel.sessions: each)."""
    pairs = included_runs()[wildcards.sub]
    return [pair for pair in pairs if pair[0] == wildcards.ses] if FL_EACH else pairs


def get_model_events(wildcards):
    """Input function: the events files of one first-level model's included runs (found
    by the BIDS inheritance principle in raw datasets)."""
    return [
        _events_file(wildcards.sub, ses, run) for ses, run in _model_runs(wildcards)
    ]


@lru_cache(maxsize=4)
def _read_included(table, mtime):
    return read_included_runs(table)


def included_runs():
    """``{subject: [(ses, run), ...]}`` of the runs that pass QC (the QC checkpoint)."""
    table = checkpoints.preproc_qc_table.get().output.table
    return _read_included(table, Path(table).stat().st_mtime)


def get_included_subjects(wildcards=None):
    """Subjects with at least one run that passes QC, sorted."""
    return sorted(included_runs())


def _expand_runs(template, sub, pairs):
    fill = dict(sub=[sub] * len(pairs), run=[run for _, run in pairs])
    if HAS_SES:
        fill["ses"] = [ses for ses, _ in pairs]
    return expand(template, zip, **fill)


def get_model_runs(template):
    """Input function: ``template`` expanded over one first-level model's included runs."""

    def _expand(wildcards):
        return _expand_runs(template, wildcards.sub, _model_runs(wildcards))

    return _expand


def get_map_template(template):
    """Input function: the file name of ``template`` (a map of one model) with {contrast}
    and {stat} left to fill (the script writes it beside its declared outputs, wherever
    storage puts them)."""

    def name(wildcards):
        name = Path(template).name
        for key, value in wildcards.items():
            name = name.replace(f"{{{key}}}", value)
        return name

    return name


def _sessions(sub):
    """The sessions of a participant with an included run, sorted."""
    return sorted({ses for ses, _ in included_runs()[sub]})


def get_session_files(template, **fill):
    """Input function of the fixed-effects rule: ``template`` for each session of the
    participant, and each first-level contrast when ``template`` has {contrast} (contrast
    by contrast, sessions in order within each)."""

    def files(wildcards):
        contrasts = (
            config["firstlevel"]["contrasts"] if "{contrast}" in template else [None]
        )
        return [
            template.format(sub=wildcards.sub, ses=ses, contrast=contrast, **fill)
            for contrast in contrasts
            for ses in _sessions(wildcards.sub)
        ]

    return files


def _output_root(path):
    """The output folder of a declared output (``<root>/preproc/...``), wherever a storage
    plugin put it."""
    path = Path(path)
    return next(p.parent for p in path.parents if p.name == "preproc")


def get_anat_workdir(wildcards, output):
    """nipype's working directory of one subject's (or session's) T1w, under the output
    folder."""
    return str(
        _output_root(output.brain) / "work" / "anat" / ANAT_ID.format(**wildcards)
    )


def _preproc_work(path):
    """``<output_dir>/work/preproc`` of a declared output of a run."""
    return _output_root(path) / "work" / "preproc"


def get_preproc_workdir(wildcards, output):
    """nipype's working directory of one run: ``<output_dir>/work/preproc/<run>``, beside
    the declared outputs (so it also works when a storage plugin relocates them)."""
    return str(_preproc_work(output.bold) / RUN_ID.format(**wildcards))


def get_templates_workdir(wildcards, output):
    """The templates folder that the BOLD runs share (``templates`` beside their working
    directories: mirrorflow.preproc.run), for the QC figures of one run."""
    return str(_preproc_work(output.metrics) / "templates")


def get_qc_run_keys(wildcards=None):
    """(sub, ses, run) of every run, in the order of the QC checkpoint's inputs."""
    sessions = RUN_PAIRS.get("ses", [None] * len(RUN_PAIRS["sub"]))
    return [list(key) for key in zip(RUN_PAIRS["sub"], sessions, RUN_PAIRS["run"])]


def get_group_masks(wildcards):
    """First-level masks of the included subjects."""
    return expand(FIRSTLEVEL_MASK, sub=get_included_subjects())


def get_group_model(wildcards):
    """The spec of the wildcards' group model."""
    return GROUP_MODELS[(wildcards.contrast, wildcards.model)]


def get_model_subjects(wildcards):
    """Included subjects that enter the wildcards' group model: for a regression, those
    with every score it reads."""
    model = get_group_model(wildcards)
    return scored(get_included_subjects(), model_columns(model))[0]


def get_model_left_out(wildcards):
    """Included subjects a regression leaves out for want of a score, with the columns."""
    model = get_group_model(wildcards)
    return scored(get_included_subjects(), model_columns(model))[1]


def get_behaviour_subjects(wildcards):
    """Included subjects with both scores of the behavioural correlation."""
    columns = [config["behaviour"]["x"], config["behaviour"]["y"]]
    return scored(get_included_subjects(), columns)[0]


def get_group_maps(wildcards):
    """First-level effect maps of the subjects that enter the wildcards' group model
    (:func:`get_model_subjects`), contrast after contrast (a paired model: all first
    maps, then all second)."""
    subjects = get_model_subjects(wildcards)
    return [
        FIRSTLEVEL_MAP.format(sub=sub, contrast=contrast, stat="effect")
        for contrast in get_group_model(wildcards)["contrasts"]
        for sub in subjects
    ]


def get_participants(wildcards):
    """participants.tsv for a regression model (its covariates), nothing otherwise: a
    changed score reruns the regressions, not the one-sample or paired maps."""
    if get_group_model(wildcards)["kind"] == "regression":
        return PARTICIPANTS
    return []


def get_ale_null_shards(wildcards):
    """The Monte Carlo null shards of one category's ALE."""
    return expand(
        ALE_NULL,
        category=wildcards.category,
        shard=range(config["meta"]["ale"]["shards"]),
    )


def get_null_shards(wildcards):
    """The permutation null shards of the wildcards' group model (none unless the
    inference method is permutation)."""
    if not PERMUTATION:
        return []
    return expand(
        GROUP_NULL,
        contrast=wildcards.contrast,
        model=wildcards.model,
        shard=range(INFERENCE["shards"]),
    )


def get_overlap_inputs(wildcards):
    """Thresholded maps of the regressions that enter the overlap."""
    return [
        GROUP_THR.format(contrast=OVERLAP_CONTRAST, model=name)
        for name in config["group"]["overlap"]
    ]


def get_final_output():
    """Every final product of the workflow."""
    targets = [
        f"{OUT}/{stage}/dataset_description.json"
        for stage in ("preproc", "firstlevel", "group", "meta", "macm")
    ]
    targets.append(QC_TABLE)
    for contrast, model in GROUP_MODELS:
        targets.append(GROUP_THR.format(contrast=contrast, model=model))
        targets.append(GROUP_CLUSTERS.format(contrast=contrast, model=model))
    targets += [GROUP_OVERLAP, OVERLAP_CLUSTERS]
    targets += [BEHAVIOUR, BEHAVIOUR_FIGURE]
    targets += get_meta_output()
    targets += [RUNTIMES, RUNTIMES_FIGURE, METHODS, REGIONS]
    return targets


def get_category_source(wildcards):
    """The file a category's coordinates are read from: its Sleuth or NiMARE file, the
    simulator's set, or the reference database (format database)."""
    spec = config["meta"]["categories"][wildcards.category]
    if spec["format"] == "simulate":
        return META_SIMULATED.format(category=wildcards.category)
    if spec["format"] == "database":
        return MACM_REFERENCE
    return spec["path"]


def get_category_datasets(wildcards):
    """Normalised coordinate sets of every category, in config order (group 1 first)."""
    return expand(META_COORDS, category=META_CATEGORIES)


def get_contrast_gates(wildcards):
    """The subtraction's gates: each category's thresholded ALE map, in config order
    (``meta.contrast.gate: main_effect``); none for ``gate: none``."""
    if config["meta"]["contrast"]["gate"] == "none":
        return []
    return expand(ALE_THR, category=META_CATEGORIES)


def get_macm_seed_inputs(wildcards):
    """Inputs of the MACM seed: the conjunction map, or the configured masks."""
    seeds = config["macm"]["seeds"]
    if seeds["kind"] == "conjunction":
        return {"conjunction": META_THR["conjunction"]}
    if seeds["kind"] == "masks":
        return {"masks": seeds["masks"]}
    return {}


def get_meta_output():
    """Final products of the meta-analysis and MACM stages: thresholded maps, cluster
    tables and glass brains, contribution tables, the MACM experiment list."""
    return [
        *META_THR.values(),
        *(f"{prefix}_clusters.tsv" for prefix in META_PREFIX.values()),
        *(f"{prefix}_glassbrain.png" for prefix in META_PREFIX.values()),
        *expand(META_CONTRIBUTIONS, category=META_CATEGORIES),
        MACM_CONTRIBUTIONS,
        MACM_EXPERIMENTS,
    ]


# ------------------------------------------------------------------ the study report
def get_benchmarks(wildcards):
    """Benchmark files of every job of the run that has one (after the QC checkpoint:
    first-level jobs exist for the included subjects only)."""
    files = [benchmark_file("simulate_study")] if SIMULATED else []
    if LAYOUT == "raw":
        files += [
            benchmark_file("preproc_anat").format(sub=sub, ses=ses)
            for sub, ses in _anat_units()
        ]
        files += expand(benchmark_file("preproc_bold"), zip, **RUN_PAIRS)
    subjects = get_included_subjects()
    files += [
        benchmark_file("firstlevel_glm").format(sub=sub, ses=ses)
        for sub in subjects
        for ses in (_sessions(sub) if FL_EACH else [None])
    ]
    for contrast, model in GROUP_MODELS:
        names = dict(contrast=contrast, model=model)
        files += expand(benchmark_file("group_model"), **names)
        files += expand(benchmark_file("group_threshold"), **names)
        if PERMUTATION:
            files += expand(
                benchmark_file("group_null"), shard=range(INFERENCE["shards"]), **names
            )
    for step in ("meta_ale", "meta_contributions"):
        files += expand(benchmark_file(step), category=META_CATEGORIES)
    files += expand(
        benchmark_file("meta_ale_null"),
        category=META_CATEGORIES,
        shard=range(config["meta"]["ale"]["shards"]),
    )
    files += expand(
        benchmark_file("meta_contrast_null"),
        shard=range(config["meta"]["contrast"]["shards"]),
    )
    files += expand(benchmark_file("macm_null"), shard=range(config["macm"]["shards"]))
    return files + [
        benchmark_file(s) for s in ("meta_contrast", "macm_reference", "macm_ale")
    ]


def get_methods_inputs(wildcards):
    """Sidecars, tables and summaries from which the methods section is written."""
    sub = get_included_subjects()[0]
    first_run = {key: values[0] for key, values in RUN_PAIRS.items()}
    firstlevel = FIRSTLEVEL_MAP.format(
        sub=sub, contrast=next(iter(config["firstlevel"]["contrasts"])), stat="z"
    )
    inputs = dict(
        qc=QC_TABLE,
        qc_sidecar=sidecar(QC_TABLE),
        # The preprocessing methods are in the confounds' and the transform's sidecars.
        bold=sidecar(PREPROC["confounds"].format(**first_run)),
        firstlevel=sidecar(firstlevel),
        group_models=[
            sidecar(GROUP_Z.format(contrast=c, model=m)) for c, m in GROUP_MODELS
        ],
        group_thresholded=[
            sidecar(GROUP_THR.format(contrast=c, model=m)) for c, m in GROUP_MODELS
        ],
        group_clusters=[
            GROUP_CLUSTERS.format(contrast=c, model=m) for c, m in GROUP_MODELS
        ],
        overlap=sidecar(GROUP_OVERLAP),
        overlap_clusters=OVERLAP_CLUSTERS,
        behaviour=BEHAVIOUR,
        summaries=expand(META_COORDS_SUMMARY, category=META_CATEGORIES),
        ale=[sidecar(META_THR[c]) for c in META_CATEGORIES],
        conjunction=sidecar(META_THR["conjunction"]),
        conjunction_clusters=f"{META_PREFIX['conjunction']}_clusters.tsv",
        contrast=[sidecar(META_THR[d]) for d in CONTRAST_DIRECTIONS],
        macm_seed=sidecar(MACM_SEED),
        macm=sidecar(META_THR["macm"]),
        macm_clusters=f"{META_PREFIX['macm']}_clusters.tsv",
        macm_experiments=MACM_EXPERIMENTS,
    )
    if LAYOUT == "raw":
        inputs["anat"] = sidecar(ANAT["xfm"].format(**first_run))
    return inputs
