"""Indexing raw BIDS and fMRIPrep trees: selection, sessions, labels, companions."""

import json
import os
from pathlib import Path

import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.layout import index_bids, index_fmriprep, index_preprocessed


def test_index_finds_every_subject_and_run(small_study):
    index = index_bids(small_study["bids"], task="imitation")
    assert index.runs == {f"{i:02d}": [(None, "1")] for i in range(1, 5)}
    assert not index.has_sessions
    assert index.t1w["02"].endswith("sub-02/anat/sub-02_T1w.nii.gz")


def test_index_selects_subjects(small_study):
    assert index_bids(small_study["bids"], task="imitation", subjects=["03"]).subjects == ["03"]


def test_index_subject_absent(small_study):
    with pytest.raises(ConfigError, match=r"subjects \['09'\] are selected in config but absent"):
        index_bids(small_study["bids"], task="imitation", subjects=["01", "09"])


@pytest.mark.parametrize("label", ["../01", "0 1", "01;rm", "$(x)", "a_b"])
def test_index_refuses_path_and_shell_labels(small_study, label):
    with pytest.raises(ConfigError, match="not a valid BIDS label"):
        index_bids(small_study["bids"], task="imitation", subjects=[label])


def test_index_unknown_task(small_study):
    with pytest.raises(InputDataError, match="no task-rest BOLD runs"):
        index_bids(small_study["bids"], task="rest")


def test_index_not_bids(tmp_path):
    with pytest.raises(InputDataError, match="not a BIDS dataset"):
        index_bids(tmp_path, task="imitation")


def _touch(root, *names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")


def _tree(tmp_path, *, sessions=("1", "2"), subjects=("01", "02"), runs=("1", "2")):
    root = tmp_path / "bids"
    (root / "dataset_description.json").parent.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "x"}))
    for sub in subjects:
        _touch(root, f"sub-{sub}/ses-1/anat/sub-{sub}_ses-1_T1w.nii.gz")
        for ses in sessions:
            for run in runs:
                stem = f"sub-{sub}/ses-{ses}/func/sub-{sub}_ses-{ses}_task-faces_run-{run}"
                _touch(root, f"{stem}_bold.nii.gz", f"{stem}_events.tsv")
    return root


def test_index_sessions_and_selection(tmp_path):
    root = _tree(tmp_path)
    index = index_bids(root, task="faces")
    assert index.has_sessions
    assert index.runs["01"] == [("1", "1"), ("1", "2"), ("2", "1"), ("2", "2")]
    assert index.t1w["01"].endswith("sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz")
    picked = index_bids(root, task="faces", subjects=["02"], sessions=["2"], runs=["1"])
    assert picked.runs == {"02": [("2", "1")]}


def test_index_run_without_events(tmp_path):
    root = _tree(tmp_path)
    (root / "sub-02/ses-2/func/sub-02_ses-2_task-faces_run-1_events.tsv").unlink()
    with pytest.raises(InputDataError, match=r"sub-02_ses-2_task-faces_run-1_events\.tsv: "
                                             "file does not exist"):
        index_bids(root, task="faces")


def test_index_unsupported_entity_and_missing_run(tmp_path):
    root = _tree(tmp_path, sessions=("1",), subjects=("01",))
    _touch(root, "sub-01/ses-1/func/sub-01_ses-1_task-faces_part-mag_run-3_bold.nii.gz")
    with pytest.raises(InputDataError, match=r"entities \['part'\] are not supported"):
        index_bids(root, task="faces")
    root = _tree(tmp_path / "b", sessions=("1",), subjects=("01",))
    _touch(root, "sub-01/ses-1/func/sub-01_ses-1_task-faces_bold.nii.gz")
    with pytest.raises(InputDataError, match=r"task-faces_run-1_bold.nii.gz: a second file "
                       r"for run 1 beside .*task-faces_bold.nii.gz \(a series named without "
                       r"run- is run 1\); keep one"):
        index_bids(root, task="faces")


