"""Tests of mirrorflow.meta.ale: ALE with cluster-level FWE on a simulated coordinate set."""

import json

import nibabel as nib
import numpy as np
import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.meta.ale import load_dataset, run_ale
from mirrorflow.simulate.coordinates import simulate_coordinate_sets

PLANTED = {"mimicry": [[-46, -6, 48]]}
SHARED = [[0, 10, 40], [-40, 32, 30]]


@pytest.fixture(scope="module")
def ale_run(tmp_path_factory):
    """One simulated category (15 experiments, 3 planted foci) and its corrected ALE."""
    tmp = tmp_path_factory.mktemp("ale")
    datasets, truth = simulate_coordinate_sets(
        categories=PLANTED,
        shared_foci=SHARED,
        n_experiments=15,
        sample_size=(15, 30),
        n_noise_foci=3,
        fwhm=10.0,
        seed=11,
    )
    source = tmp / "desc-mimicry_coordinates.json"
    source.write_text(json.dumps(datasets["mimicry"]))
    # 50 iterations: smallest cluster p is 1/50 < alpha 0.05; enough for a recovery check
    out = run_ale(
        dataset_file=source,
        output_dir=tmp / "ale",
        label="mimicry",
        voxel_thresh=0.001,
        alpha=0.05,
        n_iters=50,
        n_cores=1,
        seed=1,
    )
    return out, truth, source


def _value_near(img, xyz, radius):
    """Largest value of ``img`` within ``radius`` mm of ``xyz``."""
    data = np.asarray(img.dataobj)
    ijk = np.argwhere(np.ones(data.shape, bool))
    world = nib.affines.apply_affine(img.affine, ijk)
    near = np.linalg.norm(world - xyz, axis=1) <= radius
    return data.reshape(-1)[near].max()


def test_thresholded_map_recovers_every_planted_focus(ale_run):
    out, truth, _ = ale_run
    img = nib.load(out["thresholded"])
    for focus in truth["planted_foci"]["mimicry"]:
        # Tolerance: a significant voxel within 8 mm (4 voxels) of each planted focus
        assert _value_near(img, focus, 8.0) > 0, focus


def test_peak_is_near_a_planted_focus(ale_run):
    out, truth, _ = ale_run
    img = nib.load(out["thresholded"])
    data = np.asarray(img.dataobj)
    peak = nib.affines.apply_affine(img.affine, np.unravel_index(data.argmax(), data.shape))
    distances = np.linalg.norm(np.array(truth["planted_foci"]["mimicry"]) - peak, axis=1)
    # Tolerance: the global peak lies within 8 mm of one planted focus
    assert distances.min() <= 8.0


def test_nimare_map_names_and_sidecar(ale_run, tmp_path):
    out, _, _ = ale_run
    folder = out["thresholded"].parent
    for key in ("z", "stat", "logp_desc-size_level-cluster_corr-FWE_method-montecarlo"):
        assert (folder / f"meta-mimicry_{key}.nii.gz").is_file()
    sidecar = json.loads(out["sidecar"].read_text())
    assert sidecar["NIterations"] == 50 and "ALE (NiMARE" in sidecar["Description"]


def test_rerun_with_same_seed_is_identical(ale_run, tmp_path):
    out, _, source = ale_run
    again = run_ale(
        dataset_file=source,
        output_dir=tmp_path,
        label="mimicry",
        voxel_thresh=0.001,
        alpha=0.05,
        n_iters=50,
        n_cores=1,
        seed=1,
    )
    a = np.asarray(nib.load(out["thresholded"]).dataobj)
    b = np.asarray(nib.load(again["thresholded"]).dataobj)
    np.testing.assert_array_equal(a, b)


def test_load_dataset_missing_file(tmp_path):
    with pytest.raises(InputDataError, match="does not exist"):
        load_dataset(tmp_path / "nope.json")


def test_load_dataset_requires_sample_sizes(tmp_path):
    path = tmp_path / "nosize.json"
    coords = {"space": "MNI", "x": [0.0], "y": [0.0], "z": [0.0]}
    path.write_text(json.dumps({"s1": {"contrasts": {"1": {"coords": coords}}}}))
    with pytest.raises(InputDataError, match="nosize.json.*sample_sizes"):
        load_dataset(path)
    dset = load_dataset(path, assumed_sample_size=25)
    assert list(dset.metadata["sample_sizes"]) == [[25]]


def test_bad_threshold(ale_run, tmp_path):
    _, _, source = ale_run
    with pytest.raises(ConfigError, match="cluster-forming p"):
        run_ale(
            dataset_file=source,
            output_dir=tmp_path,
            label="x",
            voxel_thresh=2,
            alpha=0.05,
            n_iters=5,
            seed=1,
        )
