"""Which jobs a change reruns: dry runs (all of Snakemake's rerun triggers: mtime, params,
input, code, software-env) against the finished reduced run of conftest.py's ``run``.

Each case changes one thing and reads the jobs per rule from Snakemake's "Job stats"
table. A dry run stops at the QC checkpoint when that must rerun: the first-level jobs it
decides are then planned after it, so the FWHM case lists the jobs up to the checkpoint
and the aggregate jobs after it. A new subject and a changed QC threshold are checked on
real runs in test_fmriprep_mode.py.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from .conftest import REDUCED, REPO, snakemake

pytestmark = pytest.mark.e2e

N_SUBJECTS = 12  # config-reduced
META = {"meta_simulate", "meta_inputs", "meta_ale_null", "meta_ale", "meta_contributions",
        "meta_conjunction", "meta_contrast_null", "meta_contrast", "meta_clusters",
        "macm_reference", "macm_seed", "macm_null", "macm_ale"}
#: What the Snakefile reads relative to itself: its rules, scripts, environments, schema
#: and report captions.
WORKFLOW_FILES = ("Snakefile", "rules", "workflow", "envs", "config", "report")
#: The report's own jobs (methods, runtimes) follow every change of a result.
REPORT = {"report_methods", "report_runtimes"}


def planned(run, tmp_path, overlay: str = "", *args) -> dict[str, int]:
    """Jobs per rule of a dry run with the reduced config plus ``overlay`` (YAML)."""
    configs = [REDUCED]
    if overlay:
        configs.append(tmp_path / "change.yaml")
        configs[-1].write_text(overlay)
    result = snakemake("-n", "--configfile", *configs, *args, "--config", f"output_dir={run}")
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text[text.index("Job stats:"):]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", table, flags=re.M))
    counts.pop("total")
    counts.pop("all", None)
    return {rule: int(n) for rule, n in counts.items()}


def results(jobs: dict[str, int]) -> dict[str, int]:
    """``jobs`` without the report's jobs, after checking they follow the change once."""
    assert all(jobs.get(rule, 1) == 1 for rule in REPORT), jobs
    return {rule: n for rule, n in jobs.items() if rule not in REPORT}


@contextmanager
def edited(path: Path, edit):
    """``path`` edited inside the block (so newer than every output), then restored with
    its original bytes and times."""
    before, stat = path.read_bytes(), path.stat()
    try:
        edit(path)
        yield
    finally:
        path.write_bytes(before)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_finished_run_has_nothing_to_do(run, tmp_path):
    assert planned(run, tmp_path) == {}


@pytest.mark.parametrize("change, args", [
    ("", ["--set-threads", "preproc_bold=2", "meta_ale=1", "group_null=2"]),
    ("", ["--cores", "1"]),
    ("", ["--set-resources", "macm_ale:mem_mb=20000", "preproc_bold:runtime=90"]),
    ("", ["--quiet", "all"]),
    # Keys of another inference method than the one in use (permutation).
    ("group: {inference: {height_control: fdr, cluster_threshold: 10}}\n", []),
], ids=["threads", "cores", "resources", "verbosity", "unused-inference-keys"])
def test_settings_that_do_not_change_results_rerun_nothing(run, tmp_path, change, args):
    assert planned(run, tmp_path, change, *args) == {}


def test_smoothing_fwhm_reruns_smoothing_and_downstream_only(run, tmp_path):
    jobs = planned(run, tmp_path, "preproc: {fwhm: 8.0}\n")
    # Smoothing is the last node of each run's nipype workflow: the job reruns (and nipype
    # reuses its cached motion, registration and resampling nodes); its QC and the QC
    # table follow; the first level and group wait for the checkpoint.
    assert jobs["preproc_bold"] == jobs["preproc_qc"] == N_SUBJECTS
    assert jobs["preproc_qc_table"] == 1
    assert not {"simulate_study", "preproc_anat"} & set(jobs)
    assert not META & set(jobs)


def test_contrast_definition_reruns_first_level_and_group_only(run, tmp_path):
    jobs = results(planned(
        run, tmp_path, "firstlevel: {contrasts: {mismatchGtImitate: 2 * mismatch - imitate}}\n"))
    assert jobs.pop("firstlevel_glm") == N_SUBJECTS
    assert set(jobs) == {"group_mask", "group_model", "group_null", "group_threshold",
                         "group_overlap"}


@pytest.mark.parametrize("change", [
    "meta: {ale: {n_iters: 200}}\n",
    "meta: {ale: {cluster_forming_p: 0.005}}\n",
    "meta: {contrast: {voxel_p: 0.01}}\n",
    "macm: {n_iters: 300}\n",
], ids=["ale-iterations", "ale-threshold", "contrast-threshold", "macm-iterations"])
def test_meta_analysis_settings_rerun_the_meta_analysis_only(run, tmp_path, change):
    jobs = results(planned(run, tmp_path, change))
    assert jobs and set(jobs) <= META, jobs
    # Nothing upstream of the changed step: the inputs are not read again.
    assert not {"meta_simulate", "meta_inputs", "macm_reference"} & set(jobs)


