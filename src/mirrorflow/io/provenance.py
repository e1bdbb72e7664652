"""Provenance of every derivative, in its JSON sidecar.

A map sent to a co-author without the run folder can be traced from its sidecar alone:
the rule that wrote it, the rule's parameters, the whole workflow configuration of that
run, the software versions, and the SHA-256 of every input file. Each input's own sidecar
carries the same for its inputs, so the chain back to the raw data is in the files.

Scripts call :func:`stamp` last, with the ``snakemake`` object; the function merges a
``Provenance`` block into each declared sidecar (creating the sidecar of a data file whose
writer, e.g. NiMARE, wrote none).
"""

from __future__ import annotations

import hashlib
import json
import platform
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from mirrorflow.io.bids import sidecar_path, write_json

__all__ = ["SOFTWARE", "checksum", "provenance", "software_versions", "stamp"]

#: Distributions whose versions a sidecar records (those installed in the job's env).
SOFTWARE = (
    "mirrorflow",
    "snakemake",
    "nipype",
    "nipy",
    "antspyx",
    "nilearn",
    "nimare",
    "nibabel",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "matplotlib",
)


def software_versions() -> dict[str, str]:
    """Python and the installed versions of :data:`SOFTWARE`."""
    versions = {"python": platform.python_version()}
    for name in SOFTWARE:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


@lru_cache(maxsize=None)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def checksum(path) -> str:
    """``sha256:<hex>`` of a file, or of a folder's files (relative names and contents, in
    sorted order)."""
    path = Path(path)
    if path.is_dir():
        digest = hashlib.sha256()
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{item.relative_to(path)}\0{checksum(item)}\n".encode())
        return f"sha256:{digest.hexdigest()}"
    stat = path.stat()
    return f"sha256:{_sha256(str(path), stat.st_size, stat.st_mtime_ns)}"


def provenance(*, rule: str, inputs, params: dict, config: dict) -> dict:
    """The ``Provenance`` block of a derivative's sidecar."""
    return {
        "Rule": rule,
        "Parameters": params,
        "Software": software_versions(),
        "InputChecksums": {str(p): checksum(p) for p in dict.fromkeys(map(str, inputs))},
        "Config": config,
    }


def _jsonable(value):
    """``value`` as plain JSON: numpy values as numbers or lists, sets sorted, anything
    else that JSON cannot hold (paths) as text. Snakemake's Namedlist is a list."""
    return json.loads(json.dumps(value, default=_default))


def _default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set):
        return sorted(map(str, value))
    return str(value)


def stamp(smk, *, documents=()) -> list[Path]:
    """Merge the job's provenance into the JSON sidecar of each declared output.

    ``smk`` is the ``snakemake`` object of a script. Sidecars are the declared ``.json``
    outputs that sit beside a declared data file; one that the script did not write is
    created. ``documents`` are other declared JSON outputs (results such as a correlation)
    that get the block too. Returns the stamped files."""
    outputs = [str(p) for p in smk.output]
    data = [p for p in outputs if not p.endswith(".json")]
    sidecars = {str(sidecar_path(p)) for p in data} & set(outputs)
    targets = sorted(sidecars | {str(p) for p in documents})
    if not targets:
        return []
    params = {k: v for k, v in smk.params.items() if not callable(v)}
    block = _jsonable(
        provenance(rule=smk.rule, inputs=list(smk.input), params=params, config=smk.config)
    )
    stamped = []
    for target in targets:
        path = Path(target)
        metadata = json.loads(path.read_text()) if path.exists() else {}
        if not isinstance(metadata, dict):
            raise TypeError(f"{path}: a sidecar must hold a JSON object")
        metadata["Provenance"] = block
        stamped.append(write_json(path, metadata))
    return stamped
