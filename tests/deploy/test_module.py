"""mirrorflow used as a Snakemake module, the catalog way: a user's folder with its own
Snakefile (a ``module`` directive and ``use rule * from mirrorflow``) and its own copy of
config/config.yaml, run from that folder. The bundled defaults (Sleuth sets, the
Neurosynth copy) are found in the workflow's folder, each rule keeps its threads and
resources (no profile is loaded there), and the results equal the direct run's."""

from __future__ import annotations

import re
import shutil

import pytest

from ..workflow.conftest import REPO, snakemake
from .conftest import assert_same_results

pytestmark = pytest.mark.e2e

USER_SNAKEFILE = f"""\
configfile: "config/config.yaml"


module mirrorflow:
    snakefile:
        "{REPO / 'Snakefile'}"
    config:
        config


use rule * from mirrorflow
"""

#: One ALE with its null shards and merge, and the MACM (the reference slice converted,
#: the seed, its null shards, the fit): the meta-analysis half's whole path.
MODULE_TARGETS = (
    "meta/ale/meta-mimicry_z_desc-thresholded.nii.gz",
    "macm/meta-macm_z_desc-thresholded.nii.gz",
)


@pytest.fixture(scope="module")
def user_folder(tmp_path_factory):
    """A user's folder: a module Snakefile and a copy of the shipped config (what
    ``snakedeploy deploy-workflow`` writes), and nothing else of the workflow's."""
    folder = tmp_path_factory.mktemp("user-workflow")
    (folder / "workflow").mkdir()
    (folder / "workflow" / "Snakefile").write_text(USER_SNAKEFILE)
    (folder / "config").mkdir()
    shutil.copy(REPO / "config" / "config.yaml", folder / "config" / "config.yaml")
    return folder


def _jobs(dry_run_log: str) -> dict[str, str]:
    """rule name -> the first job block of that rule in a dry run's log."""
    blocks = re.split(r"\n(?=rule \w+:)", dry_run_log)
    jobs = {}
    for block in blocks:
        match = re.match(r"rule (\w+):", block)
        if match:
            jobs.setdefault(match.group(1), block)
    return jobs


def test_module_dry_run_finds_bundled_files_and_keeps_resources(user_folder):
    """The default config's dry run from the user's folder: the Sleuth sets and the
    Neurosynth copy are the workflow's, and each rule asks for what it states (the MACM
    fit two cores and 2 GB, a BOLD run 6 GB), without profiles/default."""
    result = snakemake("-n", "--cores", "4", "--config", "output_dir=results",
                       cwd=user_folder)
    jobs = _jobs(result.stdout)
    assert f"input: {REPO}/resources/meta/mimicry.txt" in jobs["meta_inputs"] or (
        f"input: {REPO}/resources/meta/contagion.txt" in jobs["meta_inputs"])
    assert f"{REPO}/resources/neurosynth/data-neurosynth_version-7_coordinates.tsv.gz" in (
        jobs["macm_reference"])
    assert re.search(r"threads: 2\b", jobs["macm_ale"]), jobs["macm_ale"]
    assert "mem_mb=2000" in jobs["macm_ale"] and "runtime=60" in jobs["macm_ale"]
    assert "mem_mb=6000" in jobs["preproc_bold"] and "runtime=30" in jobs["preproc_bold"]
    # Outputs go to the user's folder (relative paths), the workflow's files stay read.
    assert "output: results/" in result.stdout


def test_module_run_equals_direct_run(user_folder, small_config, bare_run):
    """The meta-analysis half run from the user's folder (the MACM's reference slice given
    relative to the workflow) equals the direct run's outputs of the same targets."""
    out = user_folder / "results"
    snakemake(*(f"{out}/{target}" for target in MODULE_TARGETS), "--cores", "2",
              *small_config, "--config", f"output_dir={out}", cwd=user_folder)
    assert assert_same_results(bare_run, out, targets=MODULE_TARGETS) >= 10
