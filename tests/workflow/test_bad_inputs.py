"""A catalogue of bad inputs, each fed to the real workflow (``snakemake --cores 2``).

Every case starts from a small valid raw BIDS study (the simulator's, three participants,
one run each), breaks one thing, and runs the whole workflow. Each must stop with a
non-zero exit code and one message that names the file (or config key) and the problem,
before any heavy job: either while Snakefile is parsed (labels, selection, config schema,
coordinate files, participants' scores) or when the run starts, before its first job
(Snakefile's onstart: image headers and completeness, events against their runs). No job
starts and nothing is written.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.simulate.study import SimulationParams, simulate_study

from .conftest import REPO, snakemake

pytestmark = pytest.mark.workflow

SUB = "sub-01"
BOLD = f"{SUB}/func/{SUB}_task-imitation_run-1_bold.nii.gz"
BOLD_JSON = f"{SUB}/func/{SUB}_task-imitation_run-1_bold.json"
EVENTS = f"{SUB}/func/{SUB}_task-imitation_run-1_events.tsv"
T1W = f"{SUB}/anat/{SUB}_T1w.nii.gz"
SLEUTH = "// Reference=MNI\n// Smith et al., 2010; faces\n// Subjects=12\n-46 -6 48\n50 16 12\n"


@pytest.fixture(scope="module")
def valid_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    params = SimulationParams(n_subjects=3, n_runs=1, n_blocks=2, seed=3)
    simulate_study(root / "bids", root / "truth", params)
    return root / "bids"


# ----------------------------------------------------------------------------- defects
def truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def three_d(path: Path):
    img = nib.load(path)
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., 0], img.affine), path)


def sidecar_tr(path: Path):
    meta = json.loads(path.read_text())
    meta["RepetitionTime"] = 3.0  # the header says 2.0
    path.write_text(json.dumps(meta))


def edit_events(**change):
    def edit(path: Path):
        table = pd.read_csv(path, sep="\t")
        for column, (row, value) in change.items():
            table[column] = table[column].astype(object)
            table.loc[row, column] = value
        table.to_csv(path, sep="\t", index=False)
    return edit


def edit_participants(edit_table):
    def edit(path: Path):
        table = pd.read_csv(path, sep="\t", dtype=str)
        edit_table(table).to_csv(path, sep="\t", index=False)
    return edit


def _set(column, row, value):
    def change(table):
        table.loc[row, column] = value
        return table
    return change


def _duplicate_first(table):
    return pd.concat([table, table.iloc[[0]]], ignore_index=True)


def corrupt_json(path: Path):
    path.write_text('{"RepetitionTime": 2.0,')


def rename_subject(new: str):
    def edit(bids: Path):
        old = bids / SUB
        for path in sorted(old.rglob("*"), reverse=True):
            if path.is_file():
                path.rename(path.with_name(path.name.replace(SUB, f"sub-{new}")))
        old.rename(bids / f"sub-{new}")
    return edit


# (id, file to break (relative to the dataset, or None for the dataset), defect,
#  config overlay (YAML text; {bids} and {tmp} are filled in), expected message parts)
CASES = [
    ("truncated-bold", BOLD, truncate, "", [BOLD, "not a readable NIfTI image"]),
    ("truncated-t1w", T1W, truncate, "", [T1W, "not a readable NIfTI image"]),
    ("bold-not-gzip", BOLD, lambda p: p.write_bytes(gzip.decompress(p.read_bytes())[:5000]), "",
     [BOLD, "not a readable NIfTI image"]),
    ("3d-bold", BOLD, three_d, "", [BOLD, "expected a 4D BOLD series, found 3D"]),
    ("tr-disagrees", BOLD_JSON, sidecar_tr, "",
     [BOLD, "RepetitionTime 3.0 s in the sidecar disagrees with 2.0 s in the NIfTI header"]),
    ("bold-sidecar-not-json", BOLD_JSON, corrupt_json, "", [BOLD_JSON, "invalid JSON"]),
    ("unknown-trial-type", EVENTS, edit_events(trial_type=(0, "smile")), "",
     [EVENTS, "unknown trial types ['smile']"]),
    ("negative-onset", EVENTS, edit_events(onset=(1, -4.0)), "",
     [EVENTS, "negative onsets (rows [2])"]),
    ("onset-beyond-run", EVENTS, edit_events(onset=(1, 5000.0)), "",
     [EVENTS, "onsets at or beyond the end of the run"]),
    ("non-numeric-onset", EVENTS, edit_events(onset=(0, "soon")), "",
     [EVENTS, "column 'onset' has non-numeric or missing values"]),
    ("events-missing-column", EVENTS,
     lambda p: pd.read_csv(p, sep="\t").drop(columns="trial_type").to_csv(p, sep="\t", index=False),
     "", [EVENTS, "missing column(s) ['trial_type']"]),
    ("missing-events", EVENTS, lambda p: p.unlink(), "", [EVENTS, "does not exist"]),
    ("participants-without-eq", "participants.tsv",
     edit_participants(lambda t: t.drop(columns="eq")), "",
     ["participants.tsv", "missing column(s) ['eq']"]),
    ("participants-without-accuracy", "participants.tsv",
     edit_participants(lambda t: t.drop(columns="accuracy")), "",
     ["participants.tsv", "missing column(s) ['accuracy']"]),
    ("non-numeric-score", "participants.tsv", edit_participants(_set("accuracy", 2, "high")),
     "", ["participants.tsv", "column 'accuracy' has non-numeric values (n/a marks a "
          "missing score) for ['sub-03']"]),
    ("duplicate-participant", "participants.tsv", edit_participants(_duplicate_first), "",
     ["participants.tsv", "duplicate participant ids ['sub-01']"]),
    ("subject-not-in-dataset", None, None, "study: {{subjects: ['01', '09']}}\n",
     ["subjects ['09'] are selected in config but absent from", "bids"]),
    ("label-with-dotdot", None, None, "study: {{task: '../imitation'}}\n",
     ["'../imitation' does not match"]),
    ("subject-label-with-space", None, rename_subject("0 1"), "",
     ["'0 1' is not a valid BIDS label"]),
    ("subject-label-with-shell-characters", None, rename_subject("0;1"), "",
     ["'0;1' is not a valid BIDS label"]),
    ("path-with-shell-characters", None, None, "study: {{bids_dir: '{bids}/x;rm'}}\n",
     ["x;rm", "does not match"]),
    ("path-with-space", None, None, "output_dir: '{tmp}/my results'\n",
     ["my results", "does not match"]),
    ("config-breaks-schema", None, None, "preproc: {{fwhm: -6}}\n",
     ["-6 is less than the minimum of 0"]),
    ("malformed-sleuth", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/bad.txt'}}}}}}\n",
     ["bad.txt, line 5: non-numeric coordinate"]),
    ("coordinates-outside-the-brain", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/outside.txt'}}}}}}\n",
     ["outside.txt, line 5", "outside"]),
    ("missing-sleuth", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/absent.txt'}}}}}}\n",
     ["absent.txt: file does not exist"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_stops_the_workflow_with_one_clear_message(case, valid_study, tmp_path):
    name, target, defect, overlay, expected = case
    bids = tmp_path / "bids"
    shutil.copytree(valid_study, bids)
    if defect is not None:
        defect(bids / target if target else bids)
    (tmp_path / "bad.txt").write_text(SLEUTH.replace("50 16 12", "50 x 12"))
    (tmp_path / "outside.txt").write_text(SLEUTH.replace("50 16 12", "50 16 140"))
    out = tmp_path / "results"
    config = tmp_path / "config.yaml"
    config.write_text(
        f"output_dir: '{out}'\nstudy: {{source: bids, bids_dir: '{bids}'}}\n"
        # The shipped Sleuth sets, by absolute path (an overlay may replace one).
        f"meta: {{categories: {{mimicry: {{format: sleuth, path: "
        f"'{REPO}/resources/meta/mimicry.txt'}}, contagion: {{format: sleuth, path: "
        f"'{REPO}/resources/meta/contagion.txt'}}}}}}\n"
    )
    configs = [config]
    if overlay:
        configs.append(tmp_path / "case.yaml")
        configs[-1].write_text(overlay.format(bids=bids, tmp=tmp_path))
    result = snakemake("--cores", "2", "--configfile", *configs, check=False)
    message = result.stdout + result.stderr
    assert result.returncode != 0, message[-3000:]
    for part in expected:
        part = part.replace(BOLD, str(bids / BOLD)).replace(T1W, str(bids / T1W))
        part = part.replace(EVENTS, str(bids / EVENTS)).replace(BOLD_JSON, str(bids / BOLD_JSON))
        assert part in message, (part, message[-3000:])
    # Nothing written: no job started.
    for root in (out, tmp_path / "my results"):
        assert not root.exists() or not [p for p in root.rglob("*") if p.is_file()]
    started = re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", message, flags=re.M)
    assert not started, started
    # The input dataset is untouched by the attempt.
    assert not (bids / "derivatives").exists()
