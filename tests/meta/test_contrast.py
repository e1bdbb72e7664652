"""Tests of mirrorflow.meta.contrast: ALE subtraction sign convention and thresholds."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from nimare.dataset import Dataset

from mirrorflow.exceptions import ConfigError
from mirrorflow.jobs import frozen_gc
from mirrorflow.meta.contrast import _check_resolution, fit_subtraction, threshold_directions
from mirrorflow.simulate.coordinates import simulate_coordinate_sets

FOCUS_1 = [-46, -6, 48]  # planted only in group 1
FOCUS_2 = [38, 18, -4]  # planted only in group 2


@pytest.fixture(scope="module")
def subtraction():
    with frozen_gc():  # as each test (tests/conftest.py)
        datasets, _ = simulate_coordinate_sets(
            categories={"one": [FOCUS_1], "two": [FOCUS_2]},
            shared_foci=[[0, 10, 40]],
            n_experiments=12,
            sample_size=(15, 30),
            n_noise_foci=2,
            fwhm=10.0,
            seed=5,
        )
        dset1, dset2 = Dataset(datasets["one"]), Dataset(datasets["two"])
        return fit_subtraction(dset1, dset2, n_iters=100, seed=2)


def _at(img, xyz):
    ijk = np.rint(np.linalg.inv(img.affine) @ [*xyz, 1])[:3].astype(int)
    return np.asarray(img.dataobj)[tuple(ijk)]


def test_sign_convention(subtraction):
    # z_desc-group1MinusGroup2 is positive where group 1 > group 2, negative where 2 > 1
    z = subtraction.get_map("z_desc-group1MinusGroup2")
    assert _at(z, FOCUS_1) > 0
    assert _at(z, FOCUS_2) < 0


def test_directions_are_positive_and_disjoint(subtraction):
    forward, reverse = threshold_directions(subtraction, voxel_thresh=0.05)
    f, r = np.asarray(forward.dataobj), np.asarray(reverse.dataobj)
    assert f.min() >= 0 and r.min() >= 0
    assert not np.any((f > 0) & (r > 0))
    assert _at(forward, FOCUS_1) > 0 and _at(forward, FOCUS_2) == 0
    assert _at(reverse, FOCUS_2) > 0 and _at(reverse, FOCUS_1) == 0


def test_shared_ids_refused():
    dset, _ = simulate_coordinate_sets(
        categories={"a": []},
        shared_foci=[[0, 10, 40]],
        n_experiments=2,
        sample_size=(10, 10),
        n_noise_foci=0,
        fwhm=10.0,
        seed=1,
    )
    same = Dataset(dset["a"])
    with pytest.raises(ConfigError, match="share 2 experiment id"):
        fit_subtraction(same, same, n_iters=5, seed=1)


def test_permutations_must_resolve_threshold():
    with pytest.raises(ConfigError, match="1000 permutations cannot give p < 0.001"):
        _check_resolution(voxel_thresh=0.001, n_iters=1000)
    _check_resolution(voxel_thresh=0.01, n_iters=1000)


def test_thresholds_checked(subtraction):
    with pytest.raises(ConfigError, match="voxel p"):
        threshold_directions(subtraction, voxel_thresh=0)
    assert isinstance(threshold_directions(subtraction, voxel_thresh=0.5)[0], nib.Nifti1Image)


def test_minimum_cluster_volume(subtraction):
    """Clusters below the minimum volume go; larger ones stay unchanged."""
    from scipy import ndimage

    forward, _ = threshold_directions(subtraction, voxel_thresh=0.05)
    data = np.asarray(forward.dataobj)
    labels, n = ndimage.label(data > 0, ndimage.generate_binary_structure(3, 1))
    sizes = np.bincount(labels.ravel())[1:] * 8  # 2 mm voxels
    assert n >= 2
    cut = float(np.sort(sizes)[-1])  # keep only the largest cluster
    kept, _ = threshold_directions(subtraction, voxel_thresh=0.05, min_cluster_mm3=cut)
    largest = labels == (np.argmax(sizes) + 1)
    np.testing.assert_array_equal(np.asarray(kept.dataobj) > 0, largest)
    np.testing.assert_array_equal(np.asarray(kept.dataobj)[largest], data[largest])


SHIPPED = Path(__file__).parents[2] / "resources" / "meta"


@pytest.fixture(scope="module")
def shipped_gated(tmp_path_factory):
    """The shipped Sleuth sets (mimicry, contagion) and their main effects as the workflow
    thresholds them (cluster-level FWE 0.05 above p < 0.001; 200 iterations): the gates."""
    from mirrorflow.meta.ale import fit_ale, threshold_fwe
    from mirrorflow.meta.inputs import _sleuth_dict

    folder = tmp_path_factory.mktemp("gates")
    with frozen_gc():
        dsets = [Dataset(_sleuth_dict(SHIPPED / f"{c}.txt")) for c in ("mimicry", "contagion")]
        files = []
        for label, dset in zip(("mimicry", "contagion"), dsets):
            main = fit_ale(dset, voxel_thresh=0.001, n_iters=200, seed=1)
            files.append(folder / f"{label}.nii.gz")
            threshold_fwe(main, alpha=0.05).to_filename(files[-1])
    return dsets, files


def test_gated_subtraction_equals_nimare_on_shipped_sets(shipped_gated, tmp_path):
    """Gated by the two main effects, the subtraction of the shipped sets, its permutations
    in two shard jobs' files (110: blocks of 100 and 10) and merged, equals NiMARE's own
    ALESubtraction given the same maps as inference_map1 and inference_map2 (its
    main-effect-gated mode, as ContrastWorkflow runs it), same seed: every map bit for bit.
    Each direction is one-sided and lies inside its minuend's main effect."""
    from nimare.meta.cbma.ale import ALESubtraction

    from mirrorflow.meta import contrast

    dsets, files = shipped_gated
    gates, sizes = contrast.open_gates(files)
    assert min(sizes) > 100, sizes  # both main effects hold clusters on the shipped sets
    with frozen_gc():
        theirs = ALESubtraction(n_iters=110, random_state=2).fit(
            *dsets, inference_map1=nib.load(files[0]), inference_map2=nib.load(files[1]))
        settings = contrast._settings(dsets, ["mimicry", "contagion"], 110, 2)
        paths = []
        for shard in range(2):
            part = contrast.subtraction_null_shard(*dsets, n_iters=110, seed=2, shard=shard,
                                                   shards=2)
            paths.append(tmp_path / f"shard{shard}.npz")
            contrast.write_subtraction_shard(paths[-1], part, settings)
        merged = contrast.merge_subtraction_shards(paths, settings)
        ours = contrast.fit_subtraction(*dsets, n_iters=110, seed=2, merged=merged, gates=gates)
    assert sorted(ours.maps) == sorted(theirs.maps)
    for key in theirs.maps:
        np.testing.assert_array_equal(ours.maps[key], theirs.maps[key], err_msg=key)

    z = ours.get_map("z_desc-group1MinusGroup2", return_type="array")
    inside = [ours.masker.transform(str(f)).ravel() > 0 for f in files]
    assert np.any(z > 0) and np.any(z < 0)
    assert np.all(inside[0][z > 0]) and np.all(inside[1][z < 0])
    # One-sided: the smallest p is 1/110 (two-sided it would be 2/110).
    p = ours.get_map("p_desc-group1MinusGroup2", return_type="array")
    assert p.min() == pytest.approx(1 / 110)


