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

from .conftest import REPO, file_states, own_workdir, snakemake

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


def edit_image(change):
    def edit(path: Path):
        img = nib.load(path)
        data = np.asarray(img.dataobj, dtype=np.float32)
        change(data)
        broken = nib.Nifti1Image(data, img.affine, img.header)
        broken.set_data_dtype(np.float32)  # NaN and infinity need a float type
        nib.save(broken, path)
    return edit


def _voxel(index, value):
    def change(data):
        data[index] = value
    return change


def _frozen(data):
    data[:] = data[..., :1]


def add_modulation(values):
    def edit(path: Path):
        table = pd.read_csv(path, sep="\t")
        table["modulation"] = [values[i % len(values)] for i in range(len(table))]
        table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return edit


def drop_condition(condition):
    def edit(path: Path):
        table = pd.read_csv(path, sep="\t")
        table[table["trial_type"] != condition].to_csv(path, sep="\t", index=False)
    return edit


def repeat_first_event(path: Path):
    table = pd.read_csv(path, sep="\t")
    pd.concat([table, table.iloc[[0]]]).to_csv(path, sep="\t", index=False)


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
    # Sleuth files as NiMARE reads them (parse; NiMARE would refuse them in a job).
    ("sleuth-keyword-in-lower-case", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/lower.txt'}}}}}}\n",
     ["lower.txt, line 1: found '// reference=MNI'; NiMARE reads the keyword as written"]),
    ("sleuth-with-byte-order-mark", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/bom.txt'}}}}}}\n",
     ["bom.txt, line 1: found a UTF-8 byte-order mark"]),
    ("categories-share-an-experiment", None, None,
     "meta: {{categories: {{mimicry: {{format: sleuth, path: '{tmp}/other.txt'}}, "
     "contagion: {{format: sleuth, path: '{tmp}/same.txt'}}}}}}\n",
     ["'mimicry' (Sleuth file", "share 1 experiment id(s), which the ALE subtraction refuses"]),
    # Numbers that are not finite, keys written twice, constraints of later steps (parse).
    ("config-nan", None, None, "preproc: {{fwhm: .nan}}\n",
     ["case.yaml, line 1: preproc.fwhm is .nan; every number in the config must be finite"]),
    ("config-inf-threshold", None, None, "qc:\n  max_mean_fd: .inf\n",
     ["case.yaml, line 2: qc.max_mean_fd is .inf"]),
    ("config-nan-in-a-list", None, None,
     "macm: {{seeds: {{kind: spheres, spheres: [{{xyz: [0, .NaN, 0], radius: 6}}]}}}}\n",
     ["case.yaml, line 1: macm.seeds.spheres[0].xyz[1] is .NaN"]),
    ("config-duplicate-key", None, None, "preproc: {{fwhm: 6}}\npreproc: {{fwhm: 8}}\n",
     ["case.yaml: key 'preproc' is written twice, on lines 1 and 2"]),
    ("config-duplicate-nested-key", None, None, "group:\n  inference:\n    alpha: 0.05\n"
     "    n_perm: 1000\n    alpha: 0.01\n",
     ["case.yaml: key 'group.inference.alpha' is written twice, on lines 3 and 5"]),
    ("config-permutations-below-alpha", None, None, "group: {{inference: {{n_perm: 10}}}}\n",
     ["group.inference.n_perm (10) cannot give p_FWE <= group.inference.alpha (0.05)"]),
    ("config-iterations-below-alpha", None, None, "macm: {{n_iters: 10}}\n",
     ["macm.n_iters (10) cannot give p_FWE < macm.alpha (0.05)"]),
    ("config-more-shards-than-blocks", None, None,
     "meta: {{contrast: {{n_iters: 300, shards: 4}}}}\n",
     ["meta.contrast.shards (4) exceeds the blocks of 100 iterations"]),
    ("macm-sphere-without-a-voxel", None, None,
     "macm: {{seeds: {{kind: spheres, spheres: [{{label: ok, xyz: [0, 10, 40], radius: 6}}, "
     "{{label: tiny, xyz: [1, 1, 1], radius: 0.5}}]}}}}\n",
     ["macm.seeds.spheres[1] ('tiny' at [1, 1, 1], radius 0.5 mm) holds no voxel"]),
    ("macm-mask-empty", None, None,
     "macm: {{seeds: {{kind: masks, masks: ['{tmp}/empty_mask.nii.gz']}}}}\n",
     ["empty_mask.nii.gz: the mask is empty"]),
    # An output folder that would write into the dataset (parse).
    ("output-is-the-dataset", None, None, "output_dir: '{bids}'\n",
     ["is the study.bids_dir folder", "derivatives/mirrorflow"]),
    ("output-contains-the-dataset", None, None, "output_dir: '{tmp}'\n",
     ["contains the study.bids_dir folder"]),
    ("output-inside-the-dataset", None, None, "output_dir: '{bids}/sub-01/out'\n",
     ["lies inside the study.bids_dir folder", "outside its derivatives/ folder"]),
    # Images without a usable signal (at the start of the run).
    ("bold-with-nan", BOLD, edit_image(_voxel((10, 10, 10, 5), np.nan)), "",
     [BOLD, "1 value(s) are NaN or infinite (the first in volume 6)"]),
    ("bold-all-zero", BOLD, edit_image(_voxel(..., 0.0)), "", [BOLD, "every value is zero"]),
    ("bold-constant-over-time", BOLD, edit_image(_frozen), "",
     [BOLD, "brain voxels are constant over time: no BOLD signal"]),
    ("t1w-with-infinity", T1W, edit_image(_voxel((0, 0, 0), np.inf)), "",
     [T1W, "1 value(s) are NaN or infinite;"]),
    ("t1w-constant", T1W, edit_image(_voxel(..., 300.0)), "", [T1W, "every value is 300"]),
    # Events columns that nilearn would read as amplitudes or merge (at the start of the run).
    ("events-modulation-unconfigured", EVENTS, add_modulation([1.0, 2.0]), "",
     [EVENTS, "column 'modulation' would set each event's amplitude", "firstlevel.modulation"]),
    ("events-modulation-missing", None, None, "firstlevel: {{modulation: true}}\n",
     [EVENTS, "firstlevel.modulation is true but the file has no 'modulation' column"]),
    ("events-modulation-not-numeric", EVENTS, add_modulation([1.0, "n/a"]),
     "firstlevel: {{modulation: true}}\n",
     [EVENTS, "column 'modulation' has non-numeric, missing or infinite values (rows 2"]),
    ("events-repeated-event", EVENTS, repeat_first_event, "", [EVENTS, "repeat an event"]),
    ("events-negative-duration", EVENTS, edit_events(duration=(0, -3.0)), "",
     [EVENTS, "negative durations (rows [1])"]),
    ("events-missing-trial-type", EVENTS, edit_events(trial_type=(1, "n/a")), "",
     [EVENTS, "column 'trial_type' has missing values (rows 2)"]),
    ("events-without-a-contrast-condition", EVENTS, drop_condition("mismatch"), "",
     [EVENTS, "no events of condition(s) ['mismatch'], which the contrasts"]),
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
    (tmp_path / "lower.txt").write_text(SLEUTH.replace("// Reference", "// reference"))
    (tmp_path / "bom.txt").write_text("\ufeff" + SLEUTH, encoding="utf-8")
    (tmp_path / "other.txt").write_text(SLEUTH.replace("50 16 12", "40 10 12"))
    (tmp_path / "same.txt").write_text(SLEUTH)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)),
             tmp_path / "empty_mask.nii.gz")
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
    before = file_states(tmp_path, content=True)
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
    # The input dataset, and every other file in the case's folder, untouched.
    assert file_states(tmp_path, content=True) == before


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("preproc:\n  fwhm: 6\n   resolution: 4\n",
         ", line 3, column 14: not valid YAML (mapping values are not allowed here)"),
        ("preproc:\n  fwhm: 6\n  fwhm: 8\n",
         ": key 'preproc.fwhm' is written twice, on lines 2 and 3"),
    ],
    ids=["syntax-error", "duplicate-key"],
)
def test_the_workflows_own_config_file_is_read_strictly(tmp_path, text, expected):
    """config/config.yaml, which the catalog's standard usage edits in place, is read
    before Snakemake's own reading (which names neither the file nor the line)."""
    workdir = own_workdir(tmp_path / "workflow")
    (workdir / "config").unlink()
    shutil.copytree(REPO / "config", workdir / "config")
    config = workdir / "config" / "config.yaml"
    config.write_text(text)
    result = snakemake("-n", "--cores", "1", cwd=workdir, check=False)
    assert result.returncode != 0
    assert f"config file config/config.yaml{expected}" in result.stdout + result.stderr
