"""Find the runs of a raw BIDS dataset once, for the whole workflow."""

from __future__ import annotations

import re
from pathlib import Path

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.bids import check_label

__all__ = ["index_bids"]

_BOLD = re.compile(r"^sub-(?P<sub>[A-Za-z0-9]+)_task-(?P<task>[A-Za-z0-9]+)"
                   r"(?:_run-(?P<run>[A-Za-z0-9]+))?_bold\.nii(?:\.gz)?$")


def index_bids(bids_dir, *, task: str, subjects=(), runs=()) -> dict[str, list[str]]:
    """Map each selected subject label to its sorted run labels for ``task``.

    One directory listing per subject (no pybids index), so a dry run over thousands of
    subjects stays fast. ``subjects``/``runs`` restrict the selection; a selected subject
    without runs is an error.
    """
    bids_dir = Path(bids_dir)
    if not (bids_dir / "dataset_description.json").exists():
        raise InputDataError(f"{bids_dir}: not a BIDS dataset (no dataset_description.json)")
    check_label(task, what="task")
    wanted = {check_label(s, what="subject") for s in subjects}
    wanted_runs = {check_label(r, what="run") for r in runs}
    found = sorted(p.name[4:] for p in bids_dir.glob("sub-*") if p.is_dir())
    if wanted:
        absent = sorted(wanted - set(found))
        if absent:
            raise ConfigError(f"subjects {absent} are selected in config but absent from {bids_dir}")
        found = sorted(wanted)
    index = {}
    for sub in found:
        check_label(sub, what=f"subject directory in {bids_dir}")
        sub_runs = []
        for path in (bids_dir / f"sub-{sub}" / "func").glob(f"sub-{sub}_task-{task}*_bold.nii*"):
            match = _BOLD.match(path.name)
            if match and (not wanted_runs or match["run"] in wanted_runs):
                sub_runs.append(match["run"])
        if not sub_runs:
            if wanted:
                raise InputDataError(f"{bids_dir / f'sub-{sub}'}: no task-{task} BOLD runs")
            continue
        if None in sub_runs:
            raise InputDataError(
                f"{bids_dir / f'sub-{sub}' / 'func'}: BOLD files without a run entity are not "
                "supported yet; name them with run-<label>"
            )
        index[sub] = sorted(sub_runs)
    if not index:
        raise InputDataError(f"{bids_dir}: no task-{task} BOLD runs found")
    return index
