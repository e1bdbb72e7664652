import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.validate import check_bold, check_events, check_participants, check_t1w


def _bold(path, shape=(4, 4, 4, 12), tr=2.0, sidecar_tr=None):
    img = nib.Nifti1Image(np.random.default_rng(0).random(shape).astype(np.float32), np.eye(4))
    img.header.set_zooms((1.0, 1.0, 1.0, tr)[: len(shape)])
    nib.save(img, path)
    if sidecar_tr is not None:
        path.with_name(path.name.replace(".nii.gz", ".json")).write_text(
            json.dumps({"RepetitionTime": sidecar_tr})
        )
    return path


def test_check_bold_accepts_a_valid_series(tmp_path):
    img, tr = check_bold(_bold(tmp_path / "x_bold.nii.gz", sidecar_tr=2.0))
    assert img.shape == (4, 4, 4, 12) and tr == 2.0


def test_check_bold_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        check_bold(tmp_path / "absent_bold.nii.gz")


def test_check_bold_truncated_file(tmp_path):
    path = _bold(tmp_path / "x_bold.nii.gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="x_bold.nii.gz: not a readable NIfTI"):
        check_bold(path)


def test_check_bold_not_gzip(tmp_path):
    path = tmp_path / "x_bold.nii.gz"
    path.write_bytes(b"this is not an image")
    with pytest.raises(InputDataError, match="not a readable NIfTI"):
        check_bold(path)


def test_check_bold_refuses_3d(tmp_path):
    path = _bold(tmp_path / "x_bold.nii.gz", shape=(4, 4, 4))
    with pytest.raises(InputDataError, match="expected a 4D BOLD series, found 3D"):
        check_bold(path)


def test_check_bold_tr_disagreement(tmp_path):
    path = _bold(tmp_path / "x_bold.nii.gz", tr=2.0, sidecar_tr=1.5)
    with pytest.raises(InputDataError, match="RepetitionTime 1.5 s in the sidecar disagrees"):
        check_bold(path)


def test_check_t1w_refuses_4d(tmp_path):
    path = _bold(tmp_path / "x_T1w.nii.gz")
    with pytest.raises(InputDataError, match="expected a 3D T1w image"):
        check_t1w(path)


def _events(tmp_path, rows, columns=("onset", "duration", "trial_type")):
    path = tmp_path / "x_events.tsv"
    pd.DataFrame(rows, columns=list(columns)).to_csv(path, sep="\t", index=False)
    return path


def test_check_events_valid(tmp_path):
    path = _events(tmp_path, [(0, 10, "imitate"), (20, 10, "mismatch")])
    table = check_events(path, conditions=["imitate", "mismatch"], run_duration=60)
    assert list(table["trial_type"]) == ["imitate", "mismatch"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, 10, "imitate"), (20, 10, "smile")], r"unknown trial types \['smile'\]"),
        ([(-2, 10, "imitate")], "negative onsets"),
        ([(0, 10, "imitate"), (70, 10, "mismatch")], "beyond the end of the run"),
        ([("soon", 10, "imitate")], "column 'onset' has non-numeric"),
    ],
)
def test_check_events_problems(tmp_path, rows, message):
    path = _events(tmp_path, rows)
    with pytest.raises(InputDataError, match=message):
        check_events(path, conditions=["imitate", "mismatch"], run_duration=60)


def test_check_events_missing_column(tmp_path):
    path = _events(tmp_path, [(0, 10)], columns=("onset", "duration"))
    with pytest.raises(InputDataError, match=r"missing column\(s\) \['trial_type'\]"):
        check_events(path, conditions=["imitate"])


def _participants(tmp_path, text):
    path = tmp_path / "participants.tsv"
    path.write_text(text)
    return path


