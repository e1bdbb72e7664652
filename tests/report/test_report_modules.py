"""The report's building blocks: runtimes from benchmark files, checksums, the literature
comparison and the figures, each against an independent computation."""

import hashlib
import subprocess

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from mirrorflow.io.provenance import checksum, software_versions
from mirrorflow.report.figures import runtime_figure, scatter_figure
from mirrorflow.report.literature import REPORTED, compare_regions
from mirrorflow.report.runtimes import runtime_summary, runtime_table

BENCH_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _bench(folder, rule, job, seconds, rss):
    path = folder / "logs" / rule / f"{job}.bench.tsv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(BENCH_HEADER + f"{seconds}\t0:00:01\t{rss}\t1\t1\t1\t0\t0\t50\t{seconds}\n")
    return path


def test_runtimes_per_job_and_rule(tmp_path):
    files = [_bench(tmp_path, "preproc_bold", "sub-01_run-1", 10.5, 300),
             _bench(tmp_path, "preproc_bold", "sub-01_run-2", 12.0, 320),
             _bench(tmp_path, "meta_ale", "meta-mimicry", 60.25, 900)]
    jobs = runtime_table(files)
    assert list(jobs["rule"]) == ["preproc_bold", "preproc_bold", "meta_ale"]
    assert list(jobs["job"]) == ["sub-01_run-1", "sub-01_run-2", "meta-mimicry"]
    summary = runtime_summary(jobs)
    figure = runtime_figure(summary, tmp_path / "runtimes.png")
    assert imread(figure).std() > 0.01
    summary = summary.set_index("rule")
    assert summary.loc["preproc_bold", "jobs"] == 2
    assert summary.loc["preproc_bold", "total_s"] == pytest.approx(22.5)
    assert summary.loc["preproc_bold", "max_rss_mb"] == 320
    assert list(summary.index) == ["meta_ale", "preproc_bold"]  # longest first


def test_runtimes_refuse_a_file_that_is_not_a_benchmark(tmp_path):
    bad = tmp_path / "logs" / "x" / "y.bench.tsv"
    bad.parent.mkdir(parents=True)
    bad.write_text("a\tb\n1\t2\n")
    with pytest.raises(ValueError, match="y.bench.tsv: not a Snakemake benchmark"):
        runtime_table([bad])


def test_checksum_equals_sha256sum(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(np.random.default_rng(0).bytes(3_000_000))
    expected = subprocess.run(["sha256sum", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0]
    assert checksum(path) == f"sha256:{expected}"
    path.write_bytes(b"changed")  # a new file at the same path: the cache must not answer
    assert checksum(path) == f"sha256:{hashlib.sha256(b'changed').hexdigest()}"


def test_software_versions_are_the_installed_ones():
    import nibabel
    import nilearn

    versions = software_versions()
    assert versions["nilearn"] == nilearn.__version__
    assert versions["nibabel"] == nibabel.__version__
    assert "python" in versions


def _table(*labels):
    return pd.DataFrame({
        "cluster_id": [str(i + 1) for i in range(len(labels))],
        "x": [40.0] * len(labels), "y": [10.0] * len(labels), "z": [0.0] * len(labels),
        "peak_stat": [5.0] * len(labels), "label_harvard_oxford": list(labels),
        "label_aal": ["no_label"] * len(labels),
    })


def test_regions_found_missing_and_not_run():
    tables = {
        "group/mismatchGtImitate/paired": _table("Right_Insular_Cortex"),
        "meta/macm": _table("Left_Thalamus", "Left_Precentral_Gyrus"),
        "meta/conjunction": _table("Left_Lingual_Gyrus"),
    }
    found = compare_regions(tables).set_index(["mirrorflow_map", "reported_region"])["found"]
    assert found["group/mismatchGtImitate/paired", "bilateral insula"] == "yes"
    assert found["meta/macm", "thalamus"] == "yes"
    assert found["meta/macm", "precentral gyrus"] == "yes"
    assert found["meta/macm", "putamen"] == "no"
    assert found["meta/conjunction", "cingulate gyrus"] == "no"
    assert found["group/imitate/eq", "premotor cortex"] == "not run"
    assert len(found) == len(REPORTED)


def test_region_inside_a_larger_cluster_is_in_a_cluster_with_its_share():
    """The putamen beside an insula peak: no peak is labelled putamen, but the cluster's
    composition holds it; a region in no composition stays not found."""
    table = _table("Left_Insular_Cortex").assign(
        composition_harvard_oxford=["Left_Insular_Cortex 62%; Left_Putamen 11%"],
        composition_aal=["Insula_L 70%; Putamen_L 8%"])
    rows = compare_regions({"meta/macm": table}).set_index(
        ["mirrorflow_map", "reported_region"])
    assert rows.loc[("meta/macm", "insula"), "found"] == "yes"
    assert rows.loc[("meta/macm", "putamen"), "found"] == "in a cluster"
    assert rows.loc[("meta/macm", "putamen"), "matching_peaks"].startswith(
        "Left_Putamen 11% of cluster 1 (peak Left_Insular_Cortex")
    assert rows.loc[("meta/macm", "thalamus"), "found"] == "no"


def test_scatter_shows_r_and_ci(tmp_path):
    table = pd.DataFrame({"eq": [30, 40, 50, 60, 45], "accuracy": [0.5, 0.6, 0.7, 0.8, 0.6]})
    result = {"x": "eq", "y": "accuracy", "n": 5, "pearson_r": 0.95, "pearson_p": 0.01,
              "pearson_r_ci95": [0.6, 1.0]}
    assert imread(scatter_figure(table, result, tmp_path / "s.png")).std() > 0.01
