"""The workflow parses, dry-runs, lints and is formatted, as users check it in their CI."""

import re
import subprocess
import sys

import pytest

from .conftest import REDUCED, REPO, snakemake

pytestmark = pytest.mark.workflow


def _job_counts(out: str) -> dict[str, int]:
    """Jobs per rule from the job-stats table of a dry run's output."""
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if len(line.split()) == 2 and line.split()[1].isdigit()}


def _inputs(out: str) -> set[str]:
    """Every input path of the jobs a dry run lists."""
    return {path for line in out.splitlines() if line.strip().startswith("input:")
            for path in re.split(r"[,\s]+", line.strip()[len("input:"):]) if path}


@pytest.mark.parametrize("configfile", [None, REDUCED], ids=["default", "reduced"])
def test_dry_run_plans_every_stage(configfile, tmp_path):
    args = ["-n", "--config", f"output_dir={tmp_path}/results"]
    if configfile:
        args = ["--configfile", configfile, *args]
    out = snakemake(*args).stdout
    # First-level jobs are planned once the QC checkpoint has chosen the included runs.
    assert "checkpoint" in out
    for rule in ["simulate_study", "preproc_anat", "preproc_bold", "preproc_qc",
                 "preproc_qc_table", "group_model",
                 "group_overlap", "group_behaviour", "meta_inputs", "meta_ale",
                 "meta_contributions", "meta_conjunction", "meta_contrast", "meta_clusters",
                 "macm_reference", "macm_seed", "macm_ale"]:
        assert rule in out, rule


def test_malformed_sleuth_file_stops_the_workflow_before_any_job(tmp_path):
    """A Sleuth file with a non-numeric coordinate on line 5: Snakemake stops while parsing,
    names the file and the line, and writes nothing."""
    bad = tmp_path / "bad.txt"
    bad.write_text("// Reference=MNI\n// Smith et al., 2010; faces\n// Subjects=12\n"
                   "-46 -6 48\n50 x 12\n")
    overlay = tmp_path / "config.yaml"
    overlay.write_text(f"meta:\n  categories:\n    mimicry: {{format: sleuth, path: {bad}}}\n")
    out = tmp_path / "results"
    result = snakemake("--cores", "1", "--configfile", overlay, "--config",
                       f"output_dir={out}", check=False)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert f"Sleuth file {bad}, line 5: non-numeric coordinate" in message, message[-3000:]
    assert not out.exists()


def test_default_dry_run_job_counts(tmp_path):
    out = snakemake("-n", "--config", f"output_dir={tmp_path}/results").stdout
    # 20 simulated participants x 2 runs; GLMs wait for the QC checkpoint.
    counts = _job_counts(out)
    assert counts["preproc_anat"] == 20
    assert counts["preproc_bold"] == counts["preproc_qc"] == 40
    assert counts["preproc_qc_table"] == 1
    assert "firstlevel_glm" not in counts


def test_lint_is_clean():
    result = snakemake("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _dry_run_with(tmp_path, text):
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(text)
    return snakemake("-n", "--configfile", configfile, "--config",
                     f"output_dir={tmp_path}/results", check=False)


def test_bad_config_value_stops_the_dry_run_with_a_clear_message(tmp_path):
    result = _dry_run_with(tmp_path, "preproc: {fwhm: -2, resolution: 4}\n")
    assert result.returncode != 0
    assert "-2 is less than the minimum of 0" in result.stdout + result.stderr
    assert "['preproc']['fwhm']" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_bad_cross_reference_stops_the_dry_run(tmp_path):
    result = _dry_run_with(tmp_path, "study: {source: bids, task: imitation}\n")
    assert result.returncode != 0
    assert "study.bids_dir is required" in result.stdout + result.stderr


def _bids_root(root, name):
    """A BIDS dataset folder with its description and the scores of sub-01 and sub-02."""
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        f'{{"Name": "{name}", "BIDSVersion": "1.9.0"}}')
    (root / "participants.tsv").write_text(
        "participant_id\teq\taccuracy\nsub-01\t40\t60\nsub-02\t50\t70\n")


