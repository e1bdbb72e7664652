"""Sleuth (GingerALE) coordinate files: line-level validation and writing.

A Sleuth file starts with ``// Reference=MNI`` (or ``Talairach``/``TAL``); each
experiment is one or more ``//`` header lines (study and contrast name), a
``// Subjects=N`` line, then one focus per line (x, y, z separated by spaces or tabs,
as GingerALE and NiMARE read them); blank lines separate experiments::

    // Reference=MNI
    // Carr et al., 2003; pmid-12682279
    // Subjects=11
    -46 -6 48
    50 16 12

NiMARE reads the file (:func:`nimare.io.convert_sleuth_to_dict`; Talairach foci
are converted to MNI by NiMARE's ``tal2mni`` when the Dataset is built), but its
parser reports problems without a line number, and stops at the first; some it
does not see at all (a focus outside the template, two experiments with the same
name, which NiMARE merges silently). :func:`read_sleuth` checks every line first
and raises one :class:`~mirrorflow.exceptions.InputDataError` naming the file, the
line and the problem.

.. versionadded:: 0.2.0
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from mirrorflow.exceptions import InputDataError

__all__ = ["SPACES", "Experiment", "mni_bounds", "read_sleuth", "to_mni", "write_sleuth"]

#: Reference spaces a Sleuth file may declare (as NiMARE accepts them) -> canonical name.
SPACES = {"mni": "MNI", "tal": "TAL", "talairach": "TAL"}

_REFERENCE = re.compile(r"^//\s*reference\s*=\s*(?P<space>.*?)\s*$", re.IGNORECASE)
_SUBJECTS = re.compile(r"^//\s*subjects\s*=\s*(?P<n>.*?)\s*$", re.IGNORECASE)


@dataclass
class Experiment:
    """One experiment of a Sleuth file: name, sample size, foci and where it starts."""

    name: str
    subjects: int
    line: int
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    focus_lines: list[int] = field(default_factory=list)


@lru_cache(maxsize=1)
def mni_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (mm) of NiMARE's MNI152 2 mm template (``mni152_2mm``), the grid of every
    map. Read from NiMARE's resource file without importing NiMARE (its import takes ~4 s,
    too slow for the parse-time checks of every Snakemake invocation)."""
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("NiMARE is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "templates"
    img = nib.load(folder / "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz")
    corners = np.array([[0, 0, 0], np.array(img.shape[:3]) - 1], dtype=float)
    world = corners @ img.affine[:3, :3].T + img.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def _fail(path, line, problem):
    raise InputDataError(f"Sleuth file {path}, line {line}: {problem}")


def read_sleuth(path, *, check_bounds: bool = True) -> tuple[str, list[Experiment]]:
    """Parse and check a Sleuth file; return its space (``"MNI"`` or ``"TAL"``) and experiments.

    Parameters
    ----------
    path : :obj:`str` or :class:`~pathlib.Path`
        The Sleuth text file.
    check_bounds : :obj:`bool`, default=True
        Refuse foci outside the MNI152 2 mm template's bounding box (Talairach foci
        after NiMARE's ``tal2mni``, the transform NiMARE applies).

    Raises
    ------
    InputDataError
        Naming the file, the line and the problem: missing file, empty file, missing or
        unknown ``// Reference=`` line, missing or invalid ``// Subjects=`` line, a focus
        without three numeric values, an experiment without foci, a repeated experiment
        name, a focus outside the template.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"Sleuth file {path}: file does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError as err:
        raise InputDataError(f"Sleuth file {path}: not a text file ({err})") from err
    lines = [(number, raw.strip()) for number, raw in enumerate(text.splitlines(), start=1)]
    content = [(number, line) for number, line in lines if line]
    if not content:
        raise InputDataError(f"Sleuth file {path}: the file is empty")
    first_number, first = content[0]
    match = _REFERENCE.match(first)
    if not match:
        _fail(path, first_number, f"expected '// Reference=MNI' or '// Reference=Talairach', "
              f"got {first!r}")
    space = SPACES.get(match["space"].replace(" ", "").lower())
    if space is None:
        _fail(path, first_number, f"unknown reference space {match['space']!r}; Sleuth files "
              "use MNI or Talairach (TAL)")
    experiments = _experiments(path, lines[first_number:])
    if not experiments:
        raise InputDataError(f"Sleuth file {path}: no experiment after the Reference line")
    if check_bounds:
        _check_bounds(path, space, experiments)
    return space, experiments


def _experiments(path, lines) -> list[Experiment]:
    """Experiments from the lines after the Reference line (blank lines kept, as separators)."""
    experiments: list[Experiment] = []
    header: list[tuple[int, str]] = []
    current: Experiment | None = None
    seen: dict[str, int] = {}
    for number, line in lines:
        if not line:
            continue
        if line.startswith("//"):
            if current is not None:  # a header after foci starts the next experiment
                _close(path, current, seen, experiments)
                current = None
            subjects = _SUBJECTS.match(line)
            if subjects is None:
                if _REFERENCE.match(line):
                    _fail(path, number, "a second Reference line; one file has one space")
                header.append((number, line))
                continue
            current = _open(path, number, subjects["n"], header)
            header = []
            continue
        if current is None:
            if header:
                _fail(path, number, f"missing '// Subjects=N' line for the experiment named "
                      f"on line {header[0][0]} ({header[0][1]!r}) before its first focus")
            _fail(path, number, "a focus before any experiment header ('// name' and "
                  "'// Subjects=N' lines)")
        current.foci.append(_focus(path, number, line))
        current.focus_lines.append(number)
    if header:
        _fail(path, header[-1][0], "experiment header at the end of the file without a "
              "'// Subjects=N' line and foci")
    if current is not None:
        _close(path, current, seen, experiments)
    return experiments


def _open(path, number, value, header) -> Experiment:
    """A new experiment at its ``// Subjects=`` line."""
    if not header:
        _fail(path, number, "'// Subjects=' line without a study name line ('// name') "
              "before it")
    try:
        subjects = int(value)
    except ValueError:
        _fail(path, number, f"sample size {value!r} is not an integer")
    if subjects < 1:
        _fail(path, number, f"sample size {subjects} must be at least 1")
    name = " ".join(text.lstrip("/").strip() for _, text in header)
    return Experiment(name=name, subjects=subjects, line=header[0][0])


def _close(path, experiment, seen, experiments):
    if not experiment.foci:
        _fail(path, experiment.line, f"experiment {experiment.name!r} has no foci")
    if experiment.name in seen:
        _fail(path, experiment.line, f"experiment name {experiment.name!r} repeats the one on "
              f"line {seen[experiment.name]} (NiMARE would merge them)")
    seen[experiment.name] = experiment.line
    experiments.append(experiment)


def _focus(path, number, line) -> tuple[float, float, float]:
    if "," in line:
        _fail(path, number, f"coordinates are separated by spaces or tabs, not commas: "
              f"{line!r}")
    values = line.split()
    if len(values) != 3:
        _fail(path, number, f"a focus needs 3 coordinates (x y z), got {len(values)}: {line!r}")
    try:
        xyz = tuple(float(v) for v in values)
    except ValueError:
        _fail(path, number, f"non-numeric coordinate in {line!r}")
    if not np.all(np.isfinite(xyz)):
        _fail(path, number, f"non-finite coordinate in {line!r}")
    return xyz


def _check_bounds(path, space, experiments):
    """Refuse foci outside the template box (in MNI, after tal2mni for Talairach files)."""
    low, high = mni_bounds()
    for experiment in experiments:
        xyz = np.asarray(experiment.foci, dtype=float)
        mni = to_mni(xyz, space)
        outside = np.any((mni < low) | (mni > high), axis=1)
        if outside.any():
            first = int(np.flatnonzero(outside)[0])
            where = "" if space == "MNI" else f" (MNI {tuple(np.round(mni[first], 1))})"
            _fail(path, experiment.focus_lines[first],
                  f"focus {experiment.foci[first]}{where} lies outside the MNI152 template's "
                  f"bounding box x {low[0]:g}..{high[0]:g}, y {low[1]:g}..{high[1]:g}, "
                  f"z {low[2]:g}..{high[2]:g} mm")


def to_mni(xyz, space: str) -> np.ndarray:
    """Foci in MNI: unchanged for MNI, NiMARE's ``tal2mni`` for Talairach (imported only
    then: importing NiMARE takes seconds)."""
    xyz = np.asarray(xyz, dtype=float)
    if space == "MNI":
        return xyz
    from nimare.utils import tal2mni

    return tal2mni(xyz)


def write_sleuth(path, experiments, *, space: str = "MNI") -> Path:
    """Write experiments (``name``, ``subjects``, ``foci``) as a Sleuth file; return its path."""
    if space not in ("MNI", "TAL"):
        raise ValueError(f"space must be MNI or TAL, got {space!r}")
    reference = "MNI" if space == "MNI" else "Talairach"
    blocks = [f"// Reference={reference}"]
    for experiment in experiments:
        rows = "\n".join("\t".join(f"{v:g}" for v in xyz) for xyz in experiment.foci)
        blocks.append(f"// {experiment.name}\n// Subjects={experiment.subjects}\n{rows}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n\n".join(blocks) + "\n")
    tmp.replace(path)
    return path
