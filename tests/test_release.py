"""The release's version is the same everywhere it is written, and the release files are
well-formed: pyproject.toml, ``mirrorflow.__version__``, CITATION.cff, the CHANGELOG's
newest entry, the container images' tags, and the ``versionadded`` notes of the source."""

import importlib.util
import json
import re
import tomllib
from pathlib import Path

import jsonschema
import pytest
import yaml
from packaging.version import InvalidVersion, Version

import mirrorflow

REPO = Path(__file__).resolve().parents[1]

#: A version-like image tag: ``0.1.0``, ``v1.2``, ``1.0.0rc1``.
VERSION_TAG = re.compile(r"^v?\d+(\.\d+)+([.-]?[A-Za-z]+\d*)*$")
#: ``## [0.1.0] - 2026-12-07`` (Keep a Changelog).
ENTRY = re.compile(r"^## \[(?P<version>[^\]]+)\](?: - (?P<date>\S+))?", re.MULTILINE)
#: An image reference with a tag, written anywhere: ``.../mirrorflow-preproc:0.1.0``.
IMAGE_REF = re.compile(r"mirrorflow-[a-z]+:(?P<tag>[\w.+-]+)")
DIRECTIVE = re.compile(r"\.\. version(?:added|changed):: *(?P<version>\S+)")


def package_version(repo: Path = REPO) -> str:
    """The version in pyproject.toml."""
    return tomllib.loads((repo / "pyproject.toml").read_text())["project"]["version"]


class _TextDates(yaml.SafeLoader):
    """A safe YAML loader that keeps dates as written (``2026-12-07``), not as dates."""


_TextDates.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_scalar)


def citation(repo: Path = REPO) -> dict:
    """CITATION.cff, read as CFF tools read it (its dates as text, as the schema wants)."""
    return yaml.load((repo / "CITATION.cff").read_text(encoding="utf-8"), Loader=_TextDates)


def newest_changelog_entry(repo: Path = REPO) -> tuple[str, str | None]:
    """(version, date) of the CHANGELOG's first released entry (``Unreleased`` skipped)."""
    for match in ENTRY.finditer((repo / "CHANGELOG.md").read_text(encoding="utf-8")):
        if match["version"].lower() != "unreleased":
            return match["version"], match["date"]
    raise AssertionError("CHANGELOG.md has no released entry (## [x.y.z] - YYYY-MM-DD)")


def image_tag(image: str) -> str | None:
    """The tag of an image reference (``docker://host/name:0.1.0`` -> ``0.1.0``) when it
    is a version, else None (no tag, a digest, a .sif path, ``latest``)."""
    name = image.rsplit("/", 1)[-1]
    if ":" not in name or "@" in name:
        return None
    tag = name.rsplit(":", 1)[1]
    return tag.removeprefix("v") if VERSION_TAG.match(tag) else None


def container_tags(repo: Path = REPO) -> dict[str, str]:
    """``{where: version tag}`` of every versioned image in config/config.yaml's
    ``containers`` and in the schema's defaults for them."""
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((repo / "config" / "config.schema.yaml").read_text())
    images = {f"config/config.yaml containers.{stage}": image
              for stage, image in config["containers"].items()}
    for stage, node in schema["properties"]["containers"]["properties"].items():
        if "default" in node:
            images[f"config/config.schema.yaml containers.{stage} default"] = node["default"]
    return {where: tag for where, image in images.items() if (tag := image_tag(image))}


def written_image_tags(repo: Path = REPO) -> dict[str, str]:
    """``{file:line: tag}`` of every versioned mirrorflow image named in the profiles and
    the README (examples a user copies)."""
    files = sorted((repo / "profiles").glob("*/config.yaml")) + [repo / "README.md"]
    tags = {}
    for path in files:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for match in IMAGE_REF.finditer(line):
                if VERSION_TAG.match(match["tag"]):
                    where = f"{path.relative_to(repo)}:{number}"
                    tags[where] = match["tag"].removeprefix("v")
    return tags


def version_directives(repo: Path = REPO) -> dict[str, str]:
    """``{file:line: version}`` of every ``versionadded``/``versionchanged`` in src/."""
    found = {}
    for path in sorted((repo / "src").rglob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if match := DIRECTIVE.search(line):
                found[f"{path.relative_to(repo)}:{number}"] = match["version"]
    return found


def test_installed_package_has_the_pyproject_version():
    assert mirrorflow.__version__ == package_version(), (
        "the installed metadata is stale: pip install -e . again")


def test_citation_has_the_package_version():
    assert str(citation()["version"]) == package_version()


def test_changelog_newest_entry_is_this_version_and_the_citation_date():
    version, date = newest_changelog_entry()
    assert version == package_version()
    assert date == citation()["date-released"]


def test_container_images_carry_the_package_version():
    tags = container_tags()
    assert tags, "no versioned image in config/config.yaml containers"
    wrong = {where: tag for where, tag in tags.items() if tag != package_version()}
    assert not wrong, f"image tags other than {package_version()}: {wrong}"


def test_images_in_profiles_and_readme_carry_the_package_version():
    wrong = {where: tag for where, tag in written_image_tags().items()
             if tag != package_version()}
    assert not wrong, f"image tags other than {package_version()}: {wrong}"


def test_no_versionadded_newer_than_the_package():
    current = Version(package_version())
    newer = {}
    for where, text in version_directives().items():
        try:
            if Version(text) > current:
                newer[where] = text
        except InvalidVersion:
            newer[where] = text
    assert not newer, f"version notes newer than {current} (or not versions): {newer}"


def test_licence_is_mit_everywhere():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    assert citation()["license"] == "MIT"
    assert (REPO / "LICENSE").read_text().startswith("MIT License\n")


def test_citation_is_well_formed():
    """What CFF 1.2.0 requires, checked without its schema (the full check below needs
    cffconvert's copy of the schema)."""
    cff = citation()
    assert cff["cff-version"] == "1.2.0"
    assert cff["message"] and cff["title"] and cff["authors"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", cff["date-released"])
    for reference in cff["references"]:
        assert reference["type"] and reference["title"] and reference["authors"]
        assert re.fullmatch(r"10\.\d{4,9}/\S+", reference.get("doi", "10.0000/x"))


def cff_schema() -> dict | None:
    """CFF 1.2.0's JSON schema, from an installed cffconvert 2.0.0 (which ships it), or
    None. Only its data file is read: cffconvert's code, which needs jsonschema < 4 and
    pykwalify, is not imported."""
    spec = importlib.util.find_spec("cffconvert")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "schemas" / "1.2.0" / "schema.json"
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    return None


def test_citation_is_valid_cff():
    """CITATION.cff against CFF 1.2.0's schema as cffconvert 2.0.0 validates it. cffconvert
    pins jsonschema < 4, which Snakemake cannot use, so the test command installs it
    without its dependencies (README "Set-up") and reads only its schema here."""
    schema = cff_schema()
    if schema is None:
        pytest.fail("cffconvert's CFF 1.2.0 schema is not installed: pip install --no-deps "
                    "cffconvert==2.0.0 (the README's test command does)", pytrace=False)
    jsonschema.validate(citation(), schema, format_checker=jsonschema.FormatChecker())
    broken = {key: value for key, value in citation().items() if key != "authors"}
    with pytest.raises(jsonschema.ValidationError, match="'authors' is a required property"):
        jsonschema.validate(broken, schema, format_checker=jsonschema.FormatChecker())
