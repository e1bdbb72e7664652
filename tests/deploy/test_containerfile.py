"""One Containerfile builds every stage; containers/build.py names the images as the
config's ``containers`` defaults pull them. Fast: no podman (tests/deploy/test_containers.py
builds and runs the images)."""

from __future__ import annotations

import re

import pytest
import yaml

from ..workflow.conftest import REPO
from .conftest import BUILD, STAGES

pytestmark = pytest.mark.workflow

CONTAINERFILE = REPO / "containers" / "Containerfile"


def build_arg_default(text: str, name: str) -> str | None:
    """The default of ``ARG name=default`` in a Containerfile, None without one."""
    match = re.search(rf"^ARG {name}(?:=(\S+))?$", text, flags=re.MULTILINE)
    assert match, f"no ARG {name}"
    return match.group(1)


def test_one_containerfile_builds_every_stage_from_a_public_base():
    assert sorted(REPO.glob("containers/**/Containerfile")) == [CONTAINERFILE]
    text = CONTAINERFILE.read_text()
    assert build_arg_default(text, "BASE") == "docker.io/library/python:3.11-slim-bookworm"
    assert build_arg_default(text, "STAGE") is None  # a stage must be named
    assert "COPY ${STAGE}/requirements.txt" in text
    for stage in ("base", *STAGES):
        assert (REPO / "containers" / stage / "requirements.txt").is_file(), stage


def test_stages_share_the_layers_before_their_own():
    """ARG STAGE comes after Python and Snakemake are installed: a build argument in scope
    is part of each later layer's cache key, so earlier would give every stage its own copy."""
    text = CONTAINERFILE.read_text()
    assert text.index("requirements/base.txt") < text.index("ARG STAGE")


def test_containerfile_is_versioned_and_unprivileged():
    text = CONTAINERFILE.read_text()
    assert 'org.opencontainers.image.version="${VERSION}"' in text
    assert 'org.opencontainers.image.title="mirrorflow-${STAGE}"' in text
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}


def test_config_defaults_are_the_names_build_py_gives():
    """The images built locally are the ones the defaults name (and publish)."""
    expected = {stage: f"docker://{BUILD.image_name(stage)}" for stage in STAGES}
    assert expected["meta"] == f"docker://ghcr.io/mirrorflow/mirrorflow-meta:{BUILD.version()}"
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["containers"] == expected
    schema = yaml.safe_load((REPO / "config" / "config.schema.yaml").read_text())
    defaults = {stage: node["default"]
                for stage, node in schema["properties"]["containers"]["properties"].items()}
    assert defaults == expected


def test_build_options_name_the_registry_and_the_base():
    assert BUILD.image_name("group", "registry.example.org/lab/") == (
        f"registry.example.org/lab/mirrorflow-group:{BUILD.version()}")
    assert BUILD.build_args("meta", None) == [
        "--build-arg=STAGE=meta", f"--build-arg=VERSION={BUILD.version()}"]
    assert "--build-arg=BASE=localhost/os:1" in BUILD.build_args("meta", "localhost/os:1")
    args = BUILD.parse_args(["preproc", "--registry", "example.org/x", "--base", "debootstrap"])
    assert (args.stages, args.registry, args.base) == (["preproc"], "example.org/x", "debootstrap")
    with pytest.raises(SystemExit):
        BUILD.parse_args(["nonsense"])
