"""Find the runs of a raw BIDS dataset, of fMRIPrep derivatives or of another pipeline's
preprocessed series once, for the whole workflow.

One directory listing per subject and session folder (``os.scandir``), no pybids index:
a dry run over thousands of subjects stays within a small factor of Snakemake's own DAG
time (``benchmarks/dag_scaling.py``). Every label found or selected is checked against the
BIDS label rule before it reaches a path or a shell command.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.bids import bids_name, check_label

__all__ = [
    "FILTER_ENTITIES", "NO_RUN", "StudyIndex", "index_bids", "index_fmriprep",
    "index_preprocessed",
]

#: Entities of BOLD file names that tell acquisitions of one run apart; config
#: ``study.filters`` selects one value of each (in the spirit of fMRIPrep's
#: ``--bids-filter-file``).
FILTER_ENTITIES = ("acq", "ce", "dir", "rec", "echo")
#: The run label of a series named without ``run-`` (a task with one run, as most public
#: datasets name it): the derivatives call it run-1, and their sidecars' ``Sources`` name
#: the file.
NO_RUN = "1"
#: Entities that fMRIPrep adds to a raw series' name: the other outputs of a run differ in
#: them, and its confounds table and the raw events file do not carry them.
DERIVED_ENTITIES = ("space", "cohort", "res", "desc")

_LABEL = r"[A-Za-z0-9]+"
_ENTITY = re.compile(rf"^(?P<key>[a-z]+)-(?P<value>{_LABEL})$")


@dataclass
class StudyIndex:
    """Selected runs of a study.

    ``runs[sub]`` lists ``(ses, run)`` pairs (``ses`` is None in datasets without
    sessions); ``t1w[sub]`` is the subject's T1w image, ``bold[(sub, ses, run)]`` and
    ``events[(sub, ses, run)]`` the run's BOLD series and events file as found (raw BIDS
    only: ``.nii`` or ``.nii.gz``, other entities such as ``acq`` kept);
    ``imported[(sub, ses, run)]`` the run's files preprocessed elsewhere, by key (``bold``,
    ``mask``, ``confounds``: fMRIPrep's, the table of its release; another pipeline's, as
    ``study.preprocessed`` names them, mask and confounds None where it names none);
    ``sidecars[(sub, ses, run)]`` the
    JSON sidecars that apply to the run's series (:func:`bold_sidecars`);
    ``session_t1w[(sub, ses)]`` each session's own T1w image (raw BIDS indexed with
    ``t1w_per_session``).
    """

    runs: dict[str, list[tuple[str | None, str]]]
    t1w: dict[str, str] = field(default_factory=dict)
    bold: dict[tuple, str] = field(default_factory=dict)
    events: dict[tuple, str] = field(default_factory=dict)
    imported: dict[tuple, dict[str, str | None]] = field(default_factory=dict)
    sidecars: dict[tuple, list[str]] = field(default_factory=dict)
    session_t1w: dict[tuple, str] = field(default_factory=dict)

    @property
    def has_sessions(self) -> bool:
        return any(ses is not None for pairs in self.runs.values() for ses, _ in pairs)

    @property
    def subjects(self) -> list[str]:
        return sorted(self.runs)

    def run_fields(self) -> dict[str, list[str]]:
        """Parallel lists ``sub``, ``run`` (and ``ses`` with sessions) of every run, by
        subject, for ``expand(template, zip, **fields)``."""
        pairs = [(sub, ses, run) for sub in self.subjects for ses, run in self.runs[sub]]
        fields = {"sub": [p[0] for p in pairs], "run": [p[2] for p in pairs]}
        if self.has_sessions:
            fields["ses"] = [p[1] for p in pairs]
        return fields


def select_runs(index: StudyIndex, *, subjects=(), runs=(), where="") -> StudyIndex:
    """``index`` restricted to the ``subjects`` and ``runs`` labels (empty: all); every
    selected label must exist in ``index`` (``where`` names it in the error)."""
    chosen = _select(index.runs, subjects, what="subject", where=where)
    found_runs = {run for pairs in index.runs.values() for _, run in pairs}
    kept_runs = set(_select(found_runs, runs, what="run", where=where))
    selected = StudyIndex(
        runs={sub: [p for p in index.runs[sub] if p[1] in kept_runs] for sub in chosen},
        t1w={sub: index.t1w[sub] for sub in chosen if sub in index.t1w},
        bold={key: path for key, path in index.bold.items() if key[0] in chosen},
        events={key: path for key, path in index.events.items() if key[0] in chosen},
        imported={key: files for key, files in index.imported.items() if key[0] in chosen},
        sidecars={key: files for key, files in index.sidecars.items() if key[0] in chosen},
        session_t1w={key: path for key, path in index.session_t1w.items()
                     if key[0] in chosen},
    )
    selected.runs = {sub: pairs for sub, pairs in selected.runs.items() if pairs}
    return selected


def _scan(folder: str) -> list[os.DirEntry]:
    try:
        with os.scandir(folder) as entries:
            return list(entries)
    except FileNotFoundError:
        return []


def _readable(path: str) -> str:
    """``path``, if its content is there: a broken symbolic link (a DataLad or git-annex
    file whose content was not fetched) is an error naming it."""
    if not os.path.exists(path):  # follows links
        if os.path.islink(path):
            raise InputDataError(
                f"{path}: broken symbolic link (its target {os.readlink(path)} does not "
                "exist; in a DataLad dataset, fetch the content with `datalad get`)"
            )
        raise InputDataError(f"{path}: file does not exist")
    return path


def _names(folder: Path, listings: dict) -> list[str]:
    """What ``folder`` holds, listed once per index (``listings``: the index's cache)."""
    if folder not in listings:
        listings[folder] = sorted(entry.name for entry in _scan(str(folder)))
    return listings[folder]


def _levels(folder: Path, listings: dict) -> list[Path]:
    """``folder`` and the folders above it up to the dataset root (the first with a
    dataset_description.json), nearest first: the levels of BIDS inheritance."""
    levels = [folder]
    for parent in folder.parents:
        levels.append(parent)
        if "dataset_description.json" in _names(parent, listings) or parent == parent.parent:
            break
    return levels


def bold_sidecars(bold_file, listings: dict | None = None) -> list[str]:
    """The JSON sidecars of a BOLD series by the BIDS inheritance principle, in the order
    they merge: from the dataset root (the first folder up with a
    dataset_description.json) down to the series' folder, and within a folder the less
    specific (fewer entities) first. A sidecar applies when its entities are all the
    series' own (``task-<label>_bold.json`` at the root, the run's own beside it).

    ``listings``: a cache of what each folder holds, shared by the calls of one index (the
    dataset root and subject folders are the same for all their runs: without it, each run
    lists the root again, 85% of indexing 1,000 subjects)."""
    listings = {} if listings is None else listings
    bold_file = Path(bold_file)
    entities = set(bold_file.name.split(".")[0].split("_")[:-1])
    return [
        _readable(str(folder / name))
        for folder in reversed(_levels(bold_file.parent, listings))
        for name in sorted(
            (name for name in _names(folder, listings) if name.endswith("_bold.json")
             and set(name[: -len("_bold.json")].split("_")) <= entities),
            key=lambda name: (name.count("_"), name))
    ]


def _entities(name: str, suffix: str) -> dict[str, str] | None:
    """Entities of a file name ``<key-value>_..._<suffix>``; None if it is not one."""
    if not name.endswith(suffix):
        return None
    parts = name[: -len(suffix)].split("_")
    out = {}
    for part in parts:
        match = _ENTITY.match(part)
        if not match:
            return None
        out[match["key"]] = match["value"]
    return out


def _bold_entities(name: str) -> dict[str, str]:
    """Entities of a ``*_bold.<extension>`` file name (empty if it is not one)."""
    return _entities(name, "_bold" + name.split("_bold", 1)[-1]) or {}


def _select(found, wanted, *, what, where):
    """``found`` restricted to ``wanted`` (all if empty); every wanted label must exist."""
    wanted = [check_label(str(value), what=what) for value in wanted]
    if not wanted:
        return sorted(found)
    absent = sorted(set(wanted) - set(found))
    if absent:
        raise ConfigError(f"{what}s {absent} are selected in config but absent from {where}")
    return sorted(set(wanted))


def _subject_folders(root: Path, subjects) -> list[str]:
    found = []
    for entry in _scan(str(root)):
        if entry.name.startswith("sub-") and entry.is_dir():
            found.append(check_label(entry.name[4:], what=f"subject folder in {root}"))
    return _select(found, subjects, what="subject", where=root)


def _session_folders(subject_dir: Path, sessions) -> list[str | None]:
    """Session labels of a subject (``[None]`` without session folders)."""
    found = [
        check_label(entry.name[4:], what=f"session folder in {subject_dir}")
        for entry in _scan(str(subject_dir))
        if entry.name.startswith("ses-") and entry.is_dir()
    ]
    if not found:
        if sessions:
            raise ConfigError(
                f"sessions {list(sessions)} are selected in config but {subject_dir} has no "
                "session folders"
            )
        return [None]
    wanted = [check_label(s, what="session") for s in sessions]
    return sorted(set(found) & set(wanted)) if wanted else sorted(found)


def _find_runs(func_dir: Path, *, sub, ses, task, suffixes, extra, runs,
               filters=None) -> list[tuple]:
    """(ses, run, path) of the ``suffixes`` files of ``task`` in ``func_dir``, by run.

    ``extra`` entities (fMRIPrep's space, cohort, res, desc) must match; files with other
    values of them, or with a cohort or res that ``extra`` does not name, are other outputs
    and are skipped. ``filters`` (``study.filters``) select one acquisition: a file must
    carry each filtered entity with its value. A file without a run entity is run
    :data:`NO_RUN`. A file of the task with entities the workflow does not model, or two
    files left for one run, is an error.
    """
    filters = dict(filters or {})
    required = {"sub", "task", *extra, *(["ses"] if ses else [])}
    outputs = {"res", "cohort"} if extra else set()  # other outputs of the same run
    found = {}
    for entry in _scan(str(func_dir)):
        if f"_task-{task}_" not in entry.name:
            continue
        suffix = next((x for x in suffixes if entry.name.endswith(x)), None)
        ents = _entities(entry.name, suffix) if suffix else None
        if ents is None or any(ents.get(key, value) != value for key, value in extra.items()):
            continue
        if any(ents.get(key) != value for key, value in filters.items()):
            continue  # another acquisition than the one study.filters selects
        unknown = set(ents) - required - outputs - {"run", "ses"} - set(filters)
        if unknown & set(FILTER_ENTITIES):
            raise InputDataError(
                f"{func_dir / entry.name}: entities {sorted(unknown)} tell acquisitions "
                "apart; select one in config study.filters (keys "
                f"{', '.join(FILTER_ENTITIES)}), e.g. filters: "
                f"{{{sorted(unknown)[0]}: {ents[sorted(unknown)[0]]}}}"
            )
        if unknown:
            raise InputDataError(
                f"{func_dir / entry.name}: entities {sorted(unknown)} are not supported (only "
                f"sub, ses, task, run and the study.filters entities "
                f"{', '.join(FILTER_ENTITIES)}); select one acquisition per run"
            )
        if set(ents) - set(filters) - {"run"} != required:
            continue  # e.g. another res or cohort of the same space
        if ents["sub"] != sub or ents.get("ses") != ses:
            raise InputDataError(f"{func_dir / entry.name}: entities disagree with its folder")
        run = ents.get("run", NO_RUN)
        if runs and run not in runs:
            continue
        path = str(func_dir / entry.name)
        if run in found:
            first, second = sorted([found[run], path])
            raise InputDataError(
                f"{second}: a second file for run {run} beside {first}"
                + (f" (a series named without run- is run {NO_RUN})"
                   if any("_run-" not in Path(x).name for x in (first, second)) else "")
                + "; keep one, or select one in config study.filters (keys "
                f"{', '.join(FILTER_ENTITIES)})"
            )
        found[run] = path
    return [(ses, run, found[run]) for run in sorted(found)]


def _raw_stem(name: str) -> str:
    """The entities of a BOLD file name without those fMRIPrep adds
    (:data:`DERIVED_ENTITIES`): ``sub-01_task-x_run-1`` of
    ``sub-01_task-x_run-1_space-MNI152NLin2009cAsym_desc-preproc_bold.nii.gz``."""
    return "_".join(part for part in name.split("_bold", 1)[0].split("_")
                    if part.split("-", 1)[0] not in DERIVED_ENTITIES)


def _find_events(func_dir: Path, bold_name: str, *, task, listings: dict | None = None
                 ) -> str:
    """The events file of a BOLD run by the BIDS inheritance principle: from the run's raw
    ``func_dir`` up to the dataset root, the nearest level that holds an ``*_events.tsv``
    whose entities all appear, with the same values, in the BOLD file's name (fMRIPrep's
    own entities are ignored); within one level, the most specific."""
    listings = {} if listings is None else listings
    bold = _bold_entities(bold_name)
    for folder in _levels(func_dir, listings):
        best = None
        for name in _names(folder, listings):
            ents = _entities(name, "_events.tsv")
            if ents is None or ents.get("task") != task:
                continue
            if all(bold.get(key) == value for key, value in ents.items()):
                if best is None or len(ents) > best[0]:
                    best = (len(ents), str(folder / name))
        if best is not None:
            return _readable(best[1])
    raise InputDataError(f"{func_dir / (_raw_stem(bold_name) + '_events.tsv')}: file does "
                         "not exist")


def _companions(func_dir: Path, names, present=None) -> None:
    """Each of ``names`` is a readable file in ``func_dir`` (``present``: its listing,
    when the caller has it)."""
    present = present if present is not None else {e.name for e in _scan(str(func_dir))}
    for name in names:
        if name not in present:
            raise InputDataError(f"{func_dir / name}: file does not exist")
        _readable(str(func_dir / name))


def _check_dataset(root: Path, what: str) -> None:
    if not (root / "dataset_description.json").exists():
        raise InputDataError(f"{root}: not a {what} (no dataset_description.json)")


def _func_dir(root: Path, sub, ses) -> Path:
    return root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"


def _mixed_sessions(runs, root) -> None:
    kinds = {ses is None for pairs in runs.values() for ses, _ in pairs}
    if len(kinds) > 1:
        raise InputDataError(f"{root}: some subjects have session folders and others do not")


def index_bids(
    bids_dir, *, task: str, subjects=(), sessions=(), runs=(), filters=None,
    events: bool = True, t1w_per_session: bool = False,
) -> StudyIndex:
    """Index the BOLD runs of ``task`` (and each subject's T1w) in a raw BIDS dataset.

    ``subjects``, ``sessions`` and ``runs`` restrict the selection (empty: all);
    ``filters`` (entity -> label, keys in :data:`FILTER_ENTITIES`) select one acquisition
    of each run. BOLD series may be ``.nii.gz`` or ``.nii``. A selected subject without
    runs, a run without its events file, or a subject without a T1w image is an error;
    with ``t1w_per_session``, so is a session (with runs) without its own T1w
    (``ses-<label>/anat/``).
    """
    bids_dir = Path(bids_dir)
    _check_dataset(bids_dir, "BIDS dataset")
    check_label(task, what="task")
    filters = _check_filters(filters)
    wanted_runs = {check_label(str(r), what="run") for r in runs}
    selected_subjects = _subject_folders(bids_dir, subjects)
    index = StudyIndex(runs={})
    listings = {}  # folder listings for sidecars and events, shared by the runs
    for sub in selected_subjects:
        pairs = []
        for ses in _session_folders(bids_dir / f"sub-{sub}", sessions):
            func = _func_dir(bids_dir, sub, ses)
            for ses_, run, path in _find_runs(
                func, sub=sub, ses=ses, task=task, suffixes=("_bold.nii.gz", "_bold.nii"),
                extra={}, runs=wanted_runs, filters=filters,
            ):
                index.bold[(sub, ses_, run)] = _readable(path)
                index.sidecars[(sub, ses_, run)] = bold_sidecars(path, listings)
                if events:
                    index.events[(sub, ses_, run)] = _find_events(
                        func, Path(path).name, task=task, listings=listings)
                pairs.append((ses_, run))
            if t1w_per_session and any(p[0] == ses for p in pairs):
                index.session_t1w[(sub, ses)] = _readable(_find_t1w(bids_dir, sub, ses))
        if not pairs:
            if subjects:
                raise InputDataError(f"{bids_dir / f'sub-{sub}'}: no task-{task} BOLD runs"
                                     + _filtered(filters))
            continue
        index.runs[sub] = pairs
        index.t1w[sub] = _readable(_find_t1w(bids_dir, sub))
    if not index.runs:
        raise InputDataError(f"{bids_dir}: no task-{task} BOLD runs found" + _filtered(filters))
    _mixed_sessions(index.runs, bids_dir)
    return index


def _check_filters(filters) -> dict[str, str]:
    """``study.filters``, each key a :data:`FILTER_ENTITIES` entity and each value a label
    (an integer index, e.g. ``echo: 2``, is its label)."""
    filters = {key: check_label(str(value), what=f"study.filters {key}")
               for key, value in (filters or {}).items()}
    bad = sorted(set(filters) - set(FILTER_ENTITIES))
    if bad:
        raise ConfigError(f"study.filters: entities {bad} cannot be filtered (only "
                          f"{', '.join(FILTER_ENTITIES)})")
    return filters


def _filtered(filters) -> str:
    return f" that study.filters {filters} select" if filters else ""


def _find_t1w(bids_dir: Path, sub: str, ses: str | None = None) -> str:
    """The subject's T1w image: ``anat/`` first, else the first session's ``anat/``; with
    ``ses``, that session's ``anat/`` only."""
    subject = bids_dir / f"sub-{sub}"
    if ses is not None:
        folders = [subject / f"ses-{ses}" / "anat"]
    else:
        folders = [subject / "anat"] + sorted(
            Path(entry.path) / "anat" for entry in _scan(str(subject))
            if entry.name.startswith("ses-")
        )
    for folder in folders:
        names = sorted(
            entry.name for entry in _scan(str(folder))
            if entry.name.endswith(("_T1w.nii.gz", "_T1w.nii"))
        )
        if names:
            return str(folder / names[0])
    if ses is not None:
        raise InputDataError(f"{folders[0]}: no T1w image (*_T1w.nii.gz), which "
                             "preproc.t1w: session needs in every session")
    raise InputDataError(f"{subject}: no T1w image (anat/*_T1w.nii.gz)")


def index_fmriprep(
    fmriprep_dir, *, bids_dir, task: str, space: str, res=None, cohort=None, subjects=(),
    sessions=(), runs=(), filters=None,
) -> StudyIndex:
    """Index fMRIPrep's ``desc-preproc_bold`` runs of ``task`` in ``space`` (and ``cohort``
    and ``res``; a series with a cohort or res not asked for is another output).

    ``filters`` select one acquisition of each run as in :func:`index_bids` (fMRIPrep keeps
    the raw entities). Each run must have its brain mask and confounds table beside it, and
    its events file in the raw dataset ``bids_dir`` (BIDS inheritance, as raw runs).
    """
    fmriprep_dir, bids_dir = Path(fmriprep_dir), Path(bids_dir)
    _check_dataset(fmriprep_dir, "derivatives dataset")
    _check_dataset(bids_dir, "BIDS dataset")
    check_label(task, what="task")
    check_label(space, what="fMRIPrep space")
    filters = _check_filters(filters)
    extra = {"space": space, "desc": "preproc"}
    for key, value, what in (("cohort", cohort, "cohort"), ("res", res, "resolution")):
        if value is not None:
            extra[key] = check_label(str(value), what=f"fMRIPrep {what}")
    wanted_runs = {check_label(str(r), what="run") for r in runs}
    wanted = " ".join([f"task-{task}", *(f"{key}-{extra[key]}" for key in
                                         ("space", "cohort", "res") if key in extra)])
    index = StudyIndex(runs={})
    listings = {}  # folder listings for sidecars and events, shared by the runs
    for sub in _subject_folders(fmriprep_dir, subjects):
        pairs = []
        for ses in _session_folders(fmriprep_dir / f"sub-{sub}", sessions):
            func = _func_dir(fmriprep_dir, sub, ses)
            found = _find_runs(func, sub=sub, ses=ses, task=task, suffixes=("_bold.nii.gz",),
                               extra=extra, runs=wanted_runs, filters=filters)
            present = {entry.name for entry in _scan(str(func))}
            for _, run, bold in found:
                name = Path(bold).name
                mask = name.replace("_desc-preproc_bold.nii.gz", "_desc-brain_mask.nii.gz")
                _companions(func, [mask], present)
                index.sidecars[(sub, ses, run)] = bold_sidecars(bold, listings)
                index.imported[(sub, ses, run)] = {
                    "bold": _readable(bold), "mask": str(func / mask),
                    "confounds": _confounds_table(func, present, _raw_stem(name)),
                }
                index.events[(sub, ses, run)] = _find_events(
                    _func_dir(bids_dir, sub, ses), name, task=task, listings=listings)
            pairs += [(s_, run) for s_, run, _ in found]
        if not pairs:
            if subjects:
                raise InputDataError(
                    f"{fmriprep_dir / f'sub-{sub}'}: no {wanted} preprocessed BOLD runs"
                    + _filtered(filters) + _outputs_found(fmriprep_dir / f"sub-{sub}", task)
                )
            continue
        index.runs[sub] = pairs
    if not index.runs:
        raise InputDataError(f"{fmriprep_dir}: no {wanted} desc-preproc_bold runs found"
                             + _filtered(filters) + _outputs_found(fmriprep_dir, task))
    _mixed_sessions(index.runs, fmriprep_dir)
    return index


#: Placeholders of ``study.preprocessed`` file patterns: ``{sub}`` is required; ``{ses}``
#: and ``{run}`` where the pipeline's names carry them; ``{task}`` is study.task.
PATTERN_FIELDS = ("sub", "ses", "task", "run")


def _pattern_regex(pattern: str, *, task: str, key: str) -> re.Pattern:
    """The regular expression of a ``study.preprocessed`` file pattern."""
    fields = re.findall(r"\{([^{}]*)\}", pattern)
    unknown = sorted(set(fields) - set(PATTERN_FIELDS))
    if unknown or "sub" not in fields:
        raise ConfigError(
            f"study.preprocessed.{key} '{pattern}': "
            + (f"unknown placeholder(s) {unknown}; " if unknown else "no {sub}; ")
            + f"the placeholders are {{{'}, {'.join(PATTERN_FIELDS)}}} ({{sub}} required)"
        )
    regex, seen = "", set()
    for literal, field_ in re.findall(r"([^{]*)(?:\{([^{}]*)\})?", pattern):
        regex += re.escape(literal)
        if field_ == "task":
            regex += re.escape(task)
        elif field_:
            regex += f"(?P={field_})" if field_ in seen else f"(?P<{field_}>{_LABEL})"
            seen.add(field_)
    return re.compile(regex + "$")


def index_preprocessed(
    patterns: dict, *, bids_dir, task: str, subjects=(), sessions=(), runs=(),
) -> StudyIndex:
    """Index BOLD series that another pipeline (SPM, FSL, AFNI...) already preprocessed and
    normalised, by the file patterns of ``study.preprocessed``: ``bold`` (required),
    ``mask`` and ``confounds`` (each a pattern or None), e.g.
    ``/data/spm/sub-{sub}/func/swrsub-{sub}_task-{task}_run-{run}_bold.nii``.

    A series whose pattern has no ``{run}`` is run :data:`NO_RUN`. Its mask and confounds
    (when their patterns are given) must exist; its events file is found in the raw
    dataset ``bids_dir`` by the BIDS inheritance principle, as for raw runs.
    """
    bids_dir = Path(bids_dir)
    _check_dataset(bids_dir, "BIDS dataset")
    check_label(task, what="task")
    bold_pattern = patterns["bold"]
    regex = _pattern_regex(bold_pattern, task=task, key="bold")
    for key in ("mask", "confounds"):
        if patterns.get(key):
            _pattern_regex(patterns[key], task=task, key=key)
    wanted = {
        "sub": {check_label(str(s), what="subject") for s in subjects},
        "ses": {check_label(str(s), what="session") for s in sessions},
        "run": {check_label(str(r), what="run") for r in runs},
    }
    found = {}
    glob_pattern = re.sub(r"\{[^{}]*\}", "*", bold_pattern.replace("{task}", task))
    for path in sorted(glob.glob(glob_pattern)):
        match = regex.match(path)
        if match is None:
            continue
        ents = match.groupdict()
        key = (ents["sub"], ents.get("ses"), ents.get("run") or NO_RUN)
        if any(values and key[i] not in values
               for i, values in enumerate(wanted.values())):
            continue
        if key in found:
            raise InputDataError(f"{path}: a second series for sub-{key[0]} run {key[2]} "
                                 f"beside {found[key]}")
        found[key] = path
    absent = sorted(wanted["sub"] - {key[0] for key in found})
    if absent:
        raise ConfigError(f"subjects {absent} are selected in config but study.preprocessed."
                          f"bold '{bold_pattern}' matches no series of theirs")
    if not found:
        raise InputDataError(f"study.preprocessed.bold '{bold_pattern}': no task-{task} "
                             "series match it")
    index = StudyIndex(runs={})
    listings = {}
    for (sub, ses, run), bold in sorted(found.items(), key=lambda item: (
            item[0][0], item[0][1] or "", item[0][2])):
        fields = {"sub": sub, "ses": ses, "task": task, "run": run}
        files = {"bold": _readable(bold)}
        for key in ("mask", "confounds"):
            files[key] = (_readable(patterns[key].format(**fields)) if patterns.get(key)
                          else None)
        index.imported[(sub, ses, run)] = files
        raw = bids_name(sub=sub, ses=ses, task=task, run=None if "{run}" not in bold_pattern
                        else run, suffix="bold")
        index.events[(sub, ses, run)] = _find_events(
            _func_dir(bids_dir, sub, ses), raw, task=task, listings=listings)
        index.runs.setdefault(sub, []).append((ses, run))
    _mixed_sessions(index.runs, bids_dir)
    return index


#: fMRIPrep's confounds table of a run, newest name first: ``desc-confounds_timeseries``
#: (fMRIPrep 20.2 and later) and ``desc-confounds_regressors`` (the releases before).
CONFOUNDS_SUFFIXES = ("timeseries", "regressors")


def _confounds_table(func: Path, present, stem: str) -> str:
    """The confounds table of the run ``stem`` (its raw entities: :func:`_raw_stem`) under
    the name of its fMRIPrep release."""
    names = [f"{stem}_desc-confounds_{suffix}.tsv" for suffix in CONFOUNDS_SUFFIXES]
    for name in names:
        if name in present:
            return _readable(str(func / name))
    raise InputDataError(f"{func / names[0]}: file does not exist (nor {names[1]}, its name "
                         "before fMRIPrep 20.2)")


def _outputs_found(root: Path, task: str) -> str:
    """``"; found: space-A res-2, space-B"``: the spaces (and resolutions) of the
    ``desc-preproc_bold`` series of ``task`` under ``root``, to name in an error."""
    found = set()
    for path in root.rglob(f"*_task-{task}_*desc-preproc_bold.nii*"):
        ents = _bold_entities(path.name)
        found.add(" ".join(f"{key}-{ents[key]}" for key in ("space", "cohort", "res")
                           if key in ents))
    found.discard("")
    if not found:
        return f"; no task-{task} desc-preproc_bold series at all"
    return (f"; found: {', '.join(sorted(found))} (config study.fmriprep_space, "
            "study.fmriprep_cohort and study.fmriprep_res)")