def _sessions_tree(root):
    _bids_root(root, "sessions")
    for sub in ("01", "02"):
        anat = root / f"sub-{sub}" / "ses-a" / "anat"
        anat.mkdir(parents=True)
        (anat / f"sub-{sub}_ses-a_T1w.nii.gz").write_text("")
        for ses in ("a", "b"):
            func = root / f"sub-{sub}" / f"ses-{ses}" / "func"
            func.mkdir(parents=True, exist_ok=True)
            for suffix in ("bold.nii.gz", "events.tsv"):
                (func / f"sub-{sub}_ses-{ses}_task-imitation_run-1_{suffix}").write_text("")


def test_dry_run_on_a_bids_dataset_with_sessions(tmp_path):
    """Sessions become a wildcard of every per-run path; nothing is planned inside the
    input dataset (no rule may write there). The BOLD sidecars a run inherits, at the
    dataset, subject and session levels, are inputs of its preprocessing (a changed
    value reruns it); those of other tasks or sessions are not."""
    bids = tmp_path / "bids"
    _sessions_tree(bids)
    for name in ("task-imitation_bold.json", "task-rest_bold.json",
                 "sub-01/sub-01_task-imitation_bold.json",
                 "sub-01/ses-a/sub-01_ses-a_task-imitation_bold.json",
                 "sub-01/ses-b/func/sub-01_ses-b_task-imitation_run-1_bold.json"):
        (bids / name).write_text("{}")
    config = tmp_path / "sessions.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}', sessions: [b]}}\n")
    out = snakemake("-n", "--configfile", config, "--config",
                    f"output_dir={tmp_path}/results").stdout
    counts = _job_counts(out)
    assert counts["preproc_anat"] == 2 and counts["preproc_bold"] == 2
    assert "sub-01/ses-b/func/sub-01_ses-b_task-imitation_run-1_space-" in out
    assert "ses-a_task" not in out.replace("ses-a_T1w", "")
    outputs = [line for line in out.splitlines() if line.strip().startswith("output:")]
    assert outputs and not any(str(bids) in line for line in outputs)
    sidecars = {p for p in _inputs(out) if p.startswith(str(bids)) and p.endswith(".json")}
    assert sidecars == {str(bids / name) for name in (
        "task-imitation_bold.json", "sub-01/sub-01_task-imitation_bold.json",
        "sub-01/ses-b/func/sub-01_ses-b_task-imitation_run-1_bold.json")}


def test_dry_run_with_a_t1w_per_session(tmp_path):
    """preproc.t1w: session: each session's own T1w is brain-extracted and normalised on
    its own (one anatomical job per session) and that session's runs are registered to
    it; a session without a T1w, or the setting on a study without sessions, stops the
    dry run with one message."""
    bids = tmp_path / "bids"
    _sessions_tree(bids)
    for sub in ("01", "02"):
        anat = bids / f"sub-{sub}" / "ses-b" / "anat"
        anat.mkdir()
        (anat / f"sub-{sub}_ses-b_T1w.nii.gz").write_text("")
    config = tmp_path / "sessions.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}'}}\npreproc: {{t1w: session}}\n")
    args = ("-n", "--configfile", config, "--config", f"output_dir={tmp_path}/results")
    out = snakemake(*args).stdout
    counts = _job_counts(out)
    assert counts["preproc_anat"] == 4 and counts["preproc_bold"] == 4
    inputs = _inputs(out)
    for sub in ("01", "02"):
        for ses in ("a", "b"):
            assert f"{bids}/sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_T1w.nii.gz" in inputs
            assert (f"{tmp_path}/results/preproc/sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_"
                    "desc-brain_T1w.nii.gz") in inputs  # the session's runs' registration
    (bids / "sub-02/ses-b/anat/sub-02_ses-b_T1w.nii.gz").unlink()
    refused = snakemake(*args, check=False)
    assert refused.returncode != 0
    assert (f"{bids}/sub-02/ses-b/anat: no T1w image (*_T1w.nii.gz), which preproc.t1w: "
            "session needs in every session") in refused.stdout + refused.stderr
    flat = tmp_path / "flat"
    _bids_root(flat, "no sessions")
    for sub in ("01", "02"):
        for folder, name in (("anat", "T1w.nii.gz"), ("func", "task-imitation_run-1_bold.nii.gz"),
                             ("func", "task-imitation_run-1_events.tsv")):
            (flat / f"sub-{sub}" / folder).mkdir(parents=True, exist_ok=True)
            (flat / f"sub-{sub}" / folder / f"sub-{sub}_{name}").write_text("")
    config.write_text(f"study: {{source: bids, bids_dir: '{flat}'}}\npreproc: {{t1w: session}}\n")
    refused = snakemake(*args, check=False)
    assert refused.returncode != 0
    assert "preproc.t1w is 'session' (a T1w per session) but the study has no sessions" in \
        refused.stdout + refused.stderr


