"""The provenance of every derivative, the methods and the runtimes, on the reduced run.

Every derivative's sidecar traces it (rule, parameters, configuration, versions, input
checksums); the methods and the regions table are generated from the run, and the regions
planted in the simulated study are found. The report in a browser: test_report_browser.py."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from mirrorflow.io.bids import sidecar_path
from mirrorflow.report.literature import REPORTED
from mirrorflow.report.methods import REFERENCES

from .conftest import REPO

pytestmark = pytest.mark.e2e

STAGES = ("preproc", "firstlevel", "group", "meta", "macm", "report")
#: Intermediate files that are not derivatives: permutation shards, the reference cache,
#: nipype's scratch, NiMARE JSON coordinate sets (their summaries describe them).
NOT_DERIVATIVES = ("/work/", "/nulls/", "/reference/", "/sourcedata/")


def _derivatives(run: Path) -> list[Path]:
    return sorted(
        p for stage in STAGES for p in (run / stage).rglob("*")
        if p.is_file() and p.name.endswith((".nii.gz", ".tsv"))
        and not any(part in f"/{p.relative_to(run)}" for part in NOT_DERIVATIVES)
    )


def test_every_derivative_sidecar_traces_it(run):
    """Rule, parameters, whole configuration, versions and input checksums, for every map
    and table; each recorded checksum is the SHA-256 of the file as it is now."""
    import nilearn
    import nimare

    derivatives = _derivatives(run)
    assert len(derivatives) > 150
    missing = [str(p.relative_to(run)) for p in derivatives if not sidecar_path(p).exists()]
    assert not missing, missing
    checked = 0
    rules = set()
    for path in derivatives:
        block = json.loads(sidecar_path(path).read_text()).get("Provenance")
        assert block, f"{sidecar_path(path)} has no Provenance"
        assert block["Config"]["output_dir"] == str(run)
        assert block["Config"]["simulation"]["n_subjects"] == 12
        assert block["Software"]["python"]
        assert block["InputChecksums"] or block["Rule"] == "meta_simulate"
        rules.add(block["Rule"])
        for source, digest in block["InputChecksums"].items():
            source = Path(source) if Path(source).is_absolute() else REPO / source
            if source.is_file() and checked < 400:
                assert digest == "sha256:" + hashlib.sha256(source.read_bytes()).hexdigest()
                checked += 1
    assert checked > 100
    assert {"preproc_bold", "firstlevel_glm", "group_model", "group_threshold",
            "meta_ale", "meta_contrast", "macm_ale", "report_methods"} <= rules
    # Provenance stays in the sidecars: the QC table built from the runs' metrics files
    # has metric columns only.
    qc = pd.read_csv(next((run / "preproc").glob("*_desc-qc_runs.tsv")), sep="\t")
    assert not {"Provenance", "Sources"} & set(qc.columns)
    z = json.loads((next((run / "group").glob("*model-eq_stat-z_statmap.json"))).read_text())
    assert z["Provenance"]["Rule"] == "group_model"
    assert z["Provenance"]["Parameters"]["spec"]["covariate"] == "eq"
    assert z["Provenance"]["Software"]["nilearn"] == nilearn.__version__
    ale = json.loads((run / "meta" / "ale" / "meta-mimicry_z.json").read_text())
    assert ale["Provenance"]["Parameters"]["n_iters"] == 300
    assert ale["Provenance"]["Software"]["nimare"] == nimare.__version__


def test_methods_and_regions_are_generated_from_the_run(run):
    import nimare
    import nipype

    methods = (run / "report" / "methods.html").read_text()
    for heading in ("Data and quality control", "Preprocessing", "First-level models",
                    "Group analyses", "Coordinate-based meta-analysis",
                    "Meta-analytic connectivity modelling", "Software versions",
                    "References"):
        assert f"<h2>{heading}" in methods
    assert "12 participants" in methods  # from the configuration
    assert f"nipype {nipype.__version__}" in methods  # from the jobs' own descriptions
    assert f"<td>nimare</td>\n      <td>{nimare.__version__}</td>" in methods
    cited = set(re.findall(r"\[([A-Za-z]+\d*)\]", methods))
    assert cited == set(REFERENCES), cited ^ set(REFERENCES)
    behaviour = json.loads(next((run / "group" / "behaviour").glob("*.json")).read_text())
    assert f"r = {behaviour['pearson_r']:.3f}" in methods

    regions = pd.read_csv(run / "report" / "desc-literature_regions.tsv", sep="\t",
                          keep_default_na=False)
    assert len(regions) == len(REPORTED)
    found = regions.set_index(["mirrorflow_map", "reported_region"])["found"]
    # Planted in the simulated study: the three shared meta-analytic foci (cingulate,
    # left middle frontal, left inferior parietal), insula for mismatch > imitate, and
    # premotor cortex where the EQ and accuracy effects overlap.
    for key in [("meta/conjunction", "cingulate gyrus"),
                ("meta/conjunction", "middle frontal gyrus"),
                ("meta/conjunction", "inferior parietal lobule"),
                ("group/mismatchGtImitate/paired", "bilateral insula"),
                ("overlap", "premotor cortex")]:
        assert found[key] == "yes", regions.to_string()
    assert set(found) <= {"yes", "in a cluster", "no"}


def test_runtimes_come_from_every_benchmark_file(run):
    benches = sorted((run / "logs").rglob("*.bench.tsv"))
    jobs = pd.read_csv(run / "report" / "desc-runtimes_jobs.tsv", sep="\t")
    assert len(jobs) == len(benches)
    total = sum(pd.read_csv(b, sep="\t")["s"].iloc[-1] for b in benches)
    assert jobs["s"].sum() == pytest.approx(total, abs=0.01 * len(benches))
    rules = pd.read_csv(run / "report" / "desc-runtimes_rules.tsv", sep="\t")
    assert set(rules["rule"]) == {b.parent.name for b in benches}
