"""The workflow parses, dry-runs, lints and is formatted, as users check it in their CI."""

import subprocess
import sys

import pytest

from .conftest import REDUCED, REPO, snakemake


@pytest.mark.parametrize("configfile", [None, REDUCED], ids=["default", "reduced"])
def test_dry_run_plans_every_stage(configfile, tmp_path):
    args = ["-n", "--config", f"output_dir={tmp_path}/results"]
    if configfile:
        args = ["--configfile", configfile, *args]
    out = snakemake(*args).stdout
    for rule in ["simulate_study", "preproc_bold", "firstlevel_glm", "group_model",
                 "group_overlap", "group_behaviour", "meta_ale", "meta_conjunction",
                 "meta_contrast", "macm_reference", "macm_ale"]:
        assert rule in out, rule


def test_default_dry_run_job_counts(tmp_path):
    out = snakemake("-n", "--config", f"output_dir={tmp_path}/results").stdout
    # 20 simulated participants x 2 runs, one GLM each.
    counts = {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
              if len(line.split()) == 2 and line.split()[1].isdigit()}
    assert counts["preproc_bold"] == 40
    assert counts["firstlevel_glm"] == 20


def test_lint_is_clean():
    result = snakemake("--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefmt_is_clean():
    files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    result = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _dry_run_with(tmp_path, text):
    configfile = tmp_path / "bad.yaml"
    configfile.write_text(text)
    return snakemake("-n", "--configfile", configfile, "--config",
                     f"output_dir={tmp_path}/results", check=False)


def test_bad_config_value_stops_the_dry_run_with_a_clear_message(tmp_path):
    result = _dry_run_with(tmp_path, "preproc: {fwhm: -2, resolution: 4}\n")
    assert result.returncode != 0
    assert "-2 is less than the minimum of 0" in result.stdout + result.stderr
    assert "['preproc']['fwhm']" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


def test_bad_cross_reference_stops_the_dry_run(tmp_path):
    result = _dry_run_with(tmp_path, "study: {source: bids, task: imitation}\n")
    assert result.returncode != 0
    assert "study.bids_dir is required" in result.stdout + result.stderr
