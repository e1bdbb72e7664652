"""fMRIPrep derivatives as input, and QC exclusions, through the real workflow.

The simulator writes its study as fMRIPrep derivatives (motion-corrected MNI series, brain
masks, confounds with fMRIPrep's column names) beside raw events and participants.tsv; the
workflow imports, smooths, QCs, fits and runs the group stage, first for seven participants,
then with the eighth added (only its jobs and the group stage run). A run killed in the
middle of the first level resumes to the same outputs, and a second run on the same folder
is locked out meanwhile. Then the FD threshold is lowered: the runs above it are excluded
(with the reason written out), and only the jobs that depend on the exclusion rerun. The
same files read as a user's fMRIPrep dataset, with a score missing (n/a), leave that
participant out of the models that read the score only.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nilearn.image import resample_to_img

from .conftest import REDUCED, REPO, file_states, own_workdir, snakemake

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


def _job_subjects(stdout_and_err):
    """(rule, subject wildcard or None) of every job a run executed."""
    blocks = re.split(r"^(?=(?:local)?(?:rule|checkpoint) \w+:)", stdout_and_err, flags=re.M)
    jobs = []
    for block in blocks:
        rule = re.match(r"(?:local)?(?:rule|checkpoint) (\w+):", block)
        if rule:
            sub = re.search(r"^\s+wildcards:.*\bsub=(\w+)", block, flags=re.M)
            jobs.append((rule.group(1), sub.group(1) if sub else None))
    return jobs


def _results(out):
    """Data arrays of the first-level maps and the group maps, by relative path."""
    files = [*(out / "firstlevel").rglob("*.nii.gz"), *(out / "group").glob("*.nii.gz")]
    return {str(p.relative_to(out)): np.asarray(nib.load(p).dataobj) for p in sorted(files)}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Seven participants first, then the eighth added to the selection: the second run's
    jobs, and the results of the whole (incrementally built) study."""
    out = tmp_path_factory.mktemp("fmriprep") / "results"
    first = tmp_path_factory.mktemp("config") / "seven.yaml"
    first.write_text("study: {subjects: ['01', '02', '03', '04', '05', '06', '07']}\n")
    _run(out, first)
    # The study (raw BIDS and fMRIPrep derivatives, written by the first run) is only
    # read by the second: same files, same bytes.
    before = file_states(out / "sourcedata", content=True)
    added = _run(out)
    assert file_states(out / "sourcedata", content=True) == before
    return SimpleNamespace(out=out, added=_job_subjects(added.stdout + added.stderr),
                           results=_results(out))


def test_new_subject_runs_only_its_jobs_and_the_group_stage(study):
    jobs = Counter(study.added)
    per_subject = {rule for rule, sub in study.added if sub is not None}
    assert {sub for _, sub in study.added if sub is not None} == {"08"}
    # sub-08: two runs imported and QC'd, one GLM; nothing of sub-01..07 reruns.
    assert jobs[("preproc_import", "08")] == jobs[("preproc_qc", "08")] == 2
    assert jobs[("firstlevel_glm", "08")] == 1
    assert per_subject == {"preproc_import", "preproc_qc", "firstlevel_glm"}
    # The QC table and the group stage take the new subject in.
    assert {rule for rule, sub in study.added if sub is None} == {
        "preproc_qc_table", "group_mask", "group_model", "group_threshold",
        "group_behaviour"}


#: The crash test's participants: four of the eight, to their first-level maps.
CRASH_SUBJECTS = ["01", "02", "03", "04"]
#: The rules whose outputs the crash test copies from the study instead of running them.
COPIED = {"preproc_import", "preproc_qc"}


