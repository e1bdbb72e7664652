"""Coordinate sets of the meta-analysis: read, check and normalise each category's input.

Each category of ``meta.categories`` names a ``format``:

``sleuth``
    A Sleuth (GingerALE) text file (:mod:`mirrorflow.meta.sleuth` checks it line by
    line; NiMARE's :func:`~nimare.io.convert_sleuth_to_dict` reads it).
``nimare``
    A NiMARE dataset JSON file (``{study: {"contrasts": {id: {"coords": ...,
    "metadata": {"sample_sizes": [n]}}}}}``).
``database``
    Study ids of the reference database (``macm.reference_dir``, e.g. PubMed ids of
    Neurosynth), sliced with :meth:`nimare.dataset.Dataset.slice`; every experiment gets
    the assumed sample size (the database reports none).
``simulate``
    The simulator's set (rule ``meta_simulate``), with the category's planted ``foci``.

:func:`check_category` and :func:`check_distinct_experiments` run at parse time (before
any job) and need no NiMARE import; :func:`write_category` writes the normalised NiMARE
JSON every estimation reads, with a JSON summary saying where it came from. Coordinates
keep their space: NiMARE converts Talairach foci to MNI (``tal2mni``) when it builds the
Dataset.
"""

from __future__ import annotations

import json
import logging
import math
from itertools import combinations
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.sleuth import SLEUTH_SPACES, mni_bounds, read_sleuth, to_mni
from mirrorflow.simulate.coordinates import simulated_study_ids

__all__ = [
    "FORMATS",
    "category_experiments",
    "check_category",
    "check_distinct_experiments",
    "dataset_dict",
    "read_nimare_json",
    "write_category",
]

LGR = logging.getLogger(__name__)

#: Input formats of a category, and what each needs in its config entry.
FORMATS = {"sleuth": "path", "nimare": "path", "database": "ids", "simulate": "foci"}


def check_category(label: str, spec: dict, *, read_file: bool = True) -> None:
    """Cheap checks of one category's config entry and input file (parse time).

    With ``read_file`` False only the config entry is checked (the file is in remote
    storage; rule ``meta_inputs`` checks it there, as the first job of the category).

    Raises
    ------
    ConfigError
        If the format is unknown or the entry lacks what its format needs.
    InputDataError
        If a Sleuth or NiMARE JSON file is missing or malformed (file, line or experiment,
        and problem).
    """
    fmt = spec.get("format")
    if fmt not in FORMATS:
        raise ConfigError(f"meta.categories.{label}.format {fmt!r}: choose from {sorted(FORMATS)}")
    key = FORMATS[fmt]
    if spec.get(key) is None or (key == "ids" and not spec[key]):
        raise ConfigError(f"meta.categories.{label}: format '{fmt}' needs '{key}'")
    if fmt == "sleuth" and read_file:
        read_sleuth(spec["path"])
    elif fmt == "nimare" and read_file:
        read_nimare_json(spec["path"])


def check_distinct_experiments(
    categories: dict[str, dict], *, n_simulated: int | None = None, read_file: bool = True
) -> None:
    """Refuse two categories whose NiMARE experiments would share an id (parse time).

    The ALE subtraction refuses two coordinate sets that share an experiment id
    (:func:`mirrorflow.meta.contrast._check_groups`, in a job); this finds them before any
    job, without NiMARE, from what :func:`category_experiments` knows of each category. Run
    it after :func:`check_category` of every category (which reports malformed files).

    Parameters
    ----------
    categories : :obj:`dict` of :obj:`str` to :obj:`dict`
        The config's ``meta.categories``: label to entry (``format`` and ``path``, ``ids`` or
        ``foci``), in config order.
    n_simulated : :obj:`int` or None, optional
        ``meta.simulate.n_experiments``: the ids of ``simulate`` categories; None leaves
        them out of the check.
    read_file : :obj:`bool`, default=True
        False leaves ``sleuth`` and ``nimare`` categories out (their files are in remote
        storage; the subtraction job still checks them).

    Raises
    ------
    InputDataError
        If two categories share ids and one of them is a file (``sleuth`` or ``nimare``):
        names both categories and files, each shared id and where it is in each (Sleuth
        lines and name; JSON study and contrast).
    ConfigError
        If two ``database`` (or ``simulate``) categories share ids.
    """
    known = {}
    for label, spec in categories.items():
        ids = category_experiments(label, spec, n_simulated=n_simulated, read_file=read_file)
        if ids is not None:
            known[label] = ids
    for first, second in combinations(known, 2):
        shared = sorted(set(known[first]) & set(known[second]))
        if shared:
            _shared_fail(categories, (first, second), shared, known)