def test_check_participants_valid_and_selects_subjects(tmp_path):
    path = _participants(tmp_path, "participant_id\teq\nsub-01\t40\nsub-02\t50\nsub-03\tn/a\n")
    table = check_participants(path, columns=["eq"], subjects=["02", "01"])
    assert list(table.index) == ["sub-02", "sub-01"]
    assert table["eq"].tolist() == [50.0, 40.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("participant_id\tage\nsub-01\t20\n", r"missing column\(s\) \['eq'\]"),
        ("participant_id\teq\nsub-01\tn/a\nsub-02\t3\n", r"'eq' has missing or non-numeric .*sub-01"),
        ("participant_id\teq\nsub-01\thigh\nsub-02\t3\n", "non-numeric"),
        ("participant_id\teq\nsub-01\t1\nsub-01\t3\n", r"duplicate participant ids \['sub-01'\]"),
    ],
)
def test_check_participants_problems(tmp_path, text, message):
    with pytest.raises(InputDataError, match=message):
        check_participants(_participants(tmp_path, text), columns=["eq"])


def test_check_participants_with_missing_scores_allowed(tmp_path):
    """``missing``: n/a and empty cells are missing scores (NaN); other text is refused."""
    path = _participants(tmp_path, "participant_id\teq\tacc\nsub-01\t40\tn/a\n"
                                   "sub-02\t\t7\nsub-03\t50\t8\n")
    table = check_participants(path, columns=["eq", "acc"], missing=True)
    assert table["eq"].isna().tolist() == [False, True, False]
    assert table["acc"].isna().tolist() == [True, False, False]
    path = _participants(tmp_path, "participant_id\teq\nsub-01\thigh\nsub-02\tn/a\n")
    with pytest.raises(InputDataError, match=r"'eq' has non-numeric values \(n/a marks a "
                       r"missing score\) for \['sub-01'\]"):
        check_participants(path, columns=["eq"], missing=True)


def test_check_participants_absent_subject(tmp_path):
    path = _participants(tmp_path, "participant_id\teq\nsub-01\t40\n")
    with pytest.raises(InputDataError, match=r"no row for \['sub-09'\]"):
        check_participants(path, columns=["eq"], subjects=["01", "09"])


def test_validate_inputs_reports_every_bad_file_at_once(tmp_path):
    from mirrorflow.io.validate import validate_inputs

    good = _bold(tmp_path / "sub-01_bold.nii.gz", sidecar_tr=2.0)
    bad = _bold(tmp_path / "sub-02_bold.nii.gz", shape=(4, 4, 4))
    events = tmp_path / "sub-01_events.tsv"
    events.write_text("onset\tduration\ttrial_type\n0\t4\timitate\n30\t4\timitate\n")
    participants = tmp_path / "participants.tsv"
    participants.write_text("participant_id\teq\nsub-01\t40\nsub-02\tn/a\n")
    runs = [{"bold": good, "events": events}, {"bold": bad, "events": None}]
    with pytest.raises(InputDataError) as err:
        validate_inputs(runs=runs, participants=participants, columns=["eq"],
                        subjects=["01", "02"], conditions=["imitate"], n_jobs=2)
    lines = str(err.value).splitlines()
    assert lines[0] == "3 bad input file(s):"
    assert any(f"{participants}: column 'eq'" in line for line in lines)
    assert any(f"{bad}: expected a 4D BOLD series" in line for line in lines)
    # 12 volumes x TR 2 s = 24 s: the onset at 30 s is beyond the run.
    assert any(f"{events}: onsets at or beyond the end of the run (24 s) (rows [2])" in line
               for line in lines)

    events.write_text("onset\tduration\ttrial_type\n0\t4\timitate\n")
    participants.write_text("participant_id\teq\nsub-01\t40\n")
    checked = validate_inputs(runs=runs[:1], participants=participants, columns=["eq"],
                              subjects=["01"], conditions=["imitate"])
    files = {entry["path"]: entry for entry in checked["files"]}
    assert files[str(good)]["shape"] == [4, 4, 4, 12]
    assert files[str(good)]["RepetitionTime"] == 2.0
    assert set(files) == {str(good), str(events), str(participants)}


