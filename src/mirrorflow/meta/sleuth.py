"""Sleuth (GingerALE) coordinate files: line-level validation and writing.

A Sleuth file starts with ``// Reference=MNI`` (or ``TAL`` or ``Talairach``); each
experiment is one or more ``//`` header lines (study and contrast name), a
``// Subjects=N`` line, then one focus per line (x, y, z separated by spaces or tabs)::

    // Reference=MNI
    // Carr et al., 2003; pmid-12682279
    // Subjects=11
    -46 -6 48
    50 16 12

Jobs read the file with NiMARE 0.22.1 (:func:`nimare.io.convert_sleuth_to_dict`;
Talairach foci are converted to MNI by NiMARE's ``tal2mni`` when the Dataset is built),
whose parser reports problems without a line number, stops at the first and misses some.
:func:`read_sleuth` runs at parse time, without importing NiMARE (~4 s), and raises one
:class:`~mirrorflow.exceptions.InputDataError` naming the file, the line, the problem and
what it found. It accepts a file exactly when NiMARE's reader does, and reads the same
experiments, sample sizes and foci, except for the deliberate checks listed further down.
NiMARE reads the file literally:

- in the system's default text encoding (UTF-8) with universal newlines: LF, CRLF and CR
  line ends all work (line numbers count them as an editor does; a form feed or U+2028
  is no line end). A UTF-8 byte-order mark (BOM) becomes the first character of the
  Reference line, which NiMARE then refuses; a UTF-16 file is not UTF-8 text;
- trailing whitespace is removed from every line and blank lines are dropped; leading
  whitespace is kept, so a header line starts with ``//`` in its first column (an
  indented ``// Subjects=12`` is read as a focus, and refused);
- the first line, with its spaces (not tabs) removed and every ``//Reference=`` cut out,
  must be exactly ``MNI``, ``TAL`` or ``Talairach``: case matters, so
  ``// reference=MNI``, ``// Reference=mni``, ``// Reference=Tal`` and
  ``//<tab>Reference=MNI`` are refused, while ``//Reference = MNI`` (and even a line
  ``MNI`` alone) is read;
- a run of consecutive ``//`` lines (blank lines aside) is one experiment's header and
  its last line the sample size: it must contain ``Subjects`` and, with its spaces removed
  and ``//Subjects=`` cut out, be an integer for Python's ``int`` (``// Subjects = 12``
  is read; ``// subjects=12``, ``// Subjects: 12`` and ``//<tab>Subjects=12`` are not).
  The lines before it, each with every ``//`` removed and stripped, joined by single
  spaces, are the experiment's name (``Subjects`` may appear there); NiMARE splits the name
  into study and contrast (:func:`study_contrast`), and the experiment's id in a Dataset is
  ``<study>-<contrast>``;
- every line after a header up to the next header is a focus: three numbers separated by
  whitespace, as Python's ``float`` reads them. Blank lines do not separate experiments.

Stricter than NiMARE, on purpose (each is a case NiMARE reads without a word, losing or
mixing data):

- a line before the first experiment header (NiMARE skips it);
- a file without experiments (NiMARE returns an empty set);
- an experiment without a name (NiMARE names its study ``''``);
- a ``// Subjects=N`` line followed by another header line, i.e. an experiment without
  foci (NiMARE reads both headers as one experiment, the first sample size line as part
  of its name);
- a second ``// Reference=`` line (NiMARE reads it as part of a name: two files pasted
  together, possibly in two spaces);
- a sample size below 1 (NiMARE accepts 0 and negative sizes);
- a non-finite coordinate (``nan``, ``inf``);
- two experiments with the same id ``<study>-<contrast>`` (NiMARE keeps the later of two
  with the same study and contrast names, and a Dataset cannot tell two ids apart);
- a focus outside the MNI152 2 mm template's bounding box (``check_bounds``).
"""

from __future__ import annotations

import codecs
import locale
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import NoReturn

import numpy as np

from mirrorflow.exceptions import InputDataError

__all__ = [
    "SLEUTH_SPACES",
    "SPACES",
    "Experiment",
    "mni_bounds",
    "nimare_template",
    "read_sleuth",
    "study_contrast",
    "to_mni",
    "write_sleuth",
]

