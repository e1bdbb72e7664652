"""fMRIPrep derivatives as input, and QC exclusions, through the real workflow.

The simulator writes its study as fMRIPrep derivatives (motion-corrected MNI series, brain
masks, confounds with fMRIPrep's column names) beside raw events and participants.tsv; the
workflow imports, smooths, QCs, fits and runs the group stage. Then the FD threshold is
lowered: the runs above it are excluded (with the reason written out), and only the jobs
that depend on the exclusion rerun.
"""

import re

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img

from .conftest import REDUCED, REPO, snakemake

pytestmark = pytest.mark.e2e

FMRIPREP = REPO / "tests" / "workflow" / "config-fmriprep" / "config.yaml"
GROUP = "mismatchGtImitate"


def _targets(out):
    return [
        f"{out}/group/task-imitation_space-MNI152NLin2009aSym_res-4_contrast-{GROUP}_"
        "model-paired_stat-z_desc-thresholded_statmap.nii.gz",
        f"{out}/group/behaviour/desc-eqXaccuracy_correlation.json",
    ]


def _run(out, *extra):
    return snakemake(*_targets(out), "--cores", "2", "--configfile", REDUCED, FMRIPREP,
                     *extra, "--config", f"output_dir={out}")


def _jobs(stdout_and_err):
    """Rule names of the jobs a run executed."""
    return re.findall(r"^(?:local)?(?:rule|checkpoint) (\w+):", stdout_and_err, flags=re.M)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("fmriprep") / "results"
    _run(out)
    return out


def test_fmriprep_inputs_are_imported_not_preprocessed(study):
    log = (study / "logs").iterdir()
    assert {p.name for p in log} >= {"preproc_import", "preproc_qc", "firstlevel_glm"}
    assert not (study / "logs" / "preproc_bold").exists()
    bold = nib.load(next((study / "preproc/sub-01/func").glob("*run-1*desc-preproc_bold.nii.gz")))
    confounds = pd.read_csv(
        next((study / "preproc/sub-01/func").glob("*run-1_desc-confounds_timeseries.tsv")),
        sep="\t")
    # (12 s rest + 6 blocks x (16 s + 12 s rest)) / TR 2 s = 90 volumes
    assert bold.shape[3] == len(confounds) == 90
    assert bold.header.get_zooms()[3] == pytest.approx(2.0)
    assert {"framewise_displacement", "a_comp_cor_01"} <= set(confounds.columns)


def test_planted_mismatch_effect_is_recovered_from_fmriprep_inputs(study):
    img = nib.load(_targets(study)[0])
    found = img.get_fdata() > 0
    truth = nib.load(next((study / "sourcedata/simulated/truth").glob(
        f"*desc-{GROUP}_mask.nii.gz")))
    truth = resample_to_img(truth, img, interpolation="nearest", force_resample=True,
                            copy_header=True).get_fdata() > 0
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    # Seen: 0.6 with eight participants and two runs each (p < 0.005, 5 voxels).
    assert dice >= 0.4


def test_lower_fd_threshold_excludes_runs_and_reruns_only_their_dependants(study, tmp_path):
    table = pd.read_csv(study / "preproc/task-imitation_desc-qc_runs.tsv", sep="\t",
                        dtype={"sub": str, "run": str})
    assert table["included"].all() and len(table) == 16
    # A threshold between the runs' mean FDs: excludes the runs above it.
    threshold = float(np.median(table["mean_fd"]))
    above = table[table["mean_fd"] > threshold]
    config = tmp_path / "qc.yaml"
    config.write_text(f"qc: {{max_mean_fd: {threshold!r}}}\n")
    result = _run(study, config)
    jobs = _jobs(result.stdout + result.stderr)
    # Subjects that keep some runs but lose others refit; subjects that lose every run
    # leave the group; the others and every import/QC job stay.
    kept_any = set(table.loc[table["mean_fd"] <= threshold, "sub"])
    changed = sorted(set(above["sub"]) & kept_any)
    assert sorted(j for j in jobs if j == "firstlevel_glm") == ["firstlevel_glm"] * len(changed)
    assert "preproc_import" not in jobs and "preproc_qc" not in jobs
    assert "simulate_study" not in jobs
    assert {"preproc_qc_table", "group_model", "group_mask", "group_behaviour"} <= set(jobs)

    table = pd.read_csv(study / "preproc/task-imitation_desc-qc_runs.tsv", sep="\t",
                        dtype={"sub": str, "run": str})
    excluded = table[~table["included"]]
    assert sorted(excluded["run"] + excluded["sub"]) == sorted(above["run"] + above["sub"])
    assert excluded["reason"].str.contains("mean FD").all()
    kept = sorted(table.loc[table["included"], "sub"].unique())
    design = pd.read_csv(next((study / "group").glob(
        f"*contrast-{GROUP}_model-paired_design.tsv")), sep="\t", dtype=str)
    # Paired rows: sub-<label>_mismatch, then sub-<label>_imitate.
    rows = [s.removeprefix("sub-").split("_")[0] for s in design["map"]]
    assert rows == kept + kept