def test_single_run_task_named_without_run_entity(tmp_path):
    """A task with one run, named without run- as most public datasets name it, is run 1;
    its events file is found by the BIDS inheritance principle, here at the dataset root
    (the nearest level with an applicable events file wins)."""
    root = tmp_path / "bids"
    _touch(root, "dataset_description.json")
    for sub in ("01", "02"):
        _touch(root, f"sub-{sub}/anat/sub-{sub}_T1w.nii.gz",
               f"sub-{sub}/func/sub-{sub}_task-faces_bold.nii.gz")
    _touch(root, "task-faces_events.tsv", "sub-02/func/sub-02_task-faces_events.tsv")
    index = index_bids(root, task="faces")
    assert index.runs == {"01": [(None, "1")], "02": [(None, "1")]}
    assert index.bold[("01", None, "1")] == str(root / "sub-01/func/sub-01_task-faces_bold.nii.gz")
    assert index.events == {
        ("01", None, "1"): str(root / "task-faces_events.tsv"),
        ("02", None, "1"): str(root / "sub-02/func/sub-02_task-faces_events.tsv")}
    assert index_bids(root, task="faces", runs=[1]).runs == index.runs  # a YAML integer
    (root / "task-faces_events.tsv").unlink()
    with pytest.raises(InputDataError, match=r"sub-01/func/sub-01_task-faces_events.tsv: file "
                                             "does not exist"):
        index_bids(root, task="faces")


def test_index_bad_folder_label(tmp_path):
    root = _tree(tmp_path, sessions=("1",), subjects=("01",))
    (root / "sub-0 1").mkdir()
    with pytest.raises(ConfigError, match=r"subject folder .* '0 1' is not a valid BIDS label"):
        index_bids(root, task="faces")


def _fmriprep(tmp_path, res="2"):
    bids = _tree(tmp_path, sessions=("1",), runs=("1",))
    deriv = tmp_path / "fmriprep"
    deriv.mkdir()
    (deriv / "dataset_description.json").write_text("{}")
    for sub in ("01", "02"):
        stem = f"sub-{sub}/ses-1/func/sub-{sub}_ses-1_task-faces_run-1"
        space = f"space-MNI152NLin2009cAsym_res-{res}"
        _touch(deriv, f"{stem}_{space}_desc-preproc_bold.nii.gz",
               f"{stem}_{space}_desc-brain_mask.nii.gz", f"{stem}_desc-confounds_timeseries.tsv",
               f"{stem}_space-T1w_desc-preproc_bold.nii.gz")
    return bids, deriv


def _annex(root: Path) -> list[Path]:
    """Every file of ``root`` replaced by a symbolic link into ``.git/annex/objects``, as a
    DataLad or git-annex clone holds them; returns the links."""
    links = []
    for path in sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts):
        key = root / ".git" / "annex" / "objects" / path.name / path.name
        key.parent.mkdir(parents=True)
        path.rename(key)
        path.symlink_to(os.path.relpath(key, path.parent))  # relative, as git-annex links
        links.append(path)
    return links


def test_index_annexed_dataset_and_a_broken_link(tmp_path):
    """A DataLad/git-annex clone (files are symbolic links into the annex) is indexed as
    it is, by the links' own paths; a link whose content was not fetched stops the index
    naming it, whether it is a BOLD series, a T1w image, an events file or an fMRIPrep
    confounds table."""
    root = _tree(tmp_path, sessions=("1",), runs=("1",))
    links = _annex(root)
    index = index_bids(root, task="faces")
    assert index.bold[("01", "1", "1")] == \
        str(root / "sub-01/ses-1/func/sub-01_ses-1_task-faces_run-1_bold.nii.gz")
    assert all(Path(p).is_symlink() for p in [*index.bold.values(), *index.t1w.values()])
    assert len(links) == 7  # description, and per subject a T1w, a series, its events
    for name in ("sub-02/ses-1/func/sub-02_ses-1_task-faces_run-1_bold.nii.gz",
                 "sub-02/ses-1/anat/sub-02_ses-1_T1w.nii.gz",
                 "sub-02/ses-1/func/sub-02_ses-1_task-faces_run-1_events.tsv"):
        target = (root / name).resolve()
        target.rename(target.with_name("away"))
        with pytest.raises(InputDataError, match=rf"{root / name}: broken symbolic link \(its "
                           r"target .* does not exist; in a DataLad dataset, fetch the content "
                           r"with `datalad get`\)"):
            index_bids(root, task="faces")
        target.with_name("away").rename(target)
    bids, deriv = _fmriprep(tmp_path / "fmriprep-case")
    confounds = deriv / "sub-01/ses-1/func/sub-01_ses-1_task-faces_run-1_desc-confounds_" \
        "timeseries.tsv"
    confounds.unlink()
    confounds.symlink_to(tmp_path / "not-fetched")
    with pytest.raises(InputDataError, match=rf"{confounds}: broken symbolic link"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym",
                       res="2")


