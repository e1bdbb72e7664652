"""Cloud execution: the workflow with every input and output in an S3 bucket (a local
moto server), and the kubernetes, googlebatch and aws-batch profiles in a dry run."""

from __future__ import annotations

import re

import pytest

from ..workflow.conftest import REPO, snakemake
from .conftest import CHAIN_TARGETS, assert_same_results, chain_targets, s3_args, s3_client

BUCKET = "mirrorflow-e2e"


@pytest.mark.e2e
def test_workflow_on_s3_equals_bare_run(s3_server, small_config, tmp_path, request):
    """The chain targets (conftest.CHAIN_TARGETS) with S3 as default storage: inputs read
    from the bucket, every output written there (nothing locally), equal to the bare run
    (asked for after this run, so that another xdist worker can make it meanwhile)."""
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket=BUCKET)
    # Inputs go to the bucket first: the MACM reference (the study itself is simulated in
    # the bucket by the workflow).
    reference = REPO / ".pytest-reference"
    for path in reference.rglob("*.gz"):
        s3.upload_file(str(path), BUCKET, f"run/{path.relative_to(REPO)}")
    snakemake(*chain_targets("results-s3"), "--cores", "2", *small_config,
              "--config", "output_dir=results-s3", *s3_args(s3_server, f"s3://{BUCKET}/run"))
    # Nothing was written locally: the outputs exist only in the bucket.
    assert not (REPO / "results-s3").exists()
    local = tmp_path / "downloaded"
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                  Prefix="run/results-s3/")
        for obj in page.get("Contents", [])
    ]
    for key in keys:
        target = local / key[len("run/results-s3/"):]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(target))
    bare_run = request.getfixturevalue("bare_run")
    assert assert_same_results(bare_run, local, targets=CHAIN_TARGETS) > 30


@pytest.mark.workflow
@pytest.mark.parametrize("profile", ["kubernetes", "googlebatch", "aws-batch"])
def test_cloud_profile_dry_run(profile, s3_server, tmp_path):
    """Each cloud profile builds the full DAG (every rule) with its executor plugin;
    storage goes to the local S3 server (no cloud account here) and participants' jobs
    are grouped. Four participants of one run: the storage plugin asks the server about
    every file of the DAG (43 s a dry run with the default twenty participants, 14 s)."""
    s3 = s3_client(s3_server)
    bucket = f"dry-{profile}"
    s3.create_bucket(Bucket=bucket)
    # Inputs in the bucket: the MACM reference and the default Sleuth sets.
    for path in [*(REPO / "resources" / "neurosynth").glob("*.gz"),
                 *(REPO / "resources" / "meta").glob("*.txt")]:
        s3.upload_file(str(path), bucket, f"study/{path.relative_to(REPO)}")
    small = tmp_path / "small.yaml"
    small.write_text("simulation: {n_subjects: 4, n_runs: 1}\n")
    result = snakemake("-n", "--profile", REPO / "profiles" / profile, "--configfile", small,
                       *s3_args(s3_server, f"s3://{bucket}/study"))
    log = result.stdout + result.stderr
    assert re.search(rf"Using profiles? .*profiles/{profile}", log), log[-2000:]
    assert "preproc_bold" in log and "macm_ale" in log
