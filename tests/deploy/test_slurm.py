"""The workflow on a real SLURM cluster (single node on localhost) through the official
executor plugin, with the shipped profiles: same results as a bare run, participants'
jobs grouped, and a job refused for memory resubmitted with more."""

from __future__ import annotations

import re

import pytest
import yaml

from ..workflow.conftest import REPO, snakemake
from .conftest import CHAIN_TARGETS, assert_same_results, chain_targets

pytestmark = pytest.mark.system


@pytest.fixture(scope="module")
def slurm_run(slurm_cluster, small_config, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slurm-run")
    # The shipped workflow profile, and the rules' own resources except that the MACM job
    # first asks for 100 MB: far less than it estimates it needs (~1 GB here), then 8 GB
    # more on each retry.
    profile = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    profile["set-resources"] = {"macm_ale": {"mem_mb": "100 + 8000 * (attempt - 1)"}}
    workflow_profile = tmp / "workflow-profile"
    workflow_profile.mkdir()
    (workflow_profile / "config.yaml").write_text(yaml.safe_dump(profile))
    out = tmp / "results"
    result = snakemake(
        "--profile", REPO / "profiles" / "slurm", "--workflow-profile", workflow_profile,
        *chain_targets(out),
        "--cores", "2",  # this node's CPUs: the largest group job runs two jobs at a time
        *small_config, "--config", f"output_dir={out}",
        # This cluster has no slurmdbd (accounting): no account, status from squeue.
        "--slurm-no-account", "--slurm-status-command", "squeue",
        "--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "3",
        "--latency-wait", "5", "--slurm-logdir", tmp / "slurm-logs", "--slurm-keep-successful-logs",
        env=slurm_cluster,
    )
    return {"out": out, "log": result.stdout + result.stderr, "slurm_logs": tmp / "slurm-logs"}


def test_slurm_run_equals_bare_run(slurm_run, bare_run):
    """Every output of the chain targets (first-level maps, an ALE, the MACM: 30 maps and
    more) equals the bare run's."""
    assert assert_same_results(bare_run, slurm_run["out"], targets=CHAIN_TARGETS) > 30


def test_participants_jobs_are_grouped(slurm_run):
    """Four participants' preprocessing jobs (T1w, run, QC: twelve jobs) go out as one
    SLURM job, and their four first-level GLMs (after the QC checkpoint) as another: the
    profile bundles up to five participants' groups and ten GLMs."""
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", slurm_run["log"])
    logs = slurm_run["slurm_logs"]
    for group in ("participant", "firstlevel"):
        grouped = sorted(logs.glob(f"group_{group}*/**/*.log"))
        assert len(grouped) == 1, sorted(p.relative_to(logs) for p in logs.rglob("*.log"))
    for rule in ("preproc_anat", "preproc_bold", "preproc_qc", "firstlevel_glm"):
        assert not (logs / f"rule_{rule}").exists(), rule
    # Every other job is one submission; the MACM job is submitted twice (see below).
    assert len(set(submitted)) == len(list(logs.rglob("*.log")))


def test_job_short_of_memory_is_resubmitted_with_more(slurm_run):
    log = slurm_run["log"]
    assert re.search(r"Error in rule macm_ale", log)
    logs = sorted((slurm_run["slurm_logs"] / "rule_macm_ale").rglob("*.log"))
    texts = [path.read_text() for path in logs]
    refused = [t for t in texts if "MemoryError" in t and "granted 100 MB" in t]
    assert refused, texts
    assert len(logs) == 2  # refused, then resubmitted
    final = (slurm_run["out"] / "logs" / "macm_ale" / "meta-macm.log").read_text()
    assert "granted 8100 MB" in final
    assert (slurm_run["out"] / "macm" / "meta-macm_z_desc-thresholded.nii.gz").exists()