def test_killed_run_resumes_to_the_same_outputs_and_a_second_run_is_locked_out(
        study, tmp_path):
    """SIGKILL in the middle of the first-level stage, then the documented recovery
    (snakemake --unlock; snakemake): the outputs equal those of the uninterrupted study.
    While the resumed run works, a second run on the same output folder is refused by
    Snakemake's lock, and the first completes.

    Four participants to their first-level maps (another selection and other targets
    than the study's runs), in a new output folder that holds a copy of the study's
    sourcedata and of the four participants' imported and QC'd runs (files and times: the
    imports are tested by the study itself): the run makes the QC checkpoint for the
    selection and four GLMs, and is killed once at least one GLM has finished and while
    others run. In a working folder of its own (:func:`conftest.own_workdir`), so that the
    lock is this test's alone."""
    workdir = own_workdir(tmp_path / "workdir")
    out = tmp_path / "results"
    for folder in ("sourcedata", *(f"preproc/sub-{sub}" for sub in CRASH_SUBJECTS)):
        shutil.copytree(study.out / folder, out / folder)  # copy2: times kept
    selection = tmp_path / "four.yaml"
    selection.write_text(f"study: {{subjects: {CRASH_SUBJECTS}}}\n")
    targets = [str(out / name) for name in study.results
               if name.startswith("firstlevel/") and name.split("/")[1][4:] in CRASH_SUBJECTS]
    assert len(targets) >= 4 * 5
    command = [sys.executable, "-m", "snakemake", *targets, "--cores", "2",
               "--configfile", REDUCED, FMRIPREP, selection, "--config", f"output_dir={out}"]
    log = open(tmp_path / "killed.log", "w")
    killed = subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    glm_logs = out / "logs" / "firstlevel_glm"
    deadline = time.monotonic() + 900
    # Two GLMs run at a time: a third log means that one has finished.
    while not (glm_logs.exists() and len(list(glm_logs.glob("*.log"))) >= 3):
        assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait()
    # The copied imports and QC were trusted: the killed run started only at the checkpoint.
    assert not COPIED & set(_jobs((tmp_path / "killed.log").read_text()))

    snakemake("--unlock", "--configfile", REDUCED, FMRIPREP, selection,
              "--config", f"output_dir={out}", cwd=workdir)
    resumed = subprocess.Popen(command, cwd=workdir, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    locks = workdir / ".snakemake" / "locks"
    try:
        # Once the resumed run holds its lock (after building its DAG), start another.
        while not (locks.exists() and any(locks.iterdir())) and resumed.poll() is None:
            time.sleep(0.1)
        second = snakemake(*targets, "--cores", "1", "--configfile", REDUCED, FMRIPREP,
                           selection, "--config", f"output_dir={out}", check=False,
                           cwd=workdir)
        assert second.returncode != 0
        assert "Directory cannot be locked" in second.stdout + second.stderr
    finally:
        output, _ = resumed.communicate(timeout=1800)
    assert resumed.returncode == 0, output[-4000:]
    # The GLMs killed or not yet started were run, those finished before the kill not;
    # nothing upstream of them (the copied imports and QC).
    assert 1 <= len([j for j in _jobs(output) if j == "firstlevel_glm"]) < 4
    assert not COPIED & set(_jobs(output))
    results = _results(out)
    assert sorted(results) == sorted(str(Path(t).relative_to(out)) for t in targets)
    for name, data in results.items():
        np.testing.assert_array_equal(data, study.results[name], err_msg=name)


def test_fmriprep_inputs_are_imported_not_preprocessed(study):
    study = study.out
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
    study = study.out
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
    study = study.out
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


def test_missing_score_leaves_its_participant_out_of_what_reads_it(study, tmp_path):
    """The simulated study read as a user's fMRIPrep dataset (study.source: fmriprep; five
    participants, one run each), with sub-03's EQ score n/a in a scores table kept outside
    the dataset (study.participants): the EQ regression and the EQ-accuracy correlation
    leave sub-03 out and say so; the one-sample map keeps it. A score that is not a number
    stops the dry run, naming the table, the column and the participant."""
    sim = study.out / "sourcedata" / "simulated"
    scores = pd.read_csv(sim / "bids" / "participants.tsv", sep="\t", dtype=str)
    scores.loc[scores["participant_id"] == "sub-03", "eq"] = "high"
    table = tmp_path / "scores.tsv"
    scores.to_csv(table, sep="\t", index=False)
    out = tmp_path / "results"
    config = tmp_path / "user.yaml"
    config.write_text(
        f"study: {{source: fmriprep, bids_dir: '{sim / 'bids'}', fmriprep_dir: "
        f"'{sim / 'fmriprep'}', fmriprep_space: MNI152NLin2009aSym, fmriprep_res: '4', "
        f"participants: '{table}', subjects: ['01', '02', '03', '04', '05'], runs: ['1']}}\n")
    model = "task-imitation_space-MNI152NLin2009aSym_res-4_contrast-imitate_model-{}_stat-z"
    targets = [f"{out}/group/{model.format(m)}_statmap.nii.gz" for m in ("eq", "onesample")]
    targets.append(f"{out}/group/behaviour/desc-eqXaccuracy_correlation.json")
    args = (*targets, "--configfile", REDUCED, FMRIPREP, config, "--config",
            f"output_dir={out}")
    refused = snakemake("-n", *args, check=False)
    assert refused.returncode != 0
    assert (f"{table}: column 'eq' has non-numeric values (n/a marks a missing score) for "
            "['sub-03']") in refused.stdout + refused.stderr
    scores.loc[scores["participant_id"] == "sub-03", "eq"] = "n/a"
    scores.to_csv(table, sep="\t", index=False)
    snakemake(*args, "--cores", "2")

    def design(name):
        return pd.read_csv(out / "group" / f"task-imitation_contrast-imitate_model-{name}"
                           "_design.tsv", sep="\t", dtype=str)["map"].tolist()

    assert design("eq") == ["sub-01", "sub-02", "sub-04", "sub-05"]
    assert design("onesample") == ["sub-01", "sub-02", "sub-03", "sub-04", "sub-05"]
    sidecar = json.loads((out / "group" / f"{model.format('eq')}_statmap.json").read_text())
    assert sidecar["ParticipantsLeftOut"] == {"sub-03": ["eq"]}
    assert ", 4 participants," in sidecar["Description"]
    assert sidecar["Description"].endswith(" Left out for want of a score: sub-03 (eq).")
    correlation = json.loads(
        (out / "group" / "behaviour" / "desc-eqXaccuracy_correlation.json").read_text())
    assert correlation["n"] == 4


def test_series_another_pipeline_preprocessed_to_first_level_maps(study, tmp_path):
    """The simulated fMRIPrep series read as another pipeline's output (study.source:
    preprocessed: a file pattern, no mask, no confounds table): one participant's two runs
    to its first-level maps. The design uses no motion regressors and says so, QC keeps every run
    and says why, and the planted task region stands out in each participant's imitate
    z-map: mean z >= 3 inside it, |mean z| < 0.5 outside (seen 9.8 inside, 0.10 outside;
    the same series with fMRIPrep's mask and 6 motion and 2 aCompCor regressors: 8.3
    inside)."""
    sim = study.out / "sourcedata" / "simulated"
    out = tmp_path / "results"
    pattern = (f"{sim}/fmriprep/sub-{{sub}}/func/sub-{{sub}}_task-{{task}}_run-{{run}}_space-"
               "MNI152NLin2009aSym_res-4_desc-preproc_bold.nii.gz")
    config = tmp_path / "other.yaml"
    config.write_text(
        f"study: {{source: preprocessed, bids_dir: '{sim / 'bids'}', subjects: ['01'], "
        f"preprocessed: {{bold: '{pattern}', space: MNI152NLin2009aSym}}}}\n")
    z = ("firstlevel/sub-{0}/sub-{0}_task-imitation_space-MNI152NLin2009aSym_res-4_contrast-"
         "imitate_stat-z_statmap.nii.gz")
    snakemake(f"{out}/{z.format('01')}", "--cores", "2",
              "--configfile", REDUCED, FMRIPREP, config, "--config", f"output_dir={out}")
    design = json.loads((out / "firstlevel/sub-01/sub-01_task-imitation_design.json"
                         ).read_text())
    assert "confounds: none (no motion regressors)" in design["Description"]
    qc = pd.read_csv(out / "preproc/task-imitation_desc-qc_runs.tsv", sep="\t")
    assert qc["included"].all() and len(qc) == 2 and qc["mean_fd"].isna().all()
    assert "no run was excluded for motion" in json.loads(
        (out / "preproc/task-imitation_desc-qc_runs.json").read_text())["Description"]
    task = resample_to_img(nib.load(next((sim / "truth").glob("*desc-task_mask.nii.gz"))),
                           nib.load(out / z.format("01")), interpolation="nearest",
                           force_resample=True, copy_header=True).get_fdata() > 0
    other = nib.load(out / z.format("01")).get_fdata()
    brain = other != 0
    assert other[task & brain].mean() >= 3 and abs(other[~task & brain].mean()) < 0.5


def _as_sessions(sim: Path, root: Path, subjects) -> tuple[Path, Path]:
    """The simulated study's raw events and fMRIPrep series, their run 1 and run 2 as
    sessions 1 and 2 of a user's dataset (symbolic links): ``(bids, fmriprep)``."""
    bids, deriv = root / "bids", root / "fmriprep"
    for tree, source in ((bids, sim / "bids"), (deriv, sim / "fmriprep")):
        tree.mkdir(parents=True)
        for name in ("dataset_description.json", "participants.tsv"):
            if (source / name).exists():
                (tree / name).symlink_to(source / name)
        for sub in subjects:
            for path in (source / f"sub-{sub}" / "func").glob("*_run-[12]_*"):
                ses = path.name.split("_run-")[1][0]
                name = path.name.replace(f"sub-{sub}_", f"sub-{sub}_ses-{ses}_")
                folder = tree / f"sub-{sub}" / f"ses-{ses}" / "func"
                folder.mkdir(parents=True, exist_ok=True)
                (folder / name).symlink_to(path)
    return bids, deriv


def test_model_per_session_and_the_fixed_effects_of_a_participant(study, tmp_path):
    """A participant's two runs as two sessions of a user's fMRIPrep dataset, with
    firstlevel.sessions: each: a model per session (maps under ses-<label>/), and the
    participant's maps their fixed effects (rule firstlevel_fixed). Reference: the same
    runs fitted as one model by nilearn (the fMRIPrep study's first level, as its fixture
    left it: a later test excludes runs), which combines its runs' contrasts by fixed
    effects too: equal effects (to 1e-4 of their range) and z-maps (Pearson r >= 0.99)
    within the common mask."""
    sim = study.out / "sourcedata" / "simulated"
    bids, deriv = _as_sessions(sim, tmp_path / "user", ("01",))
    out = tmp_path / "results"
    config = tmp_path / "sessions.yaml"
    config.write_text(
        f"study: {{source: fmriprep, bids_dir: '{bids}', fmriprep_dir: '{deriv}', "
        f"fmriprep_space: MNI152NLin2009aSym, fmriprep_res: 4}}\n"
        "firstlevel: {sessions: each}\n")
    name = ("sub-{0}_task-imitation_space-MNI152NLin2009aSym_res-4_contrast-imitate_stat-{1}"
            "_statmap.nii.gz")
    result = snakemake(f"{out}/firstlevel/sub-01/{name.format('01', 'z')}", "--cores", "2",
                       "--configfile", REDUCED, FMRIPREP, config, "--config",
                       f"output_dir={out}")
    jobs = Counter(_jobs(result.stdout + result.stderr))
    assert jobs["firstlevel_glm"] == 2 and jobs["firstlevel_fixed"] == 1
    for sub in ("01",):
        for ses in ("1", "2"):
            assert (out / f"firstlevel/sub-{sub}/ses-{ses}" /
                    name.format(f"{sub}_ses-{ses}", "z")).exists()
        maps = {"each": {}, "across": {}}
        for stat in ("effect", "z"):
            path = f"firstlevel/sub-{sub}/{name.format(sub, stat)}"
            maps["each"][stat] = nib.load(out / path).get_fdata()
            maps["across"][stat] = study.results[path]
        mask = (maps["each"]["z"] != 0) & (maps["across"]["z"] != 0)
        effect = maps["each"]["effect"][mask], maps["across"]["effect"][mask]
        assert np.abs(effect[0] - effect[1]).max() <= 1e-4 * np.ptp(effect[1])
        assert np.corrcoef(maps["each"]["z"][mask], maps["across"]["z"][mask])[0, 1] >= 0.99
        sidecar = json.loads((out / f"firstlevel/sub-{sub}" / name.format(sub, "z").replace(
            ".nii.gz", ".json")).read_text())
        assert "combined by fixed effects" in sidecar["Description"]