def test_gated_run_writes_directions_inside_the_gates(shipped_gated, tmp_path):
    """run_contrast with gate files: each thresholded direction inside its minuend's main
    effect, the gate named in its sidecar; without a voxel in either gate, no direction is
    tested (both maps empty, said in the sidecar)."""
    import json

    from mirrorflow.meta.contrast import run_contrast
    from mirrorflow.meta.inputs import write_category

    dsets, files = shipped_gated
    del dsets
    data = []
    for label in ("mimicry", "contagion"):
        data.append(tmp_path / f"{label}.json")
        source = SHIPPED / f"{label}.txt"
        write_category(label=label, spec={"format": "sleuth", "path": str(source)},
                       source=source, output_file=data[-1],
                       summary_file=tmp_path / f"{label}_summary.json", assumed_sample_size=20)
    empty = tmp_path / "empty.nii.gz"
    img = nib.load(files[0])
    nib.Nifti1Image(np.zeros(img.shape, np.float32), img.affine).to_filename(empty)
    for case, gate_files in (("gated", files), ("closed", [empty, empty])):
        out = tmp_path / case
        directions = [out / "forward.nii.gz", out / "reverse.nii.gz"]
        with frozen_gc():
            run_contrast(dataset_files=data, labels=["mimicry", "contagion"], output_dir=out,
                         direction_files=directions, voxel_thresh=0.1, n_iters=20, seed=2,
                         gate_files=gate_files)
        for direction, gate in zip(directions, gate_files):
            kept = np.asarray(nib.load(direction).dataobj) > 0
            sidecar = json.loads(direction.with_name(
                direction.name.replace(".nii.gz", ".json")).read_text())
            assert sidecar["Gate"] == "main_effect" and sidecar["GateMap"] == str(gate)
            assert sidecar["Sidedness"] == "one-sided"
            if case == "gated":
                assert kept.any() and not np.any(kept & ~(np.asarray(nib.load(gate).dataobj) > 0))
            else:
                assert not kept.any() and sidecar["GateVoxels"] == 0