#: Reference spaces as NiMARE's Sleuth reader accepts them (spelling and case) -> canonical.
SLEUTH_SPACES = {"MNI": "MNI", "TAL": "TAL", "Talairach": "TAL"}
#: Lower-case space names -> canonical name (spaces of NiMARE JSON files, hints).
SPACES = {"mni": "MNI", "tal": "TAL", "talairach": "TAL"}

# Lines that look like a Reference or Subjects line, whatever the case and whitespace: for
# the messages and the deliberate checks only; what NiMARE accepts is tested as NiMARE does.
_REFERENCE_LIKE = re.compile(r"^\s*//\s*(?P<key>reference)\s*=\s*(?P<value>.*?)\s*$",
                             re.IGNORECASE)
_SUBJECTS_LIKE = re.compile(r"^\s*//\s*(?P<key>subjects)\s*=\s*(?P<value>.*?)\s*$",
                            re.IGNORECASE)
_YEAR = re.compile(r"(19|20)\d{2}")
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOMS = (
    (codecs.BOM_UTF8, "a UTF-8", "save the file without BOM (UTF-8)"),
    (codecs.BOM_UTF32_LE, "a UTF-32", "save the file as UTF-8 without BOM"),
    (codecs.BOM_UTF32_BE, "a UTF-32", "save the file as UTF-8 without BOM"),
    (codecs.BOM_UTF16_LE, "a UTF-16", "save the file as UTF-8 without BOM"),
    (codecs.BOM_UTF16_BE, "a UTF-16", "save the file as UTF-8 without BOM"),
)
_NO_CONTRAST = "analysis_1"  # NiMARE's contrast name of a Sleuth name without separator


@dataclass
class Experiment:
    """One experiment of a Sleuth file: name, sample size, foci and where it starts.

    ``name`` is NiMARE's: the header lines before ``// Subjects=``, each without ``//``
    and stripped, joined by spaces.
    """

    name: str
    subjects: int
    line: int
    foci: list[tuple[float, float, float]] = field(default_factory=list)
    focus_lines: list[int] = field(default_factory=list)

    @property
    def nimare_id(self) -> str:
        """The experiment's id in a NiMARE Dataset: ``<study>-<contrast>``."""
        study, contrast = study_contrast(self.name)
        return f"{study}-{contrast}"

    @property
    def lines(self) -> str:
        """Where the experiment is in its file: ``"lines <first>-<last>"``."""
        return f"lines {self.line}-{self.focus_lines[-1] if self.focus_lines else self.line}"


def study_contrast(name: str) -> tuple[str, str]:
    """NiMARE's study and contrast names of a Sleuth experiment name.

    NiMARE 0.22.1 (:func:`nimare.io.convert_sleuth_to_dict`) strips the name and splits it
    at the first ``;`` or ``:`` after the first year (``19xx`` or ``20xx``); without a year,
    or without a separator after it, at the first ``;`` or else the first ``:``. Both sides
    are stripped; an empty study side keeps the whole name, an empty contrast side (or no
    separator) gives the contrast ``analysis_1``.

    Parameters
    ----------
    name : :obj:`str`
        The experiment's name (:attr:`Experiment.name`).

    Returns
    -------
    :obj:`tuple` of (:obj:`str`, :obj:`str`)
        Study and contrast names; the NiMARE id is ``f"{study}-{contrast}"``.
    """
    name = name.strip()
    if not name:
        return "", _NO_CONTRAST
    cut = None
    year = _YEAR.search(name)
    if year is not None:
        after = [i for i in (name.find(";", year.end()), name.find(":", year.end())) if i >= 0]
        cut = min(after) if after else None
    if cut is None:
        cut = next((name.index(sep) for sep in ";:" if sep in name), None)
    if cut is None:
        return name, _NO_CONTRAST
    return name[:cut].strip() or name, name[cut + 1 :].strip() or _NO_CONTRAST


@lru_cache(maxsize=1)
def nimare_template():
    """NiMARE's MNI152 2 mm brain mask (``mni152_2mm``), the grid of every map, read with
    nibabel from NiMARE's resource file without importing NiMARE (its import takes ~4 s,
    too slow for the parse-time checks of every Snakemake invocation)."""
    import importlib.util

    import nibabel as nib

    spec = importlib.util.find_spec("nimare")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("NiMARE is not installed")
    folder = Path(next(iter(spec.submodule_search_locations))) / "resources" / "templates"
    return nib.load(folder / "tpl-MNI152NLin6Asym_res-02_desc-brain_mask.nii.gz")


