import hashlib

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.simulate.study import (
    EFFECT_REGIONS,
    PLANTED_REGIONS,
    SimulationParams,
    _behaviour,
    simulate_study,
)


def test_layout_and_headers(small_study):
    bids, params = small_study["bids"], small_study["params"]
    bold = nib.load(bids / "sub-01/func/sub-01_task-imitation_run-1_bold.nii.gz")
    assert bold.shape[3] == params.n_volumes
    assert bold.header.get_zooms()[3] == pytest.approx(params.tr)
    assert nib.load(bids / "sub-01/anat/sub-01_T1w.nii.gz").ndim == 3
    events = pd.read_csv(bids / "sub-01/func/sub-01_task-imitation_run-1_events.tsv", sep="\t")
    assert sorted(events["trial_type"].value_counts().to_dict().items()) == [
        ("imitate", params.n_blocks // 2), ("mismatch", params.n_blocks // 2)
    ]
    # A baseline precedes the first block and separates the blocks.
    assert events["onset"].iloc[0] == params.rest_duration
    assert (np.diff(events["onset"]) == params.block_duration + params.rest_duration).all()
    participants = pd.read_csv(bids / "participants.tsv", sep="\t")
    assert list(participants.columns) == ["participant_id", "age", "sex", "eq", "accuracy"]


def test_simulation_is_deterministic(small_study, tmp_path):
    simulate_study(tmp_path / "bids", tmp_path / "truth", small_study["params"])
    for rel in ["participants.tsv", "sub-02/func/sub-02_task-imitation_run-1_bold.nii.gz"]:
        a = np.asarray(nib.load(small_study["bids"] / rel).dataobj) if rel.endswith("gz") else (
            small_study["bids"] / rel).read_bytes()
        b = np.asarray(nib.load(tmp_path / "bids" / rel).dataobj) if rel.endswith("gz") else (
            tmp_path / "bids" / rel).read_bytes()
        assert hashlib.sha1(np.asarray(a).tobytes()).hexdigest() == hashlib.sha1(
            np.asarray(b).tobytes()).hexdigest()


def test_behaviour_correlation_matches_the_planted_r():
    # 2,000 draws: the SE of r is about (1 - 0.25) / sqrt(2000) = 0.017; tolerance 0.05.
    table = _behaviour(SimulationParams(n_subjects=2000, eq_accuracy_r=0.5), np.random.default_rng(0))
    assert np.corrcoef(table["eq"], table["accuracy"])[0, 1] == pytest.approx(0.5, abs=0.05)
    assert table["eq"].between(0, 80).all() and table["accuracy"].between(0, 100).all()


def test_truth_masks_are_the_planted_spheres(small_study):
    truth = small_study["truth"]
    img = nib.load(next(truth.glob("*desc-overlap_mask.nii.gz")))
    mask = np.asarray(img.dataobj) > 0
    for name in EFFECT_REGIONS["overlap"]:
        centre, _ = PLANTED_REGIONS[name]
        ijk = np.round(np.linalg.inv(img.affine) @ np.r_[centre, 1])[:3].astype(int)
        assert mask[tuple(ijk)]
    # Two 10 mm spheres of 2 mm voxels: 2 * 4/3 pi 5^3 = about 1,050 voxels.
    assert 900 < mask.sum() < 1200
    subjects = pd.read_csv(truth / "subjects.tsv", sep="\t")
    assert len(subjects) == 4


def test_planted_effects_in_truth_table(small_study):
    params = small_study["params"]
    subjects = pd.read_csv(small_study["truth"] / "subjects.tsv", sep="\t")
    diff = subjects["insulaL_mismatch"] - subjects["insulaL_imitate"]
    # mismatch - imitate in insula = mismatch_insula - accuracy_slope * z_acc + noise.
    expected = params.mismatch_insula - params.accuracy_slope * subjects["z_accuracy"]
    assert np.abs(diff - expected).max() < 5 * params.subject_sd


def test_head_motion_is_small_and_nonzero(small_study):
    motion = pd.read_csv(
        next(small_study["truth"].glob("sub-01_run-1_desc-truemotion_timeseries.tsv")), sep="\t"
    )
    step = motion.diff().abs().iloc[1:]
    assert 0 < step[["trans_x", "trans_y", "trans_z"]].to_numpy().mean() < 0.5
