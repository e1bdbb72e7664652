"""Readers and checks of one run's QC inputs (mirrorflow.qc.inputs)."""

from __future__ import annotations

import numpy as np
import pytest

from mirrorflow.exceptions import InputDataError
from mirrorflow.qc.inputs import MOTION_COLUMNS, load_run, read_confounds

from .conftest import AFFINE, N_VOLUMES, confounds_table, save_image, write_confounds


def test_read_confounds_reads_na_as_nan(run_files):
    table = read_confounds(run_files["confounds_file"])
    assert len(table) == N_VOLUMES
    assert np.isnan(table.loc[0, "framewise_displacement"])
    assert "a_comp_cor_00" in table.columns  # other columns are kept


def test_read_confounds_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="absent.tsv: file does not exist"):
        read_confounds(tmp_path / "absent.tsv")


@pytest.mark.parametrize("drop", [["framewise_displacement"], ["rot_y", "trans_z"]])
def test_read_confounds_missing_columns(tmp_path, drop):
    path = write_confounds(tmp_path / "c.tsv", confounds_table().drop(columns=drop))
    with pytest.raises(InputDataError) as err:
        read_confounds(path)
    message = str(err.value)
    assert "c.tsv" in message and "missing confound column" in message
    assert all(f"'{column}'" in message for column in drop)


def test_read_confounds_non_numeric_column(tmp_path):
    table = confounds_table().astype({"trans_x": object})
    table.loc[[3, 7], "trans_x"] = "oops"
    path = write_confounds(tmp_path / "c.tsv", table)
    with pytest.raises(InputDataError, match=r"c.tsv: column 'trans_x' has 2 non-numeric .*4, 8"):
        read_confounds(path)


def test_read_confounds_empty_table(tmp_path):
    path = write_confounds(tmp_path / "c.tsv", confounds_table().iloc[:0])
    with pytest.raises(InputDataError, match="c.tsv: the confounds table has no rows"):
        read_confounds(path)
    (tmp_path / "blank.tsv").write_text("")
    with pytest.raises(InputDataError, match="blank.tsv: not a readable"):
        read_confounds(tmp_path / "blank.tsv")


def test_load_run_returns_a_boolean_mask(run_files):
    table, bold, mask = load_run(
        confounds_file=run_files["confounds_file"], bold_file=run_files["bold_file"],
        mask_file=run_files["mask_file"],
    )
    assert list(table.columns[:6]) == list(MOTION_COLUMNS)
    assert bold.shape[3] == N_VOLUMES
    assert mask.dtype == bool and (mask == run_files["mask"]).all()


def test_check_volumes_names_both_files_and_counts(tmp_path, run_files):
    short = write_confounds(tmp_path / "short.tsv", confounds_table(N_VOLUMES - 3))
    with pytest.raises(InputDataError) as err:
        load_run(confounds_file=short, bold_file=run_files["bold_file"],
                 mask_file=run_files["mask_file"])
    message = str(err.value)
    assert "sub-01_run-1_bold.nii.gz has 40 volumes" in message
    assert "short.tsv has 37 rows" in message


def test_load_image_wants_a_4d_bold(tmp_path, run_files):
    bold3d = save_image(tmp_path / "b3.nii.gz", run_files["bold"][..., 0])
    with pytest.raises(InputDataError, match=r"b3.nii.gz: expected a 4D BOLD series, found 3D"):
        load_run(confounds_file=run_files["confounds_file"], bold_file=bold3d,
                 mask_file=run_files["mask_file"])


def test_load_image_missing_and_corrupt(tmp_path, run_files):
    files = {k: run_files[k] for k in ("confounds_file", "bold_file", "mask_file")}
    with pytest.raises(InputDataError, match="nope.nii.gz: file does not exist"):
        load_run(**{**files, "mask_file": tmp_path / "nope.nii.gz"})
    (tmp_path / "junk.nii.gz").write_bytes(b"not a nifti")
    with pytest.raises(InputDataError, match="junk.nii.gz: not a readable NIfTI"):
        load_run(**{**files, "bold_file": tmp_path / "junk.nii.gz"})


def test_check_mask_grid(tmp_path, run_files):
    files = {k: run_files[k] for k in ("confounds_file", "bold_file", "mask_file")}
    small = save_image(tmp_path / "small.nii.gz", np.ones((5, 6, 5), np.uint8))
    with pytest.raises(InputDataError, match=r"small.nii.gz: mask grid \(5, 6, 5\) does not"):
        load_run(**{**files, "mask_file": small})
    moved = AFFINE.copy()
    moved[0, 3] += 4.0
    shifted = save_image(tmp_path / "shifted.nii.gz", run_files["mask"].astype(np.uint8),
                         affine=moved)
    with pytest.raises(InputDataError, match="shifted.nii.gz: mask grid .* affine must agree"):
        load_run(**{**files, "mask_file": shifted})


def test_check_mask_empty(tmp_path, run_files):
    files = {k: run_files[k] for k in ("confounds_file", "bold_file", "mask_file")}
    empty = save_image(tmp_path / "empty.nii.gz", np.zeros(run_files["mask"].shape, np.uint8))
    with pytest.raises(InputDataError, match="empty.nii.gz: the brain mask is empty"):
        load_run(**{**files, "mask_file": empty})
