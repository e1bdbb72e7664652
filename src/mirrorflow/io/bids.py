"""BIDS-Derivatives names, labels and JSON sidecars.

Every output path of the workflow is built from entities by :func:`bids_name`,
so that entity order follows the BIDS specification in one place.
"""

from __future__ import annotations

import glob
import json
import math
import os
import re
from pathlib import Path

from mirrorflow.exceptions import ConfigError

__all__ = [
    "ENTITY_ORDER",
    "bids_name",
    "bids_path",
    "dataset_description",
    "check_label",
    "clean_contrast_name",
    "sidecar_path",
    "save_float_image",
    "temporary_path",
    "write_json",
    "write_sidecar",
]

#: Entity order of BIDS-Derivatives file names (BIDS 1.9), plus the statistical-map entities
#: used by nilearn's ``save_glm_to_bids`` and NiMARE.
ENTITY_ORDER = (
    "sub",
    "ses",
    "task",
    "acq",
    "run",
    "space",
    "res",
    "contrast",
    "model",
    "shard",  # not BIDS: one job's share of a permutation null (intermediate files)
    "stat",
    "desc",
)

_LABEL = re.compile(r"^[A-Za-z0-9]+$")


def check_label(value, *, what: str) -> str:
    """Return ``value`` as a string if it is a valid BIDS label (alphanumeric), else raise.

    Labels end up in file names and shell commands, so anything else (``../``,
    spaces, shell characters, underscores, dashes) is refused.
    """
    label = str(value)
    if not _LABEL.match(label):
        raise ConfigError(
            f"{what} {label!r} is not a valid BIDS label: only letters and digits are allowed"
        )
    return label


def clean_contrast_name(name: str) -> str:
    """Turn a contrast name or expression into an alphanumeric camelCase label.

    ``"mismatch - imitate"`` becomes ``"mismatchMinusImitate"`` and ``"a>b"``
    becomes ``"aGtB"``, the convention of nilearn's BIDS GLM writer.
    """
    words = {"-": " minus ", "+": " plus ", ">": " gt ", "<": " lt ", "*": " times "}
    text = "".join(words.get(ch, ch) for ch in name)
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", text) if p]
    if not parts:
        raise ConfigError(f"contrast name {name!r} has no letters or digits")
    return parts[0][0].lower() + parts[0][1:] + "".join(p[0].upper() + p[1:] for p in parts[1:])


def bids_name(*, suffix: str, extension: str = ".nii.gz", **entities) -> str:
    """Build a BIDS file name from entities in specification order.

    Entities whose value is ``None`` are dropped; unknown entities raise.
    """
    unknown = set(entities) - set(ENTITY_ORDER)
    if unknown:
        raise ValueError(f"unknown BIDS entities {sorted(unknown)}; known: {ENTITY_ORDER}")
    parts = [f"{key}-{entities[key]}" for key in ENTITY_ORDER if entities.get(key) is not None]
    return "_".join([*parts, suffix]) + extension


def sidecar_path(path) -> Path:
    """The JSON sidecar path of a data file (``x.nii.gz`` -> ``x.json``)."""
    path = Path(path)
    name = path.name
    for ext in (".nii.gz", ".nii", ".tsv.gz", ".tsv", ".png", ".svg"):
        if name.endswith(ext):
            return path.with_name(name[: -len(ext)] + ".json")
    return path.with_suffix(".json")


def temporary_path(path: Path, suffix: str = "") -> Path:
    """The name to write ``path`` under before an atomic rename:
    ``.<name>.tmp<pid><suffix>`` beside it. Those that an earlier, killed attempt at the
    same output left are deleted first, so the rerun of a killed job leaves no partial
    file beside its outputs."""
    for stale in path.parent.glob(f".{glob.escape(path.name)}.tmp*"):
        stale.unlink(missing_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}{suffix}")


def write_json(path, data: dict) -> Path:
    """Write ``data`` as indented JSON, through a temporary name and an atomic rename.

    A number that is not finite (NaN, infinity: e.g. a statistic of an empty map) is
    written as ``null``: Python's ``NaN`` is not JSON, and BIDS validators refuse it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    plain = _null_non_finite(json.loads(json.dumps(data, default=_jsonable)))
    tmp.write_text(json.dumps(plain, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def write_sidecar(data_file, metadata: dict) -> Path:
    """Write the JSON sidecar of ``data_file``."""
    return write_json(sidecar_path(data_file), metadata)


def _null_non_finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _null_non_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_null_non_finite(item) for item in value]
    return value


def _jsonable(value):
    """Convert numpy scalars and arrays for :func:`json.dumps`."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def dataset_description(*, stage: str, source: str) -> dict:
    """``dataset_description.json`` content of one mirrorflow derivatives folder."""
    from mirrorflow import __version__

    return {
        "Name": f"mirrorflow {stage}",
        "BIDSVersion": "1.9.0",
        "DatasetType": "derivative",
        "GeneratedBy": [{"Name": "mirrorflow", "Version": __version__}],
        "SourceDatasets": [{"URL": str(source)}],
    }


def bids_path(folder: str, *, suffix: str, extension: str = ".nii.gz", **entities) -> str:
    """``folder/<bids_name>``: an output path template built from entities."""
    return f"{folder}/{bids_name(suffix=suffix, extension=extension, **entities)}"


def save_float_image(img, path) -> Path:
    """Save a statistical map as float32, through a temporary name and an atomic rename.

    nilearn's GLM and masker outputs carry the header of their mask (uint8); saved as
    they are, nibabel would scale the floats into 256 levels."""
    import nibabel as nib
    import numpy as np

    path = Path(path)
    data = np.asarray(img.get_fdata(dtype=np.float32), dtype=np.float32)
    out = nib.Nifti1Image(data, img.affine)
    out.header.set_xyzt_units(*img.header.get_xyzt_units())
    tmp = temporary_path(path, ".nii.gz")
    out.to_filename(tmp)
    os.replace(tmp, path)
    return path