@lru_cache(maxsize=1)
def mni_bounds() -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (mm) of :func:`nimare_template`."""
    img = nimare_template()
    corners = np.array([[0, 0, 0], np.array(img.shape[:3]) - 1], dtype=float)
    world = corners @ img.affine[:3, :3].T + img.affine[:3, 3]
    return world.min(axis=0), world.max(axis=0)


def _fail(path, line, problem) -> NoReturn:
    raise InputDataError(f"Sleuth file {path}, line {line}: {problem}")


def read_sleuth(path, *, check_bounds: bool = True) -> tuple[str, list[Experiment]]:
    """Parse and check a Sleuth file; return its space (``"MNI"`` or ``"TAL"``) and experiments.

    Accepts the file exactly when NiMARE's :func:`~nimare.io.convert_sleuth_to_dict`
    does, but for the deliberate checks of the module docstring.

    Parameters
    ----------
    path : :obj:`str` or :class:`~pathlib.Path`
        The Sleuth text file.
    check_bounds : :obj:`bool`, default=True
        Refuse foci outside the MNI152 2 mm template's bounding box (Talairach foci
        after NiMARE's ``tal2mni``, the transform NiMARE applies).

    Returns
    -------
    space : :obj:`str`
        ``"MNI"`` or ``"TAL"`` (for ``TAL`` and ``Talairach``).
    experiments : :obj:`list` of :class:`Experiment`
        In file order, as NiMARE reads them.

    Raises
    ------
    InputDataError
        Naming the file, the line, the problem and what was found: missing file, byte-order
        mark, bytes that are not text in the default encoding, empty file, a first line
        other than NiMARE's ``// Reference=`` line, a header whose last line is not
        NiMARE's ``// Subjects=N``, a focus without three numbers; and the deliberate
        checks of the module docstring.
    """
    path = Path(path)
    if not path.is_file():
        raise InputDataError(f"Sleuth file {path}: file does not exist")
    content = _read_lines(path)
    if not content:
        raise InputDataError(f"Sleuth file {path}: the file is empty")
    (first_number, first), rest = content[0], content[1:]
    space = _space(path, first_number, first)
    leading, blocks = _blocks(rest)
    if leading:
        _fail(path, leading[0][0], _before_header(leading[0][1]))
    if not blocks:
        _fail(path, first_number, "no experiment after the Reference line (NiMARE would read "
              "an empty set)")
    experiments: list[Experiment] = []
    seen: dict[str, Experiment] = {}
    for header, foci in blocks:
        experiment = _experiment(path, header, foci)
        _check_unique(path, experiment, seen)
        experiments.append(experiment)
    if check_bounds:
        _check_bounds(path, space, experiments)
    return space, experiments


def _read_lines(path) -> list[tuple[int, str]]:
    """The file's non-blank lines as NiMARE reads them, with their numbers: decoded in the
    default encoding (that of ``open``), universal newlines, trailing whitespace removed."""
    raw = path.read_bytes()
    for bom, what, fix in _BOMS:
        if raw.startswith(bom):
            _fail(path, 1, f"found {what} byte-order mark at the start of the file; NiMARE "
                  f"reads it as part of the Reference line and refuses the file: {fix}")
    encoding = locale.getpreferredencoding(False)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as err:
        line = len(_LINE_END.findall(raw[: err.start])) + 1
        _fail(path, line, f"found byte 0x{raw[err.start]:02x}, which is not {encoding} text, "
              f"the encoding NiMARE reads the file in here: save the file as {encoding}")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    stripped = ((number, line.rstrip()) for number, line in enumerate(lines, start=1))
    return [(number, line) for number, line in stripped if line]


def _space(path, number, line) -> str:
    """The space of NiMARE's Reference line: spaces removed, every ``//Reference=`` cut."""
    value = line.replace(" ", "").replace("//Reference=", "")
    if value not in SLEUTH_SPACES:
        _fail(path, number, _reference_problem(line))
    return SLEUTH_SPACES[value]