def test_check_complete_finds_truncation_from_the_gzip_trailer(tmp_path):
    """A truncated .nii.gz is found without decompressing it (its last 4 bytes are not the
    content length); a file of two gzip members (trailer of the last only) is decompressed
    and accepted; a short uncompressed .nii is refused."""
    import gzip

    from mirrorflow.io.validate import check_complete

    path = _bold(tmp_path / "x_bold.nii.gz")
    check_complete(path, nib.load(path))
    data = path.read_bytes()
    (tmp_path / "cut_bold.nii.gz").write_bytes(data[:-100])
    with pytest.raises(InputDataError, match="cut_bold.nii.gz: not a readable NIfTI image"):
        check_complete(tmp_path / "cut_bold.nii.gz", nib.load(tmp_path / "cut_bold.nii.gz"))
    raw = gzip.decompress(data)
    two = tmp_path / "two_bold.nii.gz"
    two.write_bytes(gzip.compress(raw[:1000]) + gzip.compress(raw[1000:]))
    check_complete(two, nib.load(two))
    short = tmp_path / "short_bold.nii"
    short.write_bytes(raw[:-8])
    with pytest.raises(InputDataError, match="truncated NIfTI image"):
        check_complete(short, nib.load(short))


def test_bold_metadata_follows_bids_inheritance(tmp_path):
    """Dataset-level, subject-level and file-level sidecars merge, the deeper and, within
    one folder, the more specific winning; another acquisition's sidecar does not apply."""
    from mirrorflow.io.validate import read_bold_metadata

    (tmp_path / "dataset_description.json").write_text("{}")
    func = tmp_path / "sub-01" / "func"
    func.mkdir(parents=True)
    bold = func / "sub-01_task-x_acq-mb_run-1_bold.nii"
    bold.write_text("")
    sidecars = {
        tmp_path / "task-x_bold.json": {"RepetitionTime": 2.0, "EchoTime": 0.03, "A": 1},
        func / "sub-01_task-x_bold.json": {"EchoTime": 0.035, "B": 1},
        func / "sub-01_task-x_acq-mb_run-1_bold.json": {"EchoTime": 0.04},
        func / "sub-01_task-x_acq-sb_run-1_bold.json": {"EchoTime": 0.05, "C": 1},
    }
    for path, data in sidecars.items():
        path.write_text(json.dumps(data))
    assert read_bold_metadata(bold) == {"RepetitionTime": 2.0, "EchoTime": 0.04, "A": 1, "B": 1}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(0, 10, "imitate"), (0, 10, "imitate")], r"rows \[1, 2\] repeat an event"),
        ([(0, -1, "imitate")], r"negative durations \(rows \[1\]\)"),
        ([(0, 1, "imitate"), (5, 1, None)], r"'trial_type' has missing values \(rows 2\)"),
        ([(0, 1, "imitate")], r"no events of condition\(s\) \['mismatch'\], which the "
                              r"contrasts \(firstlevel.contrasts\) use"),
    ],
)
def test_check_events_refuses_what_nilearn_would_change(tmp_path, rows, message):
    """A repeated event would be summed into one of twice the amplitude by nilearn; a run
    without a condition that a contrast uses has no column for it in nilearn's design."""
    path = _events(tmp_path, rows)
    with pytest.raises(InputDataError, match=message):
        check_events(path, conditions=["imitate", "mismatch"], run_duration=60,
                     required=["mismatch"] if "mismatch" in message else ["imitate"])


