"""Tests of mirrorflow.simulate.coordinates (seeded NiMARE coordinate simulator)."""

import numpy as np
import pytest

from mirrorflow.exceptions import ConfigError
from mirrorflow.simulate.coordinates import (
    _check_arguments,
    simulate_coordinate_sets,
    simulated_study_ids,
)

ARGS = dict(
    categories={"mimicry": [[-46, -6, 48]], "contagion": [[38, 18, -4]]},
    shared_foci=[[0, 10, 40]],
    n_experiments=6,
    sample_size=(10, 20),
    n_noise_foci=2,
    fwhm=10.0,
)


@pytest.fixture(scope="module")
def simulated():
    return simulate_coordinate_sets(**ARGS, seed=7)


def test_same_seed_same_sets(simulated):
    again = simulate_coordinate_sets(**ARGS, seed=7)
    assert again == simulated


def test_other_seed_other_sets(simulated):
    other, _ = simulate_coordinate_sets(**ARGS, seed=8)
    assert other != simulated[0]


def test_ids_differ_between_categories(simulated):
    datasets, _ = simulated
    mimicry, contagion = set(datasets["mimicry"]), set(datasets["contagion"])
    assert len(mimicry) == len(contagion) == ARGS["n_experiments"]
    assert not mimicry & contagion
    assert all(i.startswith("mimicry-") for i in mimicry)


def test_study_ids_are_known_before_simulating(simulated):
    """The parse-time check of shared experiment ids (mirrorflow.meta.inputs) predicts them."""
    datasets, _ = simulated
    for label, dset in datasets.items():
        assert list(dset) == simulated_study_ids(label, ARGS["n_experiments"])
        assert all(list(study["contrasts"]) == ["1"] for study in dset.values())


def test_sample_sizes_in_range_and_foci_counts(simulated):
    datasets, truth = simulated
    for label, dset in datasets.items():
        n_planted = len(truth["planted_foci"][label])
        for study in dset.values():
            contrast = study["contrasts"]["1"]
            (n,) = contrast["metadata"]["sample_sizes"]
            assert 10 <= n <= 20
            coords = contrast["coords"]
            assert coords["space"] == "MNI"
            # NiMARE drops duplicate voxels, so a study can report fewer foci
            assert 1 <= len(coords["x"]) <= n_planted + ARGS["n_noise_foci"]


def test_truth_lists_planted_foci(simulated):
    _, truth = simulated
    assert truth["shared_foci"] == [[0.0, 10.0, 40.0]]
    assert truth["category_foci"]["mimicry"] == [[-46.0, -6.0, 48.0]]
    assert truth["planted_foci"]["contagion"] == [[0.0, 10.0, 40.0], [38.0, 18.0, -4.0]]


def test_every_study_reports_a_focus_near_each_planted_focus(simulated):
    datasets, truth = simulated
    for label, dset in datasets.items():
        for study in dset.values():
            c = study["contrasts"]["1"]["coords"]
            xyz = np.c_[c["x"], c["y"], c["z"]]
            for focus in truth["planted_foci"][label]:
                # fwhm 10 mm: a draw lies within ~3 sigma (13 mm) almost surely; allow 20 mm
                assert np.linalg.norm(xyz - focus, axis=1).min() < 20


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"categories": {"bad_label": []}}, "not a valid BIDS label"),
        ({"shared_foci": [[1, 2]]}, "not an"),
        ({"n_experiments": 1}, "n_experiments"),
        ({"sample_size": (20, 10)}, "sample_size"),
        ({"n_noise_foci": -1}, "n_noise_foci"),
        ({"fwhm": 0}, "fwhm"),
    ],
)
def test_check_arguments(change, match):
    with pytest.raises(ConfigError, match=match):
        _check_arguments(**{**ARGS, **change})
