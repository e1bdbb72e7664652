"""The study report and the provenance of every derivative, on the reduced run.

`snakemake --report` on the finished run gives one self-contained HTML file that headless
Chromium renders without script errors; every derivative's sidecar traces it (rule,
parameters, configuration, versions, input checksums); the methods and the regions table
are generated from the run, and the regions planted in the simulated study are found."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from mirrorflow.io.bids import sidecar_path
from mirrorflow.report.literature import REPORTED
from mirrorflow.report.methods import REFERENCES

from .conftest import REDUCED, REPO, snakemake

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
    assert set(found) <= {"yes", "no"}


def test_runtimes_come_from_every_benchmark_file(run):
    benches = sorted((run / "logs").rglob("*.bench.tsv"))
    jobs = pd.read_csv(run / "report" / "desc-runtimes_jobs.tsv", sep="\t")
    assert len(jobs) == len(benches)
    total = sum(pd.read_csv(b, sep="\t")["s"].iloc[-1] for b in benches)
    assert jobs["s"].sum() == pytest.approx(total, abs=0.01 * len(benches))
    rules = pd.read_csv(run / "report" / "desc-runtimes_rules.tsv", sep="\t")
    assert set(rules["rule"]) == {b.parent.name for b in benches}


def _chromium() -> str:
    from tests.deploy.conftest import ensure_debian_packages

    ensure_debian_packages("chromium")
    return shutil.which("chromium")


#: Chromium flags for a closed network (no background connections) as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def test_report_is_one_html_file_that_chromium_renders(run, tmp_path):
    """`snakemake --report` writes one file with every annotated figure embedded (byte for
    byte); headless Chromium opens it with no script error, every category is listed, and
    a group map, a QC figure and the methods document are shown when clicked."""
    from playwright.sync_api import sync_playwright

    report = tmp_path / "report.html"
    start = time.perf_counter()
    snakemake("--configfile", REDUCED, "--config", f"output_dir={run}", "--report", report)
    seconds = time.perf_counter() - start
    print(f"report: {report.stat().st_size / 1e6:.1f} MB, built in {seconds:.1f} s")
    html = report.read_text()
    embedded = dict(re.findall(
        r"data:image/png;charset=utf8;filename=([^;]+);base64,([A-Za-z0-9+/=]+)", html))
    figures = {p.name: p for stage in STAGES for p in (run / stage).rglob("*.png")}
    # QC (3 per run), design matrices, group maps and overlap (2 each), the scatter,
    # the meta-analytic glass brains, the runtimes.
    assert len(figures) == 12 * 3 + 12 + 5 * 2 + 1 + 6 + 1
    assert set(embedded) == set(figures)
    for name, data in embedded.items():
        assert base64.b64decode(data) == figures[name].read_bytes(), name

    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(report.as_uri())
        menu = page.locator("body").inner_text()
        for category in ("1. Methods", "2. Quality control", "3. First level",
                         "4. Group maps", "5. Behaviour", "6. Meta-analysis and MACM",
                         "7. Runtimes"):
            assert category in menu, category

        def show(*path, row):
            page.goto(report.as_uri())
            for item in path:
                page.get_by_text(item, exact=True).click()
            page.locator("tr", has_text=row).first.locator("a[iconname=eye]").click()
            page.wait_for_timeout(300)

        show("4. Group maps", "imitate eq", row="glass brain")
        width = page.locator("img[src^='data:image/png']").evaluate("img => img.naturalWidth")
        assert width == imread(next((run / "group" / "figures").glob(
            "*model-eq_stat-z_desc-glassbrain_statmap.png"))).shape[1]
        page.screenshot(path=tmp_path / "group_map.png")
        show("2. Quality control", "sub-03", row="carpet")
        assert page.locator("img[src^='data:image/png']").evaluate(
            "img => img.naturalWidth") > 0
        show("1. Methods", row="methods")
        headings = page.frame_locator("iframe").first.locator("h2").all_inner_texts()
        assert "Regions found and regions reported by the model studies" in headings
        browser.close()
    assert not errors, errors
    shot = imread(tmp_path / "group_map.png")
    assert shot.shape[:2] == (1000, 1400)
    assert np.std(shot[..., :3]) > 0.05  # a figure, not a blank page
