"""Every stage in its own OCI image, built with podman, run through Snakemake's apptainer
code path (a podman-backed ``apptainer`` on PATH), with the same results as a bare run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

import pytest

from ..workflow.conftest import REPO, snakemake
from .conftest import STAGES, assert_same_results, shim_path

pytestmark = pytest.mark.system

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
#: What each stage's scripts import, and a package of another stage it must not have
#: (preprocessing needs NiMARE for its head template, so it holds the meta packages too).
STAGE_IMPORTS = {
    "simulate": ("mirrorflow.simulate.study", "nimare"),
    "preproc": ("mirrorflow.preproc.run, ants, nipy.algorithms.registration", None),
    "firstlevel": ("mirrorflow.glm.firstlevel", "nipype"),
    "group": ("mirrorflow.group.maps, mirrorflow.group.overlap, mirrorflow.group.behaviour, "
              "mirrorflow.group.inference, mirrorflow.clusters", "nimare"),
    "meta": ("mirrorflow.meta.macm, mirrorflow.meta.contrast, mirrorflow.meta.conjunction, "
             "mirrorflow.simulate.coordinates", "nipype"),
}


def podman(*args, **kwargs):
    env = {"CONTAINERS_CONF": str(REPO / "containers" / "podman" / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, **kwargs)


@pytest.mark.parametrize("stage", STAGES)
def test_image_is_labelled_and_runs_as_a_user(images, stage):
    name = f"localhost/mirrorflow-{stage}:{VERSION}"
    info = json.loads(podman("image", "inspect", name).stdout)[0]
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == f"mirrorflow-{stage}"
    assert info["Config"]["User"] == "mirrorflow"
    uid = podman("run", "--rm", "--network", "none", name, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert int(uid.stdout) != 0


@pytest.mark.parametrize("stage", STAGES)
def test_image_holds_its_stage_and_nothing_else(images, stage):
    """The stage's code imports offline from the workflow source alone (no host packages),
    and a package only another stage needs is absent."""
    imports, foreign = STAGE_IMPORTS[stage]
    name = f"localhost/mirrorflow-{stage}:{VERSION}"
    common = ["run", "--rm", "--network", "none", "--volume", f"{REPO / 'src'}:/src:ro",
              "--env", "PYTHONPATH=/src", name, "python", "-c"]
    ok = podman(*common, f"import {imports}")
    assert ok.returncode == 0, ok.stderr
    if foreign:
        missing = podman(*common, f"import {foreign}")
        assert missing.returncode != 0
        assert "ModuleNotFoundError" in missing.stderr


def test_rebuilding_unchanged_stages_is_a_cache_hit(images):
    again = subprocess.run([sys.executable, REPO / "containers" / "build.py"],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Installing collected packages" not in again.stdout
    steps = [line for line in again.stdout.splitlines() if line.startswith("STEP ")]
    assert steps
    assert again.stdout.count("--> Using cache") == sum(
        1 for line in steps if not line.split(": ", 1)[1].startswith("FROM ")
    )


def test_workflow_in_containers_equals_bare_run(images, small_config, tmp_path, request):
    """Every rule in its stage's image; the bare run is asked for after this run, so that
    another xdist worker can make it meanwhile."""
    out = tmp_path / "results"
    result = snakemake(
        "--cores", "2", *small_config, "--config", f"output_dir={out}",
        "--software-deployment-method", "apptainer", "--apptainer-prefix", tmp_path / "sif",
        env={"PATH": shim_path(tmp_path)},
    )
    # Snakemake pulled each stage's image once and ran every job through apptainer exec.
    log = result.stdout + result.stderr
    assert log.count("Pulling singularity image") == len(STAGES), log[-3000:]
    jobs = log.count("Finished jobid")
    assert log.count("Activating singularity image") == jobs - 1  # rule all runs nothing
    bare_run = request.getfixturevalue("bare_run")
    assert assert_same_results(bare_run, out) > 50