def _reference_problem(line) -> str:
    """What is wrong with a first line NiMARE refuses, and the line it would read."""
    if "\ufeff" in line:
        return (f"found a byte-order mark (U+FEFF) in {line!r}; NiMARE refuses it: save the "
                "file without BOM (UTF-8)")
    like = _REFERENCE_LIKE.match(line)
    written = {name.lower(): name for name in SLEUTH_SPACES}
    space = written.get(like["value"].replace(" ", "").lower()) if like else None
    if like is None:
        return (f"expected '// Reference=MNI' (or TAL or Talairach) as the first line, found "
                f"{line!r}")
    if space is None:
        return (f"unknown reference space {like['value']!r} in {line!r}; NiMARE reads MNI, "
                "TAL and Talairach")
    value = ([] if like["value"].replace(" ", "") == space
             else ["NiMARE reads the space as written (MNI, TAL or Talairach)"])
    reasons = _as_written(like, "Reference", line, value)
    if not reasons:
        return f"expected '// Reference={space}', found {line!r}"
    return f"found {line!r}; {'; '.join(reasons)}: '// Reference={space}'"


def _as_written(like, keyword, line, value_reasons=()) -> list[str]:
    """Why NiMARE refuses a Reference or Subjects ``line`` that ``like`` matched (any case,
    any whitespace): a keyword not spelled ``keyword``, ``value_reasons``, whitespace other
    than spaces (NiMARE removes only spaces)."""
    reasons = [] if like["key"] == keyword else ["NiMARE reads the keyword as written"]
    reasons += value_reasons
    if any(char.isspace() and char != " " for char in line):
        reasons.append("NiMARE removes the spaces of the line, not its tabs or other "
                       "whitespace")
    return reasons


def _blocks(lines):
    """The lines after the Reference line as NiMARE groups them: the lines before the first
    header, and per experiment its header lines (a run of ``//`` lines) and focus lines."""
    leading: list[tuple[int, str]] = []
    blocks: list[tuple[list, list]] = []
    for number, line in lines:
        if line.startswith("//"):
            if not blocks or blocks[-1][1]:  # a header line after foci starts an experiment
                blocks.append(([], []))
            blocks[-1][0].append((number, line))
        elif blocks:
            blocks[-1][1].append((number, line))
        else:
            leading.append((number, line))
    return leading, blocks


def _indented(line) -> str | None:
    """The problem of a line that would be a header line but for its leading whitespace."""
    if line.lstrip().startswith("//"):
        return (f"found {line!r}: NiMARE reads a header line only when '//' starts it, and "
                "reads this one as a focus; remove the whitespace before '//'")
    return None


def _before_header(line) -> str:
    """Deliberate: a line before the first header, which NiMARE skips."""
    problem = (f"found {line!r} before the first experiment header ('// name' and "
               "'// Subjects=N' lines); NiMARE would skip it without a word")
    if line.lstrip().startswith("//"):
        problem += (" (NiMARE reads a header line only when '//' starts it: remove the "
                    "whitespace before '//')")
    return problem


def _experiment(path, header, foci) -> Experiment:
    """One experiment from its header and focus lines (numbered)."""
    if foci and (problem := _indented(foci[0][1])):  # an indented header line ends it early
        _fail(path, foci[0][0], problem)
    subjects = _sample_size(path, header)
    _check_header(path, header)
    name = _name(header[:-1])
    if not name.strip():
        _fail(path, header[-1][0], f"sample size line {header[-1][1]!r} without an experiment "
              "name ('// name' line) before it; NiMARE would name the study ''")
    experiment = Experiment(name=name, subjects=subjects, line=header[0][0])
    if not foci:
        _fail(path, experiment.line, f"experiment {name!r} has no foci")
    experiment.foci = _all_foci(foci) or [_focus(path, number, line) for number, line in foci]
    experiment.focus_lines = [number for number, _ in foci]
    return experiment


def _all_foci(foci) -> list[tuple[float, float, float]] | None:
    """Every focus line converted at once, as NiMARE converts them (one ``np.array`` of
    the split lines), or None if any line has a problem: then :func:`_focus` checks line
    by line and reports the first (one conversion per line took 4 of 5 parts of the time
    of reading the shipped sets)."""
    lines = [line for _, line in foci]
    if any("," in line or _indented(line) for line in lines):
        return None
    try:
        xyz = np.array([line.split() for line in lines], dtype=float)
    except ValueError:  # a value that is not a number, or lines of unequal length
        return None
    if xyz.shape[1] != 3 or not np.isfinite(xyz).all():
        return None
    return [tuple(row) for row in xyz.tolist()]


