"""Every stage in its own OCI image, built with podman from the one Containerfile under the
name the config's defaults pull, run through Snakemake's apptainer code path (a
podman-backed ``apptainer`` on PATH), with the same results as a bare run."""

from __future__ import annotations

import json
import os
import subprocess
import tomllib

import pytest

from ..workflow.conftest import REPO, snakemake
from .conftest import BUILD, STAGES, assert_same_results, build_images, shim_path

pytestmark = pytest.mark.system

VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
#: What each stage's scripts import, and a package of another stage it must not have
#: (preprocessing needs NiMARE for its head template, so it holds the meta packages too).
STAGE_IMPORTS = {
    "simulate": ("mirrorflow.simulate.study", "nimare"),
    "preproc": ("mirrorflow.preproc.run, ants, nipy.algorithms.registration", None),
    "firstlevel": ("mirrorflow.glm.firstlevel", "nipype"),
    "group": ("mirrorflow.group.maps, mirrorflow.group.overlap, mirrorflow.group.behaviour, "
              "mirrorflow.group.inference, mirrorflow.group.tfce, mirrorflow.clusters", "nimare"),
    "meta": ("mirrorflow.meta.macm, mirrorflow.meta.contrast, mirrorflow.meta.conjunction, "
             "mirrorflow.simulate.coordinates", "nipype"),
}


def podman(*args, **kwargs):
    env = {"CONTAINERS_CONF": str(REPO / "containers" / "podman" / "containers.conf")}
    return subprocess.run(["podman", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, **kwargs)


@pytest.mark.parametrize("stage", STAGES)
def test_image_is_labelled_and_runs_as_a_user(images, stage):
    name = BUILD.image_name(stage)
    assert name == f"ghcr.io/mirrorflow/mirrorflow-{stage}:{VERSION}"
    info = json.loads(podman("image", "inspect", name).stdout)[0]
    labels = info["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.title"] == f"mirrorflow-{stage}"
    # Built on the test base (debootstrap, no registry here), a value of BASE.
    assert labels["org.opencontainers.image.base.name"].startswith("localhost/mirrorflow-os:")
    assert info["Config"]["User"] == "mirrorflow"
    uid = podman("run", "--rm", "--network", "none", name, "id", "-u")
    assert uid.returncode == 0, uid.stderr
    assert int(uid.stdout) != 0


@pytest.mark.parametrize("stage", STAGES)
def test_image_holds_its_stage_and_nothing_else(images, stage):
    """The stage's code imports offline from the workflow source alone (no host packages),
    and a package only another stage needs is absent."""
    imports, foreign = STAGE_IMPORTS[stage]
    name = BUILD.image_name(stage)
    common = ["run", "--rm", "--network", "none", "--volume", f"{REPO / 'src'}:/src:ro",
              "--env", "PYTHONPATH=/src", name, "python", "-c"]
    ok = podman(*common, f"import {imports}")
    assert ok.returncode == 0, ok.stderr
    if foreign:
        missing = podman(*common, f"import {foreign}")
        assert missing.returncode != 0
        assert "ModuleNotFoundError" in missing.stderr


def test_rebuilding_unchanged_stages_is_a_cache_hit(images):
    again = build_images(timeout=600)
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
    # Snakemake pulled each stage's image once, by the config's default (published) name,
    # and ran every job through apptainer exec.
    log = result.stdout + result.stderr
    assert log.count("Pulling singularity image") == len(STAGES), log[-3000:]
    for stage in STAGES:
        assert f"Pulling singularity image docker://{BUILD.image_name(stage)}" in log, stage
    jobs = log.count("Finished jobid")
    assert log.count("Activating singularity image") == jobs - 1  # rule all runs nothing
    bare_run = request.getfixturevalue("bare_run")
    assert assert_same_results(bare_run, out) > 50