def category_experiments(
    label: str, spec: dict, *, n_simulated: int | None = None, read_file: bool = True
) -> dict[str, str] | None:
    """The NiMARE ids (``<study>-<contrast>``) of a category's experiments, as known at parse
    time, each with where it comes from (for messages); None when unknown.

    ``sleuth``
        The Sleuth names split as NiMARE splits them
        (:func:`mirrorflow.meta.sleuth.study_contrast`); where: the file's lines and name.
    ``nimare``
        The JSON file's study and contrast keys.
    ``database``
        ``<id>-1`` for each study id: the reference (:mod:`mirrorflow.meta.reference`) is
        built by NiMARE's ``convert_neurosynth_to_dataset``, which gives every study one
        contrast, ``"1"``. Ids missing from the database are refused in the job that
        selects them (loading the database takes seconds).
    ``simulate``
        ``<label>-<NN>-1`` (:func:`mirrorflow.simulate.coordinates.simulated_study_ids`)
        when ``n_simulated`` is given; None otherwise.

    With ``read_file`` False, ``sleuth`` and ``nimare`` categories give None.
    """
    fmt = spec.get("format")
    if fmt == "sleuth" and read_file:
        path = spec["path"]
        _, experiments = read_sleuth(path, check_bounds=False)
        return {e.nimare_id: f"{path} {e.lines} ({e.name!r})" for e in experiments}
    if fmt == "nimare" and read_file:
        path = spec["path"]
        return {f"{study}-{contrast}": f"{path} study {study!r}, contrast {contrast!r}"
                for study, contrast in _json_experiments(path)}
    if fmt == "database":
        return {f"{study}-1": f"study id {study} of meta.categories.{label}.ids"
                for study in map(str, spec.get("ids") or [])}
    if fmt == "simulate" and n_simulated is not None:
        return {f"{study}-1": f"simulated study {study!r}"
                for study in simulated_study_ids(label, int(n_simulated))}
    return None


def _json_experiments(path) -> list[tuple[str, str]]:
    """(study, contrast) keys of a NiMARE dataset JSON file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"coordinate file {path}: file does not exist")
    try:
        data = json.loads(path.read_text())
    except ValueError as err:  # invalid JSON or not text
        raise InputDataError(f"coordinate file {path}: not valid JSON ({err})") from err
    pairs = []
    for study, content in (data.items() if isinstance(data, dict) else []):
        contrasts = content.get("contrasts") if isinstance(content, dict) else None
        if not isinstance(contrasts, dict):
            raise InputDataError(f"coordinate file {path}: study {study!r} has no 'contrasts'")
        pairs += [(study, contrast) for contrast in contrasts]
    return pairs


def _source(spec) -> str:
    """A category's input, in words."""
    return {
        "sleuth": f"Sleuth file {spec.get('path')}",
        "nimare": f"NiMARE JSON file {spec.get('path')}",
        "database": "study ids of the reference database",
        "simulate": "simulated",
    }[spec["format"]]


def _shared_fail(categories, labels, shared, known):
    """One error naming both categories, their inputs and each shared experiment id."""
    first, second = labels
    formats = {categories[label]["format"] for label in labels}
    shown = "; ".join(f"{i!r} ({known[first][i]}; {known[second][i]})" for i in shared[:5])
    more = f"; and {len(shared) - 5} more" if len(shared) > 5 else ""
    how = (", splitting a Sleuth name into study and contrast at the first ';' or ':' after "
           "its year" if "sleuth" in formats else "")
    error = InputDataError if formats & {"sleuth", "nimare"} else ConfigError
    raise error(
        f"meta.categories '{first}' ({_source(categories[first])}) and '{second}' "
        f"({_source(categories[second])}) share {len(shared)} experiment id(s), which the ALE "
        f"subtraction refuses (NiMARE names an experiment '<study>-<contrast>'{how}): "
        f"{shown}{more}; rename or remove them in one of the two categories"
    )


def _experiment_fail(path, study, contrast, problem):
    raise InputDataError(
        f"coordinate file {path}: study {study!r}, contrast {contrast!r}: {problem}"
    )