@pytest.mark.parametrize(
    ("values", "configured", "message"),
    [
        ([1.0, 2.0], False, "column 'modulation' would set each event's amplitude"),
        ([1.0, "n/a"], True, r"column 'modulation' has non-numeric, missing or infinite "
                             r"values \(rows 2\)"),
        ([1.0, "inf"], True, r"\(rows 2\)"),
        ([1.0, 2.0], True, None),
    ],
)
def test_check_events_modulation(tmp_path, values, configured, message):
    path = _events(tmp_path, [(0, 10, "imitate", values[0]), (20, 10, "imitate", values[1])],
                   columns=("onset", "duration", "trial_type", "modulation"))
    if message is None:
        table = check_events(path, conditions=["imitate"], modulation=configured)
        assert table["modulation"].tolist() == [1.0, 2.0]
        return
    with pytest.raises(InputDataError, match=message):
        check_events(path, conditions=["imitate"], modulation=configured)


def _series(change=None, shape=(10, 10, 10, 30)):
    """A head of 100 + noise in a zero background (random in every volume)."""
    rng = np.random.default_rng(1)
    data = np.zeros(shape)
    data[2:8, 2:8, 2:8] = 100 + rng.normal(0, 1, (6, 6, 6, *shape[3:]))
    if change is not None:
        change(data)
    return nib.Nifti1Image(data.astype(np.float32), np.eye(4))


def _set_value(index, value):
    def change(data):
        data[index] = value
    return change


def _freeze(data):
    data[:] = data[..., :1]


@pytest.mark.parametrize(
    ("change", "finite", "message"),
    [
        (None, True, None),
        (_set_value((4, 4, 4, 17), np.nan), True,
         r"x.nii: 1 value\(s\) are NaN or infinite \(the first in volume 18\)"),
        (_set_value((0, 0, 0, 3), -np.inf), True, r"NaN or infinite \(the first in volume 4\)"),
        # Another pipeline's series may hold NaN outside its field of view.
        (_set_value((0, 0, 0), np.nan), False, None),
        (_set_value(..., np.nan), False, "no value is finite"),
        (_set_value(..., 0.0), True, "every value is zero"),
        (_set_value(..., 5.0), True, "every value is 5"),
        (_freeze, True, r"100% of its 216 brain voxels are constant over time"),
        # Most of the brain still varies: a few dead voxels are a series with signal.
        (_set_value((slice(2, 3), slice(2, 8), slice(2, 8)), 100.0), True, None),
    ],
)
def test_check_signal(change, finite, message):
    from mirrorflow.io.validate import check_signal

    img = _series(change)
    if message is None:
        check_signal("x.nii", img, finite=finite)
        return
    with pytest.raises(InputDataError, match=message):
        check_signal("x.nii", img, finite=finite)


def test_check_signal_reads_long_series_in_bounded_runs(monkeypatch, tmp_path):
    """Read a few volumes at a time from a gzip file (bounded memory), the verdict and the
    volume named are those of one whole read."""
    from mirrorflow.io import validate

    path = tmp_path / "x_bold.nii.gz"
    nib.save(_series(_set_value((3, 3, 3, 25), np.nan)), path)
    monkeypatch.setattr(validate, "CHUNK_BYTES", 3 * 10 * 10 * 10 * 8)  # 3 volumes a run
    assert [start for start, _ in validate._volumes(nib.load(path))] == list(range(0, 30, 3))
    with pytest.raises(InputDataError, match=r"the first in volume 26\)"):
        validate.check_signal(path, nib.load(path))


def test_check_signal_t1w():
    from mirrorflow.io.validate import check_signal

    check_signal("t1.nii", nib.Nifti1Image(np.arange(27.0).reshape(3, 3, 3), np.eye(4)))
    with pytest.raises(InputDataError, match="t1.nii: every value is 3"):
        check_signal("t1.nii", nib.Nifti1Image(np.full((3, 3, 3), 3.0), np.eye(4)))
    with pytest.raises(InputDataError, match="NaN or infinite;"):
        check_signal("t1.nii", nib.Nifti1Image(np.full((3, 3, 3), np.nan), np.eye(4)))
