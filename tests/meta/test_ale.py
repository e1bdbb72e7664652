"""Tests of mirrorflow.meta.ale: ALE with cluster-level FWE on a simulated coordinate set."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.clusters import cluster_table
from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.jobs import frozen_gc
from mirrorflow.meta.ale import load_dataset, run_ale, threshold_fwe
from mirrorflow.meta.tables import write_clusters, write_contributions
from mirrorflow.simulate.coordinates import simulate_coordinate_sets

REPO = Path(__file__).resolve().parents[2]
PLANTED = {"mimicry": [[-46, -6, 48]]}
SHARED = [[0, 10, 40], [-40, 32, 30]]


@pytest.fixture(scope="module")
def ale_run(tmp_path_factory):
    """One simulated category (15 experiments, 3 planted foci) and its corrected ALE."""
    tmp = tmp_path_factory.mktemp("ale")
    with frozen_gc():  # as each test (tests/conftest.py)
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
            n_iters=20,
            seed=1,
        )
    with pytest.raises(ConfigError, match="10 Monte Carlo iterations cannot give p_FWE < 0.05"):
        run_ale(dataset_file=source, output_dir=tmp_path, label="x", voxel_thresh=0.001,
                alpha=0.05, n_iters=10, seed=1)
    with pytest.raises(ConfigError, match="FWE level"):
        run_ale(dataset_file=source, output_dir=tmp_path, label="x", voxel_thresh=0.001,
                alpha=0.05, n_iters=20, seed=1, level="peak")


def test_only_planted_convergence_survives(ale_run):
    """Nothing but the planted foci survives: every cluster peak of the thresholded map lies
    within 10 mm of a planted focus (category-specific or shared; 5 voxels, the spread of
    the simulated reports), and every planted focus has a cluster."""
    out, truth, _ = ale_run
    table = cluster_table(nib.load(out["thresholded"]), atlas=["harvard_oxford", "aal"])
    planted = np.array(truth["planted_foci"]["mimicry"])
    peaks = table[table["size_voxels"].notna()][["x", "y", "z"]].to_numpy(float)
    assert len(peaks) == len(planted)
    for peak in peaks:
        assert np.linalg.norm(planted - peak, axis=1).min() <= 10.0, peak


def test_cluster_table_names_both_atlases(ale_run, tmp_path):
    out, _, _ = ale_run
    result = write_clusters(out["thresholded"], table_file=tmp_path / "c.tsv",
                            figure_file=tmp_path / "g.png", atlases=["harvard_oxford", "aal"],
                            title="mimicry")
    table = pd.read_csv(tmp_path / "c.tsv", sep="\t")
    assert {"label_harvard_oxford", "label_aal", "x", "y", "z", "size_mm3", "peak_stat"} <= set(
        table.columns)
    sidecar = json.loads((tmp_path / "c.json").read_text())
    assert "Harvard-Oxford" in sidecar["Atlases"]["harvard_oxford"]
    assert "AAL" in sidecar["Atlases"]["aal"]
    # The planted left precentral focus (-46, -6, 48) is labelled precentral by both atlases.
    first = table.iloc[(table[["x", "y", "z"]] - [-46, -6, 48]).pow(2).sum(axis=1).argmin()]
    assert "Precentral" in first["label_harvard_oxford"] and "Precentral" in first["label_aal"]
    assert result["n_clusters"] == int(table["size_voxels"].notna().sum())
    png = (tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def _focus_counts(dataset_file, thresholded, table):
    """Independent count of each experiment's foci in each cluster: clusters of
    face-connected voxels, numbered as in the cluster table (by the label at its peaks)."""
    from nimare.dataset import Dataset
    from scipy import ndimage

    img = nib.load(thresholded)
    labels, _ = ndimage.label(np.asarray(img.dataobj) > 0)
    inverse = np.linalg.inv(img.affine)
    number = {}
    for row in table[table["size_voxels"].notna()].itertuples():
        ijk = np.rint(inverse @ [row.x, row.y, row.z, 1])[:3].astype(int)
        number[labels[tuple(ijk)]] = int(row.cluster_id)
    dset = Dataset(json.loads(Path(dataset_file).read_text()), target="mni152_2mm")
    counts = {}
    for row in dset.coordinates.itertuples():
        ijk = np.rint(inverse @ [row.x, row.y, row.z, 1])[:3].astype(int)
        cluster = number.get(labels[tuple(ijk)])
        if cluster:
            counts[(row.id, cluster)] = counts.get((row.id, cluster), 0) + 1
    return counts


def test_contributions_focuscounter_and_jackknife(ale_run, tmp_path):
    out, _, source = ale_run
    table = cluster_table(nib.load(out["thresholded"]))
    counter = write_contributions(dataset_file=source, map_file=out["thresholded"],
                                  output_file=tmp_path / "f.tsv", method="focuscounter")["table"]
    expected = _focus_counts(source, out["thresholded"], table)
    for row in counter.itertuples(index=False):
        for k in range(1, len(counter.columns)):
            assert getattr(row, f"cluster_{k}") == expected.get((row.id, k), 0), (row.id, k)
    jack = write_contributions(dataset_file=source, map_file=out["thresholded"],
                               output_file=tmp_path / "j.tsv", method="jackknife")["table"]
    assert list(jack["id"]) == list(counter["id"])
    assert json.loads((tmp_path / "j.json").read_text())["Method"] == "Jackknife"
    # Independent reference for two experiments and every cluster: the mean over the
    # cluster's voxels of 1 - ALE(without the experiment) / ALE(all), from two separate
    # NiMARE fits (the jackknife's definition).
    from nimare.meta.cbma.ale import ALE
    from scipy import ndimage

    dset = load_dataset(source)
    full = ALE(null_method="approximate").fit(dset).get_map("stat").get_fdata()
    img = nib.load(out["thresholded"])
    labels, _ = ndimage.label(np.asarray(img.dataobj) > 0)
    inverse = np.linalg.inv(img.affine)
    for left_out in list(jack["id"])[:2]:
        rest = dset.slice([i for i in dset.ids if i != left_out])
        without = ALE(null_method="approximate").fit(rest).get_map("stat").get_fdata()
        for row in table[table["size_voxels"].notna()].itertuples():
            ijk = np.rint(inverse @ [row.x, row.y, row.z, 1])[:3].astype(int)
            voxels = labels == labels[tuple(ijk)]
            expected = np.mean(1 - without[voxels] / full[voxels])
            got = float(jack.loc[jack["id"] == left_out, f"cluster_{row.cluster_id}"].iloc[0])
            np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_real_sleuth_set_equals_nimare_called_directly(tmp_path):
    """A real Sleuth file (the shipped mimicry set: 48 Neurosynth studies): mirrorflow's
    ALE and z maps equal NiMARE's own (convert_sleuth_to_dataset, ALE with the Turkeltaub
    kernel) to float tolerance, and with NiMARE's own Monte Carlo draw (the same seed)
    mirrorflow's null gives exactly FWECorrector's corrected maps and thresholded map."""
    from nimare.correct import FWECorrector
    from nimare.io import convert_sleuth_to_dataset
    from nimare.meta.cbma.ale import ALE

    from mirrorflow.meta import null as engine
    from mirrorflow.meta.ale import CLUSTER_LOGP_KEY
    from mirrorflow.meta.inputs import write_category

    sleuth = REPO / "resources" / "meta" / "mimicry.txt"
    normalised = tmp_path / "mimicry.json"
    write_category(label="mimicry", spec={"format": "sleuth", "path": str(sleuth)},
                   source=sleuth, output_file=normalised, summary_file=tmp_path / "s.json",
                   assumed_sample_size=20)
    run_ale(dataset_file=normalised, output_dir=tmp_path / "ours", label="mimicry",
            voxel_thresh=0.001, alpha=0.05, n_iters=40, seed=7)
    dset = convert_sleuth_to_dataset(str(sleuth), target="mni152_2mm")
    result = ALE(null_method="approximate", random_state=7).fit(dset)
    folder = tmp_path / "ours"
    for key in ("stat", "z"):
        mine = nib.load(folder / f"meta-mimicry_{key}.nii.gz").get_fdata()
        theirs = result.get_map(key).get_fdata()
        np.testing.assert_allclose(mine, theirs, rtol=1e-6, atol=1e-10)

    # 25 iterations (NiMARE's take 0.18 s each): a cluster has p < 0.05 when at most one
    # null maximum reaches its own (1/25 = 0.04, 2/25 = 0.08), as with 40 (2/40 = 0.05).
    corrected = FWECorrector(method="montecarlo", voxel_thresh=0.001, n_iters=25,
                             n_cores=1).transform(result.copy())
    plan = engine.build_plan(result.estimator, voxel_thresh=0.001)
    maxima = engine.null_maxima(plan, engine.nimare_draw(result.estimator, plan, 25))
    null = np.stack([maxima["voxel"], maxima["size"], maxima["mass"]], axis=1)
    ours = engine.correct_fwe(result.copy(), null, voxel_thresh=0.001)
    fwe = sorted(k for k in corrected.maps if "corr-FWE" in k)
    assert len(fwe) == 6 and fwe == sorted(k for k in ours.maps if "corr-FWE" in k)
    for key in fwe:
        np.testing.assert_array_equal(ours.maps[key], corrected.maps[key], err_msg=key)
    z = corrected.get_map("z", return_type="array")
    logp = corrected.get_map(CLUSTER_LOGP_KEY, return_type="array")
    assert np.count_nonzero(logp > -np.log10(0.05)) > 100  # real convergence survives
    np.testing.assert_array_equal(
        np.asarray(threshold_fwe(ours, alpha=0.05).dataobj)[np.asarray(
            ours.masker.mask_img.dataobj).astype(bool)],
        np.where(logp > -np.log10(0.05), z, 0).astype(np.float32),
    )


def test_voxel_level_fwe_option(ale_run, tmp_path):
    """level voxel: z kept exactly where NiMARE's voxel-level FWE -log10 p exceeds
    -log10(alpha); a subset of the cluster-level map here (same seed, same null)."""
    from mirrorflow.meta.ale import VOXEL_LOGP_KEY

    out, _, source = ale_run
    voxel = run_ale(dataset_file=source, output_dir=tmp_path, label="mimicry",
                    voxel_thresh=0.001, alpha=0.05, n_iters=50, seed=1,
                    level="voxel")
    z = nib.load(tmp_path / "meta-mimicry_z.nii.gz").get_fdata()
    logp = nib.load(tmp_path / f"meta-mimicry_{VOXEL_LOGP_KEY}.nii.gz").get_fdata()
    got = nib.load(voxel["thresholded"]).get_fdata()
    np.testing.assert_allclose(got, np.where(logp > -np.log10(0.05), z, 0), rtol=1e-6)
    cluster = nib.load(out["thresholded"]).get_fdata()
    assert 0 < np.count_nonzero(got) < np.count_nonzero(cluster)
    assert json.loads(voxel["sidecar"].read_text())["Level"] == "voxel"


def test_focus_counts_equal_nimare_focuscounter(ale_run):
    """The vectorised FocusCounter equals NiMARE's FocusCounter, cluster by cluster."""
    from nimare.diagnostics import FocusCounter
    from nimare.meta.cbma.ale import ALE

    from mirrorflow.meta.tables import focus_counts

    out, _, source = ale_run
    img = nib.load(out["thresholded"])
    result = ALE(null_method="approximate").fit(load_dataset(source))
    result.maps["z_desc-thresholded"] = np.ravel(result.masker.transform(img)).astype(np.float32)
    result = FocusCounter(target_image="z_desc-thresholded", target_threshold=0.0).transform(
        result)
    theirs = result.tables["z_desc-thresholded_diag-FocusCounter_tab-counts_tail-positive"]
    ours = focus_counts(result.estimator.inputs_["coordinates"],
                        list(theirs["id"]), img)
    assert len(ours.columns) == len(theirs.columns) >= 3  # id + at least 2 clusters
    np.testing.assert_array_equal(ours.iloc[:, 1:].to_numpy(int),
                                  theirs.iloc[:, 1:].to_numpy(int))
    assert ours.iloc[:, 1:].to_numpy().sum() > 0
