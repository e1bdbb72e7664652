"""Real scans through the workflow: studyforrest sub-02 (../shared/realdata, PDDL licence).

The T1w image has a skull and 0.7 mm voxels; the BOLD run (156 volumes, 3 mm voxels, TR
2 s, SliceTiming known) covers about 115 mm of the head, so the lower cerebellum is outside
its field of view. The dataset is given to the workflow as a DataLad clone of a public
archive often holds such a study: every file a symbolic link, the task's only run named
without run-, its events file at the dataset root (BIDS inheritance). One Snakemake run of
preprocessing, QC and the first-level GLM (tests/workflow/config-realdata), then checks
against the template and the atlas.
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.io.atlases import atlas_label
from mirrorflow.io.templates import template_files

from ..workflow.conftest import REPO, file_states, snakemake

pytestmark = pytest.mark.e2e

CONFIG = REPO / "tests" / "workflow" / "config-realdata" / "config.yaml"
REAL = REPO.parent / "shared" / "realdata" / "studyforrest-sub02"
SUB = "02"


def _as_public_archive(folder: Path) -> Path:
    """The real dataset as links (as a DataLad clone holds files), its one run renamed
    without run- and its events file moved to the dataset root."""
    renamed = {
        f"sub-{SUB}/func/sub-{SUB}_task-objectcategories_run-1_bold.nii.gz":
            f"sub-{SUB}/func/sub-{SUB}_task-objectcategories_bold.nii.gz",
        f"sub-{SUB}/func/sub-{SUB}_task-objectcategories_run-1_bold.json":
            f"sub-{SUB}/func/sub-{SUB}_task-objectcategories_bold.json",
        f"sub-{SUB}/func/sub-{SUB}_task-objectcategories_run-1_events.tsv":
            "task-objectcategories_events.tsv",
    }
    root = folder / "studyforrest"
    for path in sorted(p for p in REAL.rglob("*") if p.is_file()):
        name = str(path.relative_to(REAL))
        link = root / renamed.get(name, name)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    return root


def _full_config(folder):
    """config/config.yaml with each section of the real-data config replacing its
    counterpart one level down (Snakemake's own merge would keep the default contrasts);
    run with --replace-workflow-config."""
    import yaml

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for section, values in yaml.safe_load(CONFIG.read_text()).items():
        config[section] = {**config.get(section, {}), **values}
    # The dataset has no behavioural scores, which validate_participants checks before any
    # heavy job: placeholder scores, kept outside the dataset (study.participants), stand in
    # (only preprocessing and the first level run here).
    scores = folder / "participants.tsv"
    scores.write_text(f"participant_id\teq\taccuracy\nsub-{SUB}\t40\t0.7\n")
    config["study"]["participants"] = str(scores)
    config["study"]["bids_dir"] = str(_as_public_archive(folder))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("realdata")
    out = folder / "results"
    stem = f"sub-{SUB}_task-objectcategories"
    zmap = (f"{out}/firstlevel/sub-{SUB}/{stem}_space-MNI152NLin2009aSym_res-2_"
            "contrast-faceGtOthers_stat-z_statmap.nii.gz")
    qc_table = f"{out}/preproc/task-objectcategories_desc-qc_runs.tsv"
    before = file_states(REAL, content=True)
    # One subject: its jobs run one after the other, each with both cores (nipype MultiProc).
    snakemake(zmap, qc_table, "--cores", "2", "--set-threads", "preproc_anat=2",
              "preproc_bold=2", "--configfile", _full_config(folder),
              "--replace-workflow-config", "--config", f"output_dir={out}")
    # The input dataset is read, never written: same files, same bytes.
    assert file_states(REAL, content=True) == before
    return {"out": out, "zmap": zmap, "qc": qc_table, "stem": stem,
            "template": template_files(out / "tpl", 2)}


def _load(path):
    return np.asarray(nib.load(path).dataobj)


def test_t1w_brain_mask_matches_the_template_brain(run):
    brain = _load(run["template"]["template_mask"]) > 0
    mask = _load(run["out"] / f"preproc/sub-{SUB}/anat/"
                 f"sub-{SUB}_space-MNI152NLin2009aSym_res-2_desc-brain_mask.nii.gz") > 0
    dice = 2 * (mask & brain).sum() / (mask.sum() + brain.sum())
    # Seen: 0.97 (SyN of the extracted brain to the template).
    assert dice >= 0.9


def test_bold_mask_lies_inside_the_template_brain(run):
    brain = _load(run["template"]["template_mask"]) > 0
    mask = _load(run["out"] / f"preproc/sub-{SUB}/func/{run['stem']}_run-1_"
                 "space-MNI152NLin2009aSym_res-2_desc-brain_mask.nii.gz") > 0
    # Seen: 0.97 inside; the run covers most of the cerebrum, not the lower cerebellum.
    assert (mask & brain).sum() / mask.sum() >= 0.95
    assert 0.5 * brain.sum() < mask.sum() < brain.sum()


def test_motion_is_plausible_and_qc_includes_the_run(run):
    confounds = pd.read_csv(run["out"] / f"preproc/sub-{SUB}/func/{run['stem']}_run-1_"
                            "desc-confounds_timeseries.tsv", sep="\t", na_values="n/a")
    assert len(confounds) == 156
    # A cooperative adult in a 1-back task: seen mean FD 0.15 mm, max 0.39 mm.
    assert confounds["framewise_displacement"].mean() < 0.5
    assert {"a_comp_cor_00", "std_dvars"} <= set(confounds.columns)
    table = pd.read_csv(run["qc"], sep="\t", dtype={"sub": str, "run": str})
    assert table[["sub", "run"]].values.tolist() == [[SUB, "1"]]
    assert bool(table["included"].iloc[0])
    sidecar = json.loads((run["out"] / f"preproc/sub-{SUB}/func/{run['stem']}_run-1_"
                          "space-MNI152NLin2009aSym_res-2_desc-preproc_bold.json").read_text())
    assert sidecar["SliceTimingCorrected"] is True and sidecar["RepetitionTime"] == 2.0


def test_qc_figures_are_written(run):
    figures = sorted((run["out"] / f"preproc/sub-{SUB}/figures").glob("*.png"))
    assert {f.name.split("desc-")[1] for f in figures} == {
        "carpet_bold.png", "motion_bold.png", "registration_bold.png"}
    assert all(f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for f in figures)


def test_faces_activate_the_fusiform_gyrus(run):
    img = nib.load(run["zmap"])
    z = img.get_fdata()
    peak = np.unravel_index(np.argmax(z), z.shape)
    coordinate = nib.affines.apply_affine(img.affine, peak)
    label = atlas_label(coordinate)
    # Seen: z 6.3 at (42, -58, -10), right temporal-occipital fusiform cortex; on a 3 mm
    # grid the right occipital face area (40, -68, -9; z 6.2) wins by a hair.
    assert z[peak] > 5, (z[peak], coordinate)
    assert "Fusiform" in label, (label, coordinate)