def test_index_fmriprep(tmp_path):
    bids, deriv = _fmriprep(tmp_path)
    index = index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym",
                           res="2")
    assert index.runs == {"01": [("1", "1")], "02": [("1", "1")]}
    with pytest.raises(InputDataError, match="no task-faces space-MNI152NLin6Asym"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin6Asym")


def test_index_fmriprep_missing_confounds(tmp_path):
    bids, deriv = _fmriprep(tmp_path)
    (deriv / "sub-02/ses-1/func/sub-02_ses-1_task-faces_run-1_desc-confounds_timeseries.tsv"
     ).unlink()
    with pytest.raises(InputDataError, match="desc-confounds_timeseries.tsv: file does not"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym",
                       res="2")


def test_index_fmriprep_before_20_2_names_its_confounds_regressors(tmp_path):
    """fMRIPrep before 20.2 wrote desc-confounds_regressors.tsv (same columns): the index
    takes it where desc-confounds_timeseries.tsv is absent, and names both when neither is
    there."""
    bids, deriv = _fmriprep(tmp_path)
    func = deriv / "sub-02/ses-1/func"
    (func / "sub-02_ses-1_task-faces_run-1_desc-confounds_timeseries.tsv").rename(
        func / "sub-02_ses-1_task-faces_run-1_desc-confounds_regressors.tsv")
    index = index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym",
                           res="2")
    stem = "sub-{0}/ses-1/func/sub-{0}_ses-1_task-faces_run-1"
    assert index.imported[("01", "1", "1")] == {
        "bold": str(deriv / stem.format("01")) + "_space-MNI152NLin2009cAsym_res-2_desc-"
        "preproc_bold.nii.gz",
        "mask": str(deriv / stem.format("01")) + "_space-MNI152NLin2009cAsym_res-2_desc-"
        "brain_mask.nii.gz",
        "confounds": str(deriv / stem.format("01")) + "_desc-confounds_timeseries.tsv",
    }
    assert index.imported[("02", "1", "1")]["confounds"] == \
        str(deriv / stem.format("02")) + "_desc-confounds_regressors.tsv"
    (func / "sub-02_ses-1_task-faces_run-1_desc-confounds_regressors.tsv").unlink()
    with pytest.raises(InputDataError, match=r"run-1_desc-confounds_timeseries.tsv: file does "
                       r"not exist \(nor sub-02_ses-1_task-faces_run-1_desc-confounds_"
                       r"regressors.tsv, its name before fMRIPrep 20.2\)"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym",
                       res="2")


