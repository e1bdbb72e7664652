import json

import pytest

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.bids import (
    bids_name,
    check_label,
    clean_contrast_name,
    sidecar_path,
    write_json,
)


@pytest.mark.parametrize("label", ["01", "imitation", "Sub1"])
def test_check_label_accepts_alphanumeric(label):
    assert check_label(label, what="subject") == label


@pytest.mark.parametrize("label", ["../01", "a b", "a;rm", "a_b", "a-b", "$(x)", ""])
def test_check_label_refuses_paths_and_shell_characters(label):
    with pytest.raises(ConfigError, match="not a valid BIDS label"):
        check_label(label, what="subject")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("mismatch - imitate", "mismatchMinusImitate"),
        ("mismatch>imitate", "mismatchGtImitate"),
        ("imitate", "imitate"),
    ],
)
def test_clean_contrast_name(name, expected):
    assert clean_contrast_name(name) == expected


def test_bids_name_orders_entities_and_drops_none():
    name = bids_name(desc="preproc", run="1", sub="01", task="imitation", ses=None, suffix="bold")
    assert name == "sub-01_task-imitation_run-1_desc-preproc_bold.nii.gz"


def test_bids_name_refuses_unknown_entities():
    with pytest.raises(ValueError, match="unknown BIDS entities"):
        bids_name(sub="01", colour="red", suffix="bold")


def test_sidecar_path():
    assert sidecar_path("a/x_bold.nii.gz").name == "x_bold.json"
    assert sidecar_path("a/x_timeseries.tsv").name == "x_timeseries.json"


def test_write_json_is_atomic_and_leaves_no_temporary(tmp_path):
    path = write_json(tmp_path / "sub" / "x.json", {"b": 1, "a": [1.5]})
    assert json.loads(path.read_text()) == {"a": [1.5], "b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["x.json"]


def test_save_float_image_keeps_float_precision_whatever_the_header(tmp_path):
    import nibabel as nib
    import numpy as np

    from mirrorflow.io.bids import save_float_image

    data = np.random.default_rng(0).normal(size=(5, 6, 7)).astype(np.float32)
    img = nib.Nifti1Image(data, np.diag([4.0, 4, 4, 1]))
    img.set_data_dtype(np.uint8)  # as nilearn's GLM outputs inherit their mask's header
    path = save_float_image(img, tmp_path / "z.nii.gz")
    saved = nib.load(path)
    assert saved.get_data_dtype() == np.float32
    np.testing.assert_array_equal(saved.get_fdata(dtype=np.float32), data)
    assert [p.name for p in tmp_path.iterdir()] == ["z.nii.gz"]


def test_write_json_writes_non_finite_numbers_as_null(tmp_path):
    """NaN is not JSON (a strict parser refuses it): sidecars hold null instead."""
    import numpy as np

    from mirrorflow.io.bids import write_json

    path = write_json(tmp_path / "x.json", {"Peak": float("nan"), "Values": np.array(
        [1.0, np.inf]), "Nested": {"T": -np.inf, "N": 3}})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    assert data == {"Peak": None, "Values": [1.0, None], "Nested": {"T": None, "N": 3}}


def test_rewrite_after_a_killed_attempt_leaves_no_partial_file(tmp_path):
    """A job killed while writing leaves its hidden temporary file; the rerun's write of
    the same output deletes it (and only the temporaries of that output)."""
    import nibabel as nib
    import numpy as np

    from mirrorflow.io.bids import save_float_image, write_json

    target = tmp_path / "sub-01_stat-z_statmap.nii.gz"
    stale = tmp_path / f".{target.name}.tmp12345.nii.gz"
    stale.write_bytes(b"\x1f\x8b truncated")
    other = tmp_path / ".sub-02_stat-z_statmap.nii.gz.tmp999.nii.gz"
    other.write_bytes(b"")
    save_float_image(nib.Nifti1Image(np.ones((2, 2, 2), np.float32), np.eye(4)), target)
    assert not stale.exists() and other.exists()
    assert nib.load(target).get_fdata().sum() == 8
    sidecar = tmp_path / "x.json"
    (tmp_path / ".x.json.tmp777").write_text("{")
    write_json(sidecar, {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [target.name, other.name, "x.json"])