def read_nimare_json(path, *, require_sample_sizes: bool = True) -> dict:
    """Read and check a NiMARE dataset JSON file; return its dictionary.

    Every experiment needs ``coords`` with equally long, finite, numeric ``x``, ``y`` and
    ``z``, a ``space`` of MNI or Talairach, foci inside the MNI152 template's bounding box
    (Talairach foci after NiMARE's ``tal2mni``) and, if ``require_sample_sizes``, positive
    integer ``metadata.sample_sizes``.

    Raises
    ------
    InputDataError
        Naming the file (and the line for invalid JSON, the study and contrast otherwise).
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"coordinate file {path}: file does not exist")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise InputDataError(
            f"coordinate file {path}, line {err.lineno}: not valid JSON ({err.msg})"
        ) from err
    except UnicodeDecodeError as err:
        raise InputDataError(f"coordinate file {path}: not a text file ({err})") from err
    if not isinstance(data, dict) or not data:
        raise InputDataError(f"coordinate file {path}: expected an object of studies, got "
                             f"{type(data).__name__ if data else 'nothing'}")
    low, high = mni_bounds()
    n_foci = 0
    for study, content in data.items():
        contrasts = content.get("contrasts") if isinstance(content, dict) else None
        if not isinstance(contrasts, dict) or not contrasts:
            raise InputDataError(f"coordinate file {path}: study {study!r} has no 'contrasts'")
        for contrast, entry in contrasts.items():
            xyz, space = _coords(path, study, contrast, entry)
            mni = to_mni(xyz, space)
            outside = np.any((mni < low) | (mni > high), axis=1)
            if outside.any():
                _experiment_fail(path, study, contrast,
                                 f"focus {tuple(xyz[np.argmax(outside)])} lies outside the "
                                 "MNI152 template's bounding box")
            if require_sample_sizes:
                _sample_sizes(path, study, contrast, entry)
            n_foci += len(xyz)
    if n_foci == 0:
        raise InputDataError(f"coordinate file {path}: contains no foci")
    return data


def _coords(path, study, contrast, entry):
    coords = entry.get("coords") if isinstance(entry, dict) else None
    if not isinstance(coords, dict):
        _experiment_fail(path, study, contrast, "no 'coords'")
    missing = [axis for axis in ("x", "y", "z") if axis not in coords]
    if missing:
        _experiment_fail(path, study, contrast, f"'coords' lacks {missing}")
    lengths = {len(coords[axis]) if isinstance(coords[axis], list) else -1
               for axis in ("x", "y", "z")}
    if len(lengths) != 1 or -1 in lengths:
        _experiment_fail(path, study, contrast, "'x', 'y' and 'z' must be lists of one length")
    try:
        xyz = np.array([coords[axis] for axis in ("x", "y", "z")], dtype=float).T
    except (TypeError, ValueError):
        _experiment_fail(path, study, contrast, "non-numeric coordinate")
    if xyz.size == 0:
        _experiment_fail(path, study, contrast, "no foci")
    if not np.all(np.isfinite(xyz)):
        _experiment_fail(path, study, contrast, "non-finite coordinate")
    # NiMARE's Dataset converts "TAL" and "Talairach" to MNI and keeps "MNI"; any other
    # spelling it keeps unconverted, with only a log warning.
    space = SLEUTH_SPACES.get(coords.get("space"))
    if space is None:
        _experiment_fail(path, study, contrast,
                         f"unknown space {coords.get('space')!r}; NiMARE reads 'MNI', 'TAL' "
                         "and 'Talairach' as written (another spelling it leaves unconverted)")
    return xyz, space


def _sample_sizes(path, study, contrast, entry):
    sizes = (entry.get("metadata") or {}).get("sample_sizes")
    values = sizes if isinstance(sizes, list) else [sizes]
    ok = bool(values) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        and v >= 1 and float(v).is_integer() for v in values
    )
    if not ok:
        _experiment_fail(path, study, contrast,
                         f"'metadata.sample_sizes' must be a list of positive integers, got "
                         f"{sizes!r}; ALE needs each experiment's sample size")


def _sleuth_dict(path) -> dict:
    """NiMARE's reading of a Sleuth file checked by :func:`read_sleuth`, which must find the
    same experiment ids (a guard against a NiMARE whose reader changed)."""
    from nimare.io import convert_sleuth_to_dict

    _, experiments = read_sleuth(path)
    data = convert_sleuth_to_dict(str(path))
    ids = [f"{study}-{contrast}" for study, content in data.items()
           for contrast in content["contrasts"]]
    ours = [e.nimare_id for e in experiments]
    if sorted(ids) != sorted(ours):
        differ = sorted(set(ids) ^ set(ours))
        raise InputDataError(
            f"Sleuth file {path}: mirrorflow's check reads {len(ours)} experiments, NiMARE "
            f"{len(ids)}, with other ids (first: {differ[:3]}); NiMARE's Sleuth reader no "
            "longer matches mirrorflow.meta.sleuth"
        )
    return data


def _database_dict(reference_file, ids, *, assumed_sample_size: int) -> dict:
    """The reference experiments of the given study ids, as a NiMARE dictionary."""
    from mirrorflow.meta.reference import load_reference

    dset = load_reference(reference_file)
    wanted = [str(i) for i in ids]
    study_ids = dset.metadata["study_id"].astype(str)
    unknown = sorted(set(wanted) - set(study_ids))
    if unknown:
        raise InputDataError(
            f"reference database {reference_file}: {len(unknown)} study id(s) not found "
            f"(first: {unknown[:5]})"
        )
    chosen = dset.metadata.loc[study_ids.isin(wanted), "id"].tolist()
    return dataset_dict(dset.slice(chosen), sample_size=assumed_sample_size)


def dataset_dict(dset, *, sample_size: int) -> dict:
    """A NiMARE Dataset's foci (MNI, as the Dataset holds them) as a NiMARE JSON dictionary,
    every experiment with ``sample_size``."""
    data: dict = {}
    coords = dset.coordinates
    for (study, contrast), rows in coords.groupby(["study_id", "contrast_id"], sort=True):
        data.setdefault(str(study), {"contrasts": {}})["contrasts"][str(contrast)] = {
            "coords": {"space": "MNI", **{axis: rows[axis].astype(float).tolist()
                                          for axis in ("x", "y", "z")}},
            "metadata": {"sample_sizes": [int(sample_size)]},
        }
    return data


def write_category(
    *,
    label: str,
    spec: dict,
    source,
    output_file,
    summary_file,
    assumed_sample_size: int,
) -> dict:
    """Check one category's input and write it as NiMARE JSON, with a JSON summary.

    Parameters
    ----------
    label : :obj:`str`
        Category label.
    spec : :obj:`dict`
        The category's config entry (``format`` and ``path``/``ids``/``foci``).
    source : path
        The file read: the Sleuth or JSON file, the simulator's JSON, or the pickled
        reference Dataset (``database``).
    output_file : path
        The normalised NiMARE JSON.
    summary_file : path
        JSON summary: format, source, spaces, counts, sample sizes (the data file is JSON
        itself, so its description is a sibling file rather than a sidecar).
    assumed_sample_size : :obj:`int`
        Sample size of ``database`` experiments.

    Returns
    -------
    :obj:`dict`
        The summary's content.
    """
    from mirrorflow.io.bids import check_label, write_json

    label = check_label(label, what="category")
    fmt = spec["format"]
    if fmt == "sleuth":
        data = _sleuth_dict(source)
    elif fmt in ("nimare", "simulate"):
        data = read_nimare_json(source)
    elif fmt == "database":
        data = _database_dict(source, spec["ids"], assumed_sample_size=assumed_sample_size)
    else:
        raise ConfigError(f"meta.categories.{label}.format {fmt!r}: choose from {sorted(FORMATS)}")
    entries = [c for study in data.values() for c in study["contrasts"].values()]
    spaces = sorted({SLEUTH_SPACES[c["coords"]["space"]]
                     for c in entries})
    sizes = [int(np.ravel(c["metadata"]["sample_sizes"])[0]) for c in entries]
    write_json(output_file, data)
    meta = {
        "Description": (
            f"Coordinates of category '{label}' ({fmt}) as a NiMARE dataset: {len(entries)} "
            f"experiments, {sum(len(c['coords']['x']) for c in entries)} foci"
            + ("; Talairach foci are converted to MNI by NiMARE (tal2mni) when the Dataset "
               "is built" if "TAL" in spaces else "")
            + (f"; every experiment has the assumed sample size {assumed_sample_size} (the "
               "reference database reports none)" if fmt == "database" else "")
            + "."
        ),
        "Category": label,
        "Format": fmt,
        "Source": str(source),
        "Spaces": spaces,
        "NExperiments": len(entries),
        "NFoci": sum(len(c["coords"]["x"]) for c in entries),
        "SampleSizes": [min(sizes), max(sizes)],
    }
    if fmt == "database":
        meta.update(StudyIds=[str(i) for i in spec["ids"]],
                    AssumedSampleSize=int(assumed_sample_size))
    write_json(summary_file, meta)
    LGR.info(meta["Description"])
    return meta