def test_dry_run_on_uncompressed_bold_with_two_acquisitions(tmp_path):
    """As public archives hold data: uncompressed ``.nii`` series, each run acquired twice
    (acq-mb, acq-sb), one events file per run without acq (it applies to both, by BIDS
    inheritance). study.filters picks acq-mb: its ``.nii`` files are the preprocessing
    inputs, the shared events files the first level's; without a filter the dry run stops
    at parse time naming a file and the config key."""
    bids = tmp_path / "bids"
    _bids_root(bids, "acq")
    for sub in ("01", "02"):
        (bids / f"sub-{sub}" / "anat").mkdir(parents=True)
        (bids / f"sub-{sub}" / "anat" / f"sub-{sub}_T1w.nii").write_text("")
        func = bids / f"sub-{sub}" / "func"
        func.mkdir()
        for run in ("1", "2"):
            stem = f"sub-{sub}_task-imitation"
            (func / f"{stem}_run-{run}_events.tsv").write_text("")
            for acq in ("mb", "sb"):
                (func / f"{stem}_acq-{acq}_run-{run}_bold.nii").write_text("")
    config = tmp_path / "acq.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}'}}\n")
    refused = snakemake("-n", "--configfile", config, "--config",
                        f"output_dir={tmp_path}/results", check=False)
    assert refused.returncode != 0
    assert re.search(r"acq-[ms]b_run-[12]_bold.nii: entities \['acq'\] tell acquisitions "
                     r"apart; select one in config study.filters", refused.stdout)
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}', filters: {{acq: mb}}}}\n")
    out = snakemake("-n", "--configfile", config, "--config",
                    f"output_dir={tmp_path}/results").stdout
    counts = _job_counts(out)
    assert counts["preproc_anat"] == 2 and counts["preproc_bold"] == 4
    inputs = _inputs(out)
    for sub in ("01", "02"):
        assert f"{bids}/sub-{sub}/anat/sub-{sub}_T1w.nii" in inputs
        for run in ("1", "2"):
            assert f"{bids}/sub-{sub}/func/sub-{sub}_task-imitation_acq-mb_run-{run}_bold.nii" \
                in inputs
    assert "acq-sb" not in out
    # Outputs are named by subject, task and run (the acquisition is in their sidecars'
    # Sources), outside the dataset.
    assert "sub-01_task-imitation_run-2_space-" in out
    outputs = [line for line in out.splitlines() if line.strip().startswith("output:")]
    assert outputs and not any(str(bids) in line for line in outputs)


