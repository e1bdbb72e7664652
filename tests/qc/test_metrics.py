"""Per-run QC metrics, the QC table and its exclusions (mirrorflow.qc.metrics)."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.bids import sidecar_path
from mirrorflow.qc.metrics import (
    METRICS,
    included_runs,
    qc_methods,
    qc_table,
    read_included_runs,
    run_metrics,
    write_qc_table,
)

from .conftest import N_VOLUMES, NOISE, SIGNAL, confounds_table, save_image, write_confounds

#: A known FD series: n/a, then values with two exactly at 0.5 (not above it).
FD = np.array([0.1, 0.6, 0.5, 0.2, 1.2, 0.5, 0.05, 0.3, 0.7, 0.4] * 4)
FD[0] = np.nan


def _inputs(run_files):
    return {k: run_files[k] for k in ("confounds_file", "bold_file", "mask_file")}


def _record(sub, run, mean_fd, **extra):
    return {"sub": sub, "run": run, **extra, "n_volumes": 40, "mean_fd": mean_fd,
            "max_fd": 1.0, "n_fd_above": 2, "mean_std_dvars": 1.0, "median_tsnr": 50.0,
            "mask_voxels": 100}


# ------------------------------------------------------------------ run_metrics
def test_run_metrics_known_values(tmp_path, run_files):
    table = confounds_table(fd=FD.copy())
    confounds = write_confounds(tmp_path / "known.tsv", table)
    metrics = run_metrics(**{**_inputs(run_files), "confounds_file": confounds})
    finite = FD[1:]
    assert list(metrics) == list(METRICS)
    assert metrics["n_volumes"] == N_VOLUMES
    assert metrics["mean_fd"] == pytest.approx(finite.mean())
    assert metrics["max_fd"] == pytest.approx(1.2)
    assert metrics["n_fd_above"] == int((finite > 0.5).sum()) == 4 * 3  # 0.5 is not above
    assert metrics["mean_std_dvars"] == pytest.approx(table["std_dvars"].iloc[1:].mean())
    # every mask voxel has mean SIGNAL and standard deviation NOISE; outside it tSNR is 2
    assert metrics["median_tsnr"] == pytest.approx(SIGNAL / NOISE, rel=1e-4)
    assert metrics["mask_voxels"] == int(run_files["mask"].sum()) == 6 * 6 * 6


def test_run_metrics_are_plain_json_types(run_files):
    metrics = run_metrics(**_inputs(run_files))
    json.dumps(metrics)
    for key in ("n_volumes", "n_fd_above", "mask_voxels"):
        assert type(metrics[key]) is int
    for key in ("mean_fd", "max_fd", "mean_std_dvars", "median_tsnr"):
        assert type(metrics[key]) is float


def test_run_metrics_fd_spike_keyword(tmp_path, run_files):
    confounds = write_confounds(tmp_path / "known.tsv", confounds_table(fd=FD.copy()))
    inputs = {**_inputs(run_files), "confounds_file": confounds}
    assert run_metrics(**inputs, fd_spike=0.25)["n_fd_above"] == int((FD[1:] > 0.25).sum())
    assert run_metrics(**inputs, fd_spike=2.0)["n_fd_above"] == 0
    with pytest.raises(ConfigError, match="fd_spike must be a positive number"):
        run_metrics(**inputs, fd_spike=0)


def test_run_metrics_tsnr_matches_an_independent_computation(tmp_path, run_files):
    rng = np.random.default_rng(5)
    bold = run_files["bold"].astype(np.float64)
    bold *= rng.uniform(0.5, 2.0, bold.shape[:3])[..., None]  # a different tSNR per voxel...
    bold += rng.normal(0, 3, bold.shape)  # ...and noise that is not exactly unit
    path = save_image(tmp_path / "varied_bold.nii.gz", bold.astype(np.float32), tr=2.0)
    metrics = run_metrics(**{**_inputs(run_files), "bold_file": path})
    series = bold.astype(np.float32).astype(np.float64)[run_files["mask"]]
    expected = np.median(series.mean(axis=1) / series.std(axis=1))
    assert metrics["median_tsnr"] == pytest.approx(expected, rel=1e-5)


def test_run_metrics_constant_voxels_leave_tsnr(tmp_path, run_files, caplog):
    bold = run_files["bold"].copy()
    mask = run_files["mask"]
    inside = np.argwhere(mask)
    for i, j, k in inside[: len(inside) // 2 + 1]:  # just over half the mask is constant
        bold[i, j, k] = 7.0
    path = save_image(tmp_path / "flat_bold.nii.gz", bold, tr=2.0)
    with caplog.at_level(logging.WARNING, logger="mirrorflow.qc.metrics"):
        metrics = run_metrics(**{**_inputs(run_files), "bold_file": path})
    assert metrics["median_tsnr"] == pytest.approx(SIGNAL / NOISE, rel=1e-4)
    assert "109 of 216 mask voxels are constant" in caplog.text
    bold[mask] = 7.0
    path = save_image(tmp_path / "all_flat_bold.nii.gz", bold, tr=2.0)
    assert math.isnan(run_metrics(**{**_inputs(run_files), "bold_file": path})["median_tsnr"])


def test_run_metrics_without_std_dvars_or_fd_values(tmp_path, run_files):
    table = confounds_table().drop(columns=["std_dvars"])
    table["framewise_displacement"] = np.nan
    confounds = write_confounds(tmp_path / "bare.tsv", table)
    metrics = run_metrics(**{**_inputs(run_files), "confounds_file": confounds})
    assert math.isnan(metrics["mean_std_dvars"])
    assert math.isnan(metrics["mean_fd"]) and math.isnan(metrics["max_fd"])
    assert metrics["n_fd_above"] == 0


def test_run_metrics_missing_columns(tmp_path, run_files):
    table = confounds_table().drop(columns=["framewise_displacement", "rot_z"])
    confounds = write_confounds(tmp_path / "partial.tsv", table)
    with pytest.raises(
        InputDataError,
        match=r"partial.tsv: missing confound column\(s\) \['framewise_displacement', 'rot_z'\]",
    ):
        run_metrics(**{**_inputs(run_files), "confounds_file": confounds})


def test_run_metrics_volume_mismatch(tmp_path, run_files):
    confounds = write_confounds(tmp_path / "long.tsv", confounds_table(N_VOLUMES + 2))
    with pytest.raises(
        InputDataError, match=r"sub-01_run-1_bold.nii.gz has 40 volumes .*long.tsv has 42 rows"
    ):
        run_metrics(**{**_inputs(run_files), "confounds_file": confounds})


def test_run_metrics_truncated_bold(run_files):
    path = run_files["bold_file"]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="sub-01_run-1_bold.nii.gz: cannot read"):
        run_metrics(**_inputs(run_files))


# ------------------------------------------------------------------ qc_table
def test_qc_table_sorts_and_orders_columns():
    records = [_record("10", "1", 0.1), _record("02", "10", 0.2), _record("02", "2", 0.3),
               _record("01", "1", 0.4)]
    table = qc_table(records, max_mean_fd=0.5)
    assert list(table.columns) == ["sub", "run", *METRICS, "included", "reason"]
    assert list(zip(table["sub"], table["run"])) == [
        ("01", "1"), ("02", "2"), ("02", "10"), ("10", "1")
    ]
    assert table["included"].dtype == bool and table["included"].all()
    assert (table["reason"] == "").all()


def test_qc_table_keeps_metric_order_after_a_json_round_trip():
    record = json.loads(json.dumps(_record("01", "1", 0.1, extra_metric=3), sort_keys=True))
    table = qc_table([record], max_mean_fd=0.5)
    assert list(table.columns) == ["sub", "run", *METRICS, "extra_metric", "included", "reason"]


def test_qc_table_threshold_edges():
    records = [
        _record("01", "1", 0.62),
        _record("01", "2", 0.5),  # at the threshold: included
        _record("01", "3", 0.503),  # above, but 0.50 at two decimals
        _record("01", "4", float("nan")),
        _record("01", "5", None),  # JSON null
        _record("01", "6", 0.4999),
    ]
    table = qc_table(records, max_mean_fd=0.5).set_index("run")
    assert table["included"].to_dict() == {
        "1": False, "2": True, "3": False, "4": False, "5": False, "6": True
    }
    assert table.loc["1", "reason"] == "mean FD 0.62 mm > 0.50 mm"
    assert table.loc["3", "reason"] == "mean FD 0.503 mm > 0.500 mm"
    assert table.loc["4", "reason"] == table.loc["5", "reason"] == "mean FD not available (n/a)"
    assert table.loc["2", "reason"] == table.loc["6", "reason"] == ""
    assert math.isnan(table.loc["5", "mean_fd"])


def test_qc_table_without_motion_estimates_excludes_no_run(tmp_path):
    """Series another pipeline preprocessed, without a confounds table, have no FD:
    ``max_mean_fd=None`` keeps every run, and the sidecar says why."""
    records = [_record("01", "1", float("nan")), _record("01", "2", None)]
    table = qc_table(records, max_mean_fd=None)
    assert table["included"].tolist() == [True, True] and table["reason"].tolist() == ["", ""]
    path = write_qc_table(table, tmp_path / "qc.tsv", max_mean_fd=None)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["MaxMeanFD"] is None
    assert "no run was excluded for motion" in sidecar["Description"]
    assert sidecar["included"]["Description"] == "Whether the run is kept: always (no motion " \
        "estimates)"


def test_qc_table_with_sessions():
    records = [_record("01", "1", 0.1, ses="post"), _record("01", "1", 0.9, ses="pre")]
    table = qc_table(records, max_mean_fd=0.5)
    assert list(table.columns[:3]) == ["sub", "ses", "run"]
    assert list(table["ses"]) == ["post", "pre"]
    assert list(table["included"]) == [True, False]


def test_qc_table_bad_records():
    with pytest.raises(ValueError, match=r"'ses' is in 1 of 2 QC records"):
        qc_table([_record("01", "1", 0.1, ses="a"), _record("01", "2", 0.1)], max_mean_fd=0.5)
    with pytest.raises(ValueError, match=r"QC record 0 lacks \['mean_fd'\]"):
        qc_table([{"sub": "01", "run": "1"}], max_mean_fd=0.5)
    with pytest.raises(ValueError, match=r"repeat the run\(s\) \[\('01', '1'\)\]"):
        qc_table([_record("01", "1", 0.1), _record("01", "1", 0.2)], max_mean_fd=0.5)
    for bad in (0, -1, float("nan"), "x"):
        with pytest.raises(ConfigError, match="max_mean_fd must be a"):
            qc_table([_record("01", "1", 0.1)], max_mean_fd=bad)


def test_qc_table_empty():
    table = qc_table([], max_mean_fd=0.5)
    assert table.empty and list(table.columns) == ["sub", "run", *METRICS, "included", "reason"]
    assert included_runs(table) == {}


def test_included_runs_drops_subjects_without_runs():
    records = [_record("01", "1", 0.1), _record("01", "2", 0.9), _record("02", "1", 0.8),
               _record("03", "2", 0.2), _record("03", "1", 0.3)]
    table = qc_table(records, max_mean_fd=0.5)
    assert included_runs(table) == {"01": ["1"], "03": ["1", "2"]}


# ------------------------------------------------------------------ writing and reading
def test_write_qc_table_and_read_it_back(tmp_path):
    records = [_record("01", "01", 0.123456), _record("01", "02", 0.9),
               _record("02", "01", float("nan"))]
    table = qc_table(records, max_mean_fd=0.5)
    path = write_qc_table(table, tmp_path / "out" / "task-x_desc-qc_runs.tsv", max_mean_fd=0.5,
                          fd_spike=0.3)
    assert path == tmp_path / "out" / "task-x_desc-qc_runs.tsv"
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "task-x_desc-qc_runs.json", "task-x_desc-qc_runs.tsv"
    ]  # no temporary file left
    lines = path.read_text().splitlines()
    assert lines[0].split("\t") == list(table.columns)
    row = dict(zip(lines[0].split("\t"), lines[1].split("\t"), strict=True))
    assert row["sub"] == "01" and row["run"] == "01" and row["mean_fd"] == "0.1235"
    assert row["included"] == "True" and row["reason"] == ""
    assert dict(zip(lines[0].split("\t"), lines[3].split("\t"), strict=True))["mean_fd"] == "n/a"

    back = pd.read_csv(path, sep="\t", na_values="n/a", dtype={"sub": str, "run": str},
                       keep_default_na=False)
    assert list(back["included"]) == [True, False, False]

    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["MaxMeanFD"] == 0.5 and sidecar["FDSpikeThreshold"] == 0.3
    assert set(table.columns) <= set(sidecar)
    assert sidecar["mean_fd"]["Units"] == "mm"
    assert "0.5 mm" in sidecar["included"]["Description"]
    assert "(0.3 mm)" in sidecar["n_fd_above"]["Description"]
    assert sidecar["Description"] == qc_methods(max_mean_fd=0.5, fd_spike=0.3)

    assert read_included_runs(path) == {"01": [(None, "01")]}


def test_read_included_runs_with_sessions(tmp_path):
    records = [_record("01", "1", 0.1, ses="01"), _record("01", "1", 0.1, ses="02"),
               _record("02", "1", 0.7, ses="01")]
    path = write_qc_table(qc_table(records, max_mean_fd=0.5), tmp_path / "runs.tsv",
                          max_mean_fd=0.5)
    assert read_included_runs(path) == {"01": [("01", "1"), ("02", "1")]}
    assert "FDSpikeThreshold" not in json.loads((tmp_path / "runs.json").read_text())


def test_read_included_runs_errors(tmp_path):
    with pytest.raises(InputDataError, match="absent.tsv: file does not exist"):
        read_included_runs(tmp_path / "absent.tsv")
    (tmp_path / "a.tsv").write_text("sub\trun\n01\t1\n")
    with pytest.raises(InputDataError, match=r"a.tsv: missing column\(s\) \['included'\]"):
        read_included_runs(tmp_path / "a.tsv")
    (tmp_path / "b.tsv").write_text("sub\trun\tincluded\n01\t1\tyes\n")
    with pytest.raises(InputDataError, match=r"b.tsv: column 'included' must be True or False"):
        read_included_runs(tmp_path / "b.tsv")


def test_write_qc_table_leaves_no_partial_file(tmp_path, monkeypatch):
    table = qc_table([_record("01", "1", 0.1)], max_mean_fd=0.5)
    path = tmp_path / "runs.tsv"

    def broken_to_csv(self, target, *args, **kwargs):
        with open(target, "w") as handle:
            handle.write("sub\trun\n")  # a killed job stops half-way
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", broken_to_csv)
    with pytest.raises(OSError, match="disk full"):
        write_qc_table(table, path, max_mean_fd=0.5)
    assert not path.exists()
    assert not [p for p in tmp_path.iterdir() if p.suffix != ".json"]


def test_qc_methods_states_the_thresholds():
    text = qc_methods(max_mean_fd=0.4, fd_spike=0.25)
    assert "0.4 mm" in text and "0.25 mm" in text and "mirrorflow" in text