def test_ale_iterations_rerun_the_ale_and_what_uses_its_maps(run, tmp_path):
    jobs = planned(run, tmp_path, "meta: {ale: {n_iters: 200}}\n")
    assert jobs["meta_ale"] == 2 and jobs["meta_ale_null"] == 4  # 2 categories x 2 shards
    # The gated subtraction reads the thresholded ALE maps; its permutations do not.
    assert "meta_contrast" in jobs and "meta_contrast_null" not in jobs
    assert {"meta_conjunction", "macm_seed", "macm_ale"} <= set(jobs)


@pytest.mark.parametrize("change, merge, null", [
    ("meta: {ale: {alpha: 0.01}}\n", "meta_ale", "meta_ale_null"),
    ("meta: {ale: {level: voxel}}\n", "meta_ale", "meta_ale_null"),
    ("meta: {contrast: {voxel_p: 0.01}}\n", "meta_contrast", "meta_contrast_null"),
    ("meta: {contrast: {gate: none}}\n", "meta_contrast", "meta_contrast_null"),
    ("macm: {alpha: 0.01}\n", "macm_ale", "macm_null"),
], ids=["ale-alpha", "ale-level", "contrast-p", "contrast-gate", "macm-alpha"])
def test_thresholds_rerun_the_merge_not_the_null_shards(run, tmp_path, change, merge, null):
    """A threshold of the corrected maps does not change the Monte Carlo null (without an
    early stop): the merging job reruns, its shards do not."""
    jobs = planned(run, tmp_path, change)
    assert merge in jobs and null not in jobs, jobs


def test_shard_count_reruns_the_null_jobs(run, tmp_path):
    """Another number of shards means other shard jobs (the merged null is the same: see
    test_end_to_end.test_sharded_nulls_equal_one_process)."""
    jobs = planned(run, tmp_path, "meta: {ale: {shards: 3}}\nmacm: {shards: 1}\n")
    assert jobs["meta_ale_null"] == 6 and jobs["macm_null"] == 1
    assert "meta_contrast_null" not in jobs


def test_changed_behavioural_score_reruns_regressions_and_behaviour_only(run, tmp_path):
    participants = run / "sourcedata/simulated/bids/participants.tsv"

    def edit(path):
        table = pd.read_csv(path, sep="\t", dtype=str)
        table.loc[0, "eq"] = str(float(table.loc[0, "eq"]) + 1)
        table.to_csv(path, sep="\t", index=False)

    with edited(participants, edit):
        jobs = results(planned(run, tmp_path))
    # The regressions (eq, accuracy; 2 null shards each), their overlap and the
    # behavioural correlation; not the one-sample or paired maps, nothing per subject.
    assert jobs == {"group_model": 2, "group_null": 4, "group_threshold": 2,
                    "group_overlap": 1, "group_behaviour": 1}


def test_changed_events_table_reruns_that_subjects_first_level_and_the_group(run, tmp_path):
    events = run / "sourcedata/simulated/bids/sub-03/func/sub-03_task-imitation_run-1_events.tsv"
    with edited(events, lambda p: p.write_text(p.read_text().replace("\t16.0", "\t15.0"))):
        jobs = results(planned(run, tmp_path))
    # sub-03's GLM and the group maps built from the first level; no preprocessing, no
    # other subject, not the behavioural correlation, nothing of the meta-analysis.
    assert jobs == {"firstlevel_glm": 1, "group_mask": 1, "group_model": 4, "group_null": 8,
                    "group_threshold": 4, "group_overlap": 1}


@pytest.mark.parametrize("sidecar, runs", [
    ("task-imitation_bold.json", N_SUBJECTS),  # the dataset level: every run inherits it
    ("sub-03/func/sub-03_task-imitation_run-1_bold.json", 1),
], ids=["dataset-level", "run-level"])
def test_changed_bold_sidecar_reruns_the_runs_that_inherit_it(run, tmp_path, sidecar, runs):
    """Every sidecar a run inherits (BIDS inheritance) is an input of its preprocessing: a
    changed value reruns those runs, their QC and the QC table (the first level and group
    wait for the checkpoint); no T1w, no other run, nothing of the meta-analysis."""
    def edit(path):
        metadata = json.loads(path.read_text())
        metadata["Instructions"] = "edited"
        path.write_text(json.dumps(metadata))

    with edited(run / "sourcedata/simulated/bids" / sidecar, edit):
        jobs = results(planned(run, tmp_path))
    assert jobs["preproc_bold"] == jobs["preproc_qc"] == runs
    assert jobs["preproc_qc_table"] == 1
    assert not {"simulate_study", "preproc_anat"} & set(jobs)
    assert not META & set(jobs)


@pytest.mark.parametrize("script, rules", [
    # The methods read the correlation; the runtimes only jobs with a benchmark file.
    ("group_behaviour.py", {"group_behaviour", "report_methods"}),
    ("meta_conjunction.py", {"meta_conjunction", "meta_clusters", "macm_seed", "macm_null",
                             "macm_ale", *REPORT}),
])
def test_edited_script_reruns_its_rule_and_downstream(run, tmp_path, script, rules):
    """The script edited in a copy of the workflow's files (the repository's stay as they
    are for the other xdist worker's runs), run from the repository as usual."""
    copy = tmp_path / "workflow-copy"
    copy.mkdir()
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, copy / name)
    path = copy / "workflow" / "scripts" / script
    path.write_bytes(path.read_bytes() + b"\n# edited\n")
    jobs = planned(run, tmp_path, "", "--snakefile", copy / "Snakefile")
    assert set(jobs) == rules