def test_dry_run_on_a_single_run_task_named_without_run_entity(tmp_path):
    """Most public datasets name a task's only run without run-: each is run 1 (the
    derivatives say run-1; ``runs: [1]``, a YAML integer, selects it), and its events file
    is inherited from the dataset root. The series are the preprocessing inputs; nothing
    is planned in the dataset."""
    bids = tmp_path / "bids"
    _bids_root(bids, "single run")
    (bids / "task-imitation_events.tsv").write_text("")
    for sub in ("01", "02"):
        for folder, name in (("anat", "T1w.nii.gz"), ("func", "task-imitation_bold.nii.gz")):
            (bids / f"sub-{sub}" / folder).mkdir(parents=True, exist_ok=True)
            (bids / f"sub-{sub}" / folder / f"sub-{sub}_{name}").write_text("")
    config = tmp_path / "single.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}', runs: [1]}}\n")
    out = snakemake("-n", "--configfile", config, "--config",
                    f"output_dir={tmp_path}/results").stdout
    assert _job_counts(out)["preproc_bold"] == 2
    inputs = _inputs(out)
    for sub in ("01", "02"):
        assert f"{bids}/sub-{sub}/func/sub-{sub}_task-imitation_bold.nii.gz" in inputs
        assert f"sub-{sub}/func/sub-{sub}_task-imitation_run-1_space-" in out
    outputs = [line for line in out.splitlines() if line.strip().startswith("output:")]
    assert outputs and not any(str(bids) in line for line in outputs)


def test_dry_run_on_fmriprep_derivatives_of_a_release_before_20_2(tmp_path):
    """A user's fMRIPrep folder as a release before 20.2 wrote it: series at res-2 and the
    confounds table named desc-confounds_regressors.tsv. Without fmriprep_res the dry run
    stops naming the spaces and resolutions found; with it, each run's import reads the
    table under its old name."""
    bids, deriv = tmp_path / "bids", tmp_path / "fmriprep"
    _bids_root(bids, "raw")
    _bids_root(deriv, "fMRIPrep 20.1.3")
    space = "space-MNI152NLin2009cAsym_res-2"
    for sub in ("01", "02"):
        (bids / f"sub-{sub}" / "func").mkdir(parents=True)
        (bids / f"sub-{sub}" / "func" / f"sub-{sub}_task-imitation_run-1_events.tsv"
         ).write_text("")
        func = deriv / f"sub-{sub}" / "func"
        func.mkdir(parents=True)
        stem = f"sub-{sub}_task-imitation_run-1"
        for name in (f"{space}_desc-preproc_bold.nii.gz", f"{space}_desc-brain_mask.nii.gz",
                     "desc-confounds_regressors.tsv"):
            (func / f"{stem}_{name}").write_text("")
    study = f"source: fmriprep, bids_dir: '{bids}', fmriprep_dir: '{deriv}'"
    config = tmp_path / "fmriprep.yaml"
    config.write_text(f"study: {{{study}}}\n")
    args = ("-n", "--configfile", config, "--config", f"output_dir={tmp_path}/results")
    refused = snakemake(*args, check=False)
    assert refused.returncode != 0
    assert "desc-preproc_bold runs found; found: space-MNI152NLin2009cAsym res-2 (config " \
        "study.fmriprep_space, study.fmriprep_cohort and study.fmriprep_res)" \
        in refused.stdout + refused.stderr
    config.write_text(f"study: {{{study}, fmriprep_res: 2}}\n")  # a YAML integer
    out = snakemake(*args).stdout
    assert _job_counts(out)["preproc_import"] == 2
    inputs = _inputs(out)
    for sub in ("01", "02"):
        func = f"{deriv}/sub-{sub}/func/sub-{sub}_task-imitation_run-1"
        assert {f"{func}_{space}_desc-preproc_bold.nii.gz",
                f"{func}_{space}_desc-brain_mask.nii.gz",
                f"{func}_desc-confounds_regressors.tsv"} <= inputs