def _name(lines) -> str:
    """NiMARE's experiment name: the lines without ``//``, stripped, joined by spaces."""
    return " ".join(line.replace("//", "").strip() for _, line in lines)


def _sample_size(path, header) -> int:
    """NiMARE's sample size: the header's last line, spaces removed, ``//Subjects=`` cut."""
    number, line = header[-1]
    value = line.replace(" ", "").replace("//Subjects=", "")
    if "Subjects" in line:
        try:
            subjects = int(value)
        except ValueError:
            if "//Subjects=" in line.replace(" ", ""):
                _fail(path, number, f"sample size {value!r} is not an integer (found {line!r})")
        else:
            if subjects < 1:
                _fail(path, number, f"sample size {subjects} must be at least 1 (found "
                      f"{line!r}; NiMARE would accept it)")
            return subjects
    _fail(path, number, _subjects_problem(header))


def _subjects_problem(header) -> str:
    """Why the last line of a header is not NiMARE's ``// Subjects=N`` line."""
    line = header[-1][1]
    like = _SUBJECTS_LIKE.match(line)
    if like is not None:
        reasons = _as_written(like, "Subjects", line)
        if reasons:
            return f"found {line!r}; {'; '.join(reasons)}: '// Subjects={like['value']}'"
    earlier = [n for n, text in header[:-1] if _sample_size_like(text)]
    if earlier:
        return (f"missing '// Subjects=N' line: the sample size line (line {earlier[-1]}) must "
                f"be the last header line of its experiment, found {line!r} after it")
    return (f"missing '// Subjects=N' line: the last line of an experiment's header ('//' "
            f"lines) gives its sample size, found {line!r}")


def _check_header(path, header):
    """Deliberate checks of the header lines before the sample size line."""
    for index, (number, line) in enumerate(header[:-1]):
        reference = _REFERENCE_LIKE.match(line)
        if reference and reference["value"].replace(" ", "").lower() in SPACES:
            _fail(path, number, f"a second Reference line {line!r}; one file has one space "
                  "(NiMARE would read the line as part of an experiment name)")
        if _sample_size_like(line):
            name = _name(header[:index])
            what = f"experiment {name!r} has no foci" if name.strip() else "no foci"
            _fail(path, header[0][0], f"{what}: its sample size line {line!r} (line {number}) "
                  f"is followed by another header line (line {header[index + 1][0]}); NiMARE "
                  f"would read one experiment named {_name(header[:-1])!r}")


def _sample_size_like(line) -> bool:
    """Whether a header line looks like a sample size line (any case, any whitespace)."""
    like = _SUBJECTS_LIKE.match(line)
    if like is None:
        return False
    try:
        int(like["value"].replace(" ", ""))
    except ValueError:
        return False
    return True


def _check_unique(path, experiment, seen):
    """Deliberate: one NiMARE id ``<study>-<contrast>`` per experiment."""
    other = seen.get(experiment.nimare_id)
    if other is None:
        seen[experiment.nimare_id] = experiment
        return
    if other.name == experiment.name:
        _fail(path, experiment.line, f"experiment name {experiment.name!r} repeats the one on "
              f"line {other.line} (NiMARE would keep only the later)")
    _fail(path, experiment.line, f"experiment {experiment.name!r} has NiMARE's id "
          f"{experiment.nimare_id!r}, as the one on line {other.line} ({other.name!r}): NiMARE "
          "names an experiment '<study>-<contrast>', splitting its name at the first ';' or "
          "':' after the year; make the names differ there")


def _focus(path, number, line) -> tuple[float, float, float]:
    """A focus as NiMARE reads it: the line split at whitespace, three numbers."""
    if problem := _indented(line):
        _fail(path, number, problem)
    if "," in line:
        _fail(path, number, f"coordinates are separated by spaces or tabs, not commas: "
              f"{line!r}")
    values = line.split()
    if len(values) != 3:
        _fail(path, number, f"a focus needs 3 coordinates (x y z), got {len(values)}: {line!r}")
    try:
        xyz = np.array(values, dtype=float)
    except ValueError:
        _fail(path, number, f"non-numeric coordinate in {line!r}")
    if not np.all(np.isfinite(xyz)):
        _fail(path, number, f"non-finite coordinate in {line!r} (NiMARE would accept it)")
    return tuple(float(v) for v in xyz)


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
