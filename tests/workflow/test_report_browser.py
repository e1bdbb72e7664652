"""The study report in a browser: `snakemake --report` on the finished reduced run gives one
self-contained HTML file that headless Chromium (Debian's, driven by Playwright) renders
without script errors.

System test: installs Debian's ``chromium`` with apt-get when it is missing (root)."""

from __future__ import annotations

import base64
import re
import shutil
import time

import numpy as np
import pytest
from matplotlib.image import imread

from ..deploy.conftest import ensure_debian_packages
from .conftest import REDUCED, snakemake
from .test_report import STAGES

pytestmark = pytest.mark.system


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium (apt-get installs it when missing: root). Requested before the
    reduced run, so that a machine without it fails at once."""
    ensure_debian_packages("chromium")
    return shutil.which("chromium")


#: Chromium flags for a closed network (no background connections) as root.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def test_report_is_one_html_file_that_chromium_renders(chromium, run, tmp_path):
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
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
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