def test_dry_run_on_series_spm_preprocessed(tmp_path):
    """Series another pipeline normalised (SPM's swr files, uncompressed, outside any BIDS
    tree), found by a file pattern, without masks or confounds tables: each run is imported
    from its series alone; a pattern that matches nothing stops the dry run naming it."""
    bids, spm = tmp_path / "bids", tmp_path / "spm"
    _bids_root(bids, "raw")
    for sub in ("01", "02"):
        (bids / f"sub-{sub}" / "func").mkdir(parents=True)
        (bids / f"sub-{sub}" / "func" / f"sub-{sub}_task-imitation_events.tsv").write_text("")
        (spm / f"sub{sub}").mkdir(parents=True)
        (spm / f"sub{sub}" / "swrimitation.nii").write_text("")
    pattern = f"{spm}/sub{{sub}}/swr{{task}}.nii"
    config = tmp_path / "spm.yaml"
    config.write_text(f"study: {{source: preprocessed, bids_dir: '{bids}', preprocessed: "
                      f"{{bold: '{pattern}', smoothed: true}}}}\n")
    args = ("-n", "--configfile", config, "--config", f"output_dir={tmp_path}/results")
    out = snakemake(*args).stdout
    assert _job_counts(out)["preproc_import"] == 2
    inputs = _inputs(out)
    assert {f"{spm}/sub01/swrimitation.nii", f"{spm}/sub02/swrimitation.nii"} <= inputs
    assert not [p for p in inputs if p.startswith(str(spm)) and not p.endswith(".nii")]
    assert "sub-02_task-imitation_run-1_space-MNI152NLin6Asym_res-" in out
    config.write_text(f"study: {{source: preprocessed, bids_dir: '{bids}', preprocessed: "
                      f"{{bold: '{spm}/sub{{sub}}/wr{{task}}.nii'}}}}\n")
    refused = snakemake(*args, check=False)
    assert refused.returncode != 0
    assert f"study.preprocessed.bold '{spm}/sub{{sub}}/wr{{task}}.nii': no task-imitation " \
        "series match it" in refused.stdout + refused.stderr


def test_label_with_shell_characters_stops_the_dry_run(tmp_path):
    bids = tmp_path / "bids"
    _sessions_tree(bids)
    (bids / "sub-0;1").mkdir()
    config = tmp_path / "bad.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}'}}\n")
    result = snakemake("-n", "--configfile", config, "--config",
                       f"output_dir={tmp_path}/results", check=False)
    assert result.returncode != 0
    assert "'0;1' is not a valid BIDS label" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_every_rule_has_a_log_and_heavy_rules_a_benchmark():
    import re

    blocks = {}
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        # Rules under an if (firstlevel_fixed) are indented.
        starts = list(re.finditer(r"^ *(?:rule|checkpoint) (\w+):", text, flags=re.M))
        for this, nxt in zip(starts, [*starts[1:], None]):
            blocks[this.group(1)] = text[this.start(): nxt.start() if nxt else len(text)]
    assert len(blocks) >= 18
    assert "firstlevel_fixed" in blocks
    for rule, block in blocks.items():
        assert re.search(r"\n +log:", block), rule
    # Rules whose jobs take minutes on real data (measured on this 2-core machine).
    for rule in ("simulate_study", "preproc_anat", "preproc_bold", "firstlevel_glm",
                 "group_model", "meta_ale", "meta_contrast", "macm_ale"):
        assert re.search(r"\n +benchmark:", blocks[rule]), rule


def test_users_ci_validation_command_and_github_workflow():
    """The shipped GitHub Actions workflow installs the pinned environment and runs
    .ci/validate, whose dry-run part (lint, snakefmt, a dry run of each test config)
    passes here; the end-to-end part is the same run as tests/workflow/test_end_to_end.py."""
    import os

    import yaml

    workflow = yaml.safe_load((REPO / ".github/workflows/validate.yaml").read_text())
    steps = [step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "python -m pip install -r requirements.lock -e ." in steps
    assert {"bash .ci/validate --dry-only", "REPORT=report.html bash .ci/validate --e2e-only"} \
        <= set(steps)
    result = subprocess.run(["bash", ".ci/validate", "--dry-only"], cwd=REPO, text=True,
                            capture_output=True, timeout=600,
                            env={**os.environ, "PYTHON": sys.executable})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    for step in ("snakemake --lint", "snakefmt --check", "dry run: default config",
                 "dry run: reduced config", "dry run: fmriprep config", "validation passed"):
        assert f"== {step}" in output, step
    assert subprocess.run(["bash", ".ci/validate", "--bogus"], cwd=REPO).returncode == 2