def test_index_fmriprep_names_the_spaces_and_resolutions_it_found(tmp_path):
    """With fmriprep_res unset, res-2 series are other outputs; when nothing else matches,
    the message lists what is there and the config keys that choose it."""
    bids, deriv = _fmriprep(tmp_path)
    with pytest.raises(InputDataError, match=r"no task-faces space-MNI152NLin2009cAsym "
                       r"desc-preproc_bold runs found; found: space-MNI152NLin2009cAsym res-2, "
                       r"space-T1w \(config study.fmriprep_space, study.fmriprep_cohort and "
                       r"study.fmriprep_res\)"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin2009cAsym")
    with pytest.raises(InputDataError, match=r"sub-01: no task-faces space-MNI152NLin6Asym "
                       r"preprocessed BOLD runs; found: space-MNI152NLin2009cAsym res-2"):
        index_fmriprep(deriv, bids_dir=bids, task="faces", space="MNI152NLin6Asym",
                       subjects=["01"])
    with pytest.raises(InputDataError, match=r"no task-rest desc-preproc_bold series at all"):
        index_fmriprep(deriv, bids_dir=bids, task="rest", space="MNI152NLin6Asym")


def _acquisitions(tmp_path, *, events=("",)):
    """One subject, two runs, each acquired twice (acq-fast, acq-slow); events files named
    with each of the ``events`` acquisition parts ("" inherits to both)."""
    root = _tree(tmp_path, sessions=("1",), subjects=("01",), runs=())
    for run in ("1", "2"):
        stem = f"sub-01/ses-1/func/sub-01_ses-1_task-faces"
        for acq in ("fast", "slow"):
            _touch(root, f"{stem}_acq-{acq}_run-{run}_bold.nii.gz")
        for part in events:
            _touch(root, f"{stem}{part}_run-{run}_events.tsv")
    return root


def test_filters_select_one_acquisition_and_events_are_inherited(tmp_path):
    """study.filters picks one acquisition per run; the events file without acq applies to
    both (BIDS inheritance), and one named with the acquisition wins over it."""
    root = _acquisitions(tmp_path)
    with pytest.raises(InputDataError, match=r"acq-fast_run-1_bold.nii.gz: entities \['acq'\] "
                       r"tell acquisitions apart; select one in config study.filters"):
        index_bids(root, task="faces")
    index = index_bids(root, task="faces", filters={"acq": "slow"})
    assert index.runs == {"01": [("1", "1"), ("1", "2")]}
    assert index.bold[("01", "1", "2")].endswith("sub-01_ses-1_task-faces_acq-slow_run-2_bold.nii.gz")
    assert index.events[("01", "1", "2")].endswith("sub-01_ses-1_task-faces_run-2_events.tsv")
    specific = _acquisitions(tmp_path / "specific", events=("", "_acq-slow"))
    index = index_bids(specific, task="faces", filters={"acq": "slow"})
    assert index.events[("01", "1", "1")].endswith("task-faces_acq-slow_run-1_events.tsv")
    index = index_bids(specific, task="faces", filters={"acq": "fast"})
    assert index.events[("01", "1", "1")].endswith("task-faces_run-1_events.tsv")


def test_filters_that_select_nothing_or_an_unknown_entity(tmp_path):
    root = _acquisitions(tmp_path)
    with pytest.raises(InputDataError, match=r"no task-faces BOLD runs found that "
                       r"study.filters \{'acq': 'medium'\} select"):
        index_bids(root, task="faces", filters={"acq": "medium"})
    with pytest.raises(ConfigError, match=r"study.filters: entities \['part'\] cannot be"):
        index_bids(root, task="faces", filters={"part": "mag"})
    with pytest.raises(ConfigError, match="study.filters acq"):
        index_bids(root, task="faces", filters={"acq": "a b"})


def test_uncompressed_bold_and_two_files_for_one_run(tmp_path):
    """``.nii`` series are found as they are named; a run found twice (``.nii`` beside
    ``.nii.gz``) is an error that names both files."""
    root = _tree(tmp_path, sessions=("1",), subjects=("01",), runs=("1",))
    stem = root / "sub-01/ses-1/func/sub-01_ses-1_task-faces"
    Path(f"{stem}_run-1_bold.nii.gz").rename(f"{stem}_run-1_bold.nii")
    index = index_bids(root, task="faces")
    assert index.bold[("01", "1", "1")] == f"{stem}_run-1_bold.nii"
    _touch(root, "sub-01/ses-1/func/sub-01_ses-1_task-faces_run-1_bold.nii.gz")
    with pytest.raises(InputDataError, match=r"run-1_bold.nii.gz: a second file for run 1 "
                       r"beside .*run-1_bold.nii;"):
        index_bids(root, task="faces")


def test_fmriprep_outputs_of_a_single_run_task_with_acquisitions_and_cohorts(tmp_path):
    """fMRIPrep keeps the raw entities: a series named without run- is run 1 with its mask
    and confounds named the same way; study.filters select an acquisition (acq-slow); a
    cohort is selected like a resolution (a series of another cohort is another output);
    events come from the raw dataset by inheritance, as for raw runs."""
    bids = tmp_path / "bids"
    _touch(bids, "dataset_description.json", "sub-01/func/sub-01_task-faces_events.tsv")
    deriv = tmp_path / "fmriprep"
    _touch(deriv, "dataset_description.json")
    func = deriv / "sub-01/func"
    for acq in ("fast", "slow"):
        for cohort in ("1", "2"):
            space = f"space-MNIPediatricAsym_cohort-{cohort}_res-2"
            stem = f"sub-01/func/sub-01_task-faces_acq-{acq}"
            _touch(deriv, f"{stem}_{space}_desc-preproc_bold.nii.gz",
                   f"{stem}_{space}_desc-brain_mask.nii.gz")
        _touch(deriv, f"sub-01/func/sub-01_task-faces_acq-{acq}_desc-confounds_timeseries.tsv")
    select = dict(bids_dir=bids, task="faces", space="MNIPediatricAsym", res="2")
    with pytest.raises(InputDataError, match=r"entities \['acq'\] tell acquisitions apart"):
        index_fmriprep(deriv, **select, cohort="1")
    with pytest.raises(InputDataError, match=r"no task-faces space-MNIPediatricAsym res-2 "
                       r"desc-preproc_bold runs found that study.filters \{'acq': 'slow'\} "
                       r"select; found: space-MNIPediatricAsym cohort-1 res-2, "
                       r"space-MNIPediatricAsym cohort-2 res-2"):
        index_fmriprep(deriv, **select, filters={"acq": "slow"})
    index = index_fmriprep(deriv, **select, cohort=2, filters={"acq": "slow"})
    assert index.runs == {"01": [(None, "1")]}
    stem = str(func / "sub-01_task-faces_acq-slow")
    assert index.imported[("01", None, "1")] == {
        "bold": f"{stem}_space-MNIPediatricAsym_cohort-2_res-2_desc-preproc_bold.nii.gz",
        "mask": f"{stem}_space-MNIPediatricAsym_cohort-2_res-2_desc-brain_mask.nii.gz",
        "confounds": f"{stem}_desc-confounds_timeseries.tsv",
    }
    assert index.events[("01", None, "1")] == \
        str(bids / "sub-01/func/sub-01_task-faces_events.tsv")
    (bids / "sub-01/func/sub-01_task-faces_events.tsv").unlink()
    with pytest.raises(InputDataError, match=r"bids/sub-01/func/sub-01_task-faces_acq-slow_events"
                       r".tsv: file does not exist"):
        index_fmriprep(deriv, **select, cohort=2, filters={"acq": "slow"})


def test_index_series_another_pipeline_preprocessed(tmp_path):
    """SPM-style output (swr-prefixed, uncompressed, in a folder of the user's choosing) is
    found by the study.preprocessed patterns: runs with and without confounds tables and
    masks, a pattern without {run} (run 1), events from the raw dataset by inheritance, and
    one clear error for a bad pattern, a selected subject it does not match, or a confounds
    table that is not there."""
    bids = tmp_path / "bids"
    _touch(bids, "dataset_description.json", "task-faces_events.tsv")
    spm = tmp_path / "spm"
    for sub in ("01", "02"):
        for run in ("1", "2"):
            _touch(spm, f"sub-{sub}/func/swrsub-{sub}_task-faces_run-{run}_bold.nii",
                   f"sub-{sub}/func/rp_sub-{sub}_task-faces_run-{run}.tsv")
    _touch(spm, "sub-01/func/swrsub-01_task-rest_run-1_bold.nii", "sub-01/func/notes.txt")
    bold = str(spm / "sub-{sub}/func/swrsub-{sub}_task-{task}_run-{run}_bold.nii")
    confounds = str(spm / "sub-{sub}/func/rp_sub-{sub}_task-{task}_run-{run}.tsv")
    index = index_preprocessed({"bold": bold, "confounds": confounds}, bids_dir=bids,
                               task="faces")
    assert index.runs == {"01": [(None, "1"), (None, "2")], "02": [(None, "1"), (None, "2")]}
    assert index.imported[("02", None, "2")] == {
        "bold": str(spm / "sub-02/func/swrsub-02_task-faces_run-2_bold.nii"), "mask": None,
        "confounds": str(spm / "sub-02/func/rp_sub-02_task-faces_run-2.tsv")}
    assert set(index.events.values()) == {str(bids / "task-faces_events.tsv")}
    picked = index_preprocessed({"bold": bold}, bids_dir=bids, task="faces", subjects=["02"],
                                runs=[2])
    assert picked.runs == {"02": [(None, "2")]}
    assert picked.imported[("02", None, "2")]["confounds"] is None
    single = index_preprocessed({"bold": str(spm / "sub-{sub}/func/swrsub-{sub}_task-{task}_"
                                             "run-1_bold.nii")}, bids_dir=bids, task="faces")
    assert single.runs == {"01": [(None, "1")], "02": [(None, "1")]}
    with pytest.raises(ConfigError, match=r"study.preprocessed.bold .*: unknown placeholder\(s\) "
                       r"\['subject'\]"):
        index_preprocessed({"bold": str(spm / "sub-{subject}/x.nii")}, bids_dir=bids,
                           task="faces")
    with pytest.raises(ConfigError, match=r"subjects \['03'\] are selected in config but "
                       r"study.preprocessed.bold .* matches no series of theirs"):
        index_preprocessed({"bold": bold}, bids_dir=bids, task="faces", subjects=["01", "03"])
    (spm / "sub-02/func/rp_sub-02_task-faces_run-1.tsv").unlink()
    with pytest.raises(InputDataError, match=r"rp_sub-02_task-faces_run-1.tsv: file does not "
                                             "exist"):
        index_preprocessed({"bold": bold, "confounds": confounds}, bids_dir=bids, task="faces")
