"""The simulated study written as fMRIPrep derivatives (``layout="fmriprep"``)."""

import dataclasses
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.bids import sidecar_path
from mirrorflow.io.templates import TEMPLATE_SPACE, template_grid, world_coords
from mirrorflow.simulate.study import PLANTED_REGIONS, SimulationParams, simulate_study

MOTION = ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
EXPECTED_COLUMNS = [
    "global_signal", "csf", "white_matter", "dvars", "std_dvars", "framewise_displacement",
    *MOTION, *(f"{name}_derivative1" for name in MOTION),
    "a_comp_cor_00", "a_comp_cor_01", "a_comp_cor_02", "a_comp_cor_03", "a_comp_cor_04",
]
# Columns that difference consecutive volumes, so have no value in the first row.
DIFFERENCED = ["dvars", "std_dvars", "framewise_displacement",
               *(f"{name}_derivative1" for name in MOTION)]


@pytest.fixture(scope="module")
def fmriprep_study(small_study, tmp_path_factory):
    """The small study's parameters (same seed), written in the fMRIPrep layout."""
    root = tmp_path_factory.mktemp("fmriprep_study")
    params = dataclasses.replace(small_study["params"], layout="fmriprep")
    result = simulate_study(root / "bids", root / "truth", params, fmriprep_dir=root / "fmriprep")
    return {"bids": root / "bids", "truth": root / "truth", "fmriprep": root / "fmriprep",
            "params": params, "result": result}


def _run_files(study, sub="01", run=1):
    params = study["params"]
    func = study["fmriprep"] / f"sub-{sub}" / "func"
    prefix = f"sub-{sub}_task-{params.task}_run-{run}"
    std = f"{prefix}_space-{TEMPLATE_SPACE}_res-{params.bold_voxel_mm:g}"
    return {
        "bold": func / f"{std}_desc-preproc_bold.nii.gz",
        "mask": func / f"{std}_desc-brain_mask.nii.gz",
        "boldref": func / f"{std}_boldref.nii.gz",
        "confounds": func / f"{prefix}_desc-confounds_timeseries.tsv",
        "events": study["bids"] / f"sub-{sub}" / "func" / f"{prefix}_events.tsv",
    }


def test_fmriprep_layout_writes_the_expected_files(fmriprep_study):
    bids, params = fmriprep_study["bids"], fmriprep_study["params"]
    assert fmriprep_study["result"]["layout"] == "fmriprep"
    for sub in range(1, params.n_subjects + 1):
        files = _run_files(fmriprep_study, f"{sub:02d}")
        for path in files.values():
            assert path.is_file(), path
        for key in ("bold", "mask", "boldref", "confounds"):
            assert sidecar_path(files[key]).is_file()
    # The raw dataset keeps everything but the images.
    for name in ("dataset_description.json", "participants.tsv", "participants.json",
                 f"task-{params.task}_bold.json"):
        assert (bids / name).is_file()
    assert not list(bids.rglob("*.nii.gz"))
    description = json.loads((fmriprep_study["fmriprep"] / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    generated = description["GeneratedBy"][0]
    assert "mirrorflow" in generated["Name"] and "not produced by fMRIPrep" in generated[
        "Description"]
    sidecar = json.loads(sidecar_path(_run_files(fmriprep_study)["bold"]).read_text())
    assert sidecar["RepetitionTime"] == params.tr and sidecar["TaskName"] == params.task
    assert sidecar["SkullStripped"] is False and "simulated" in sidecar["Description"]


def test_preproc_bold_is_on_the_template_grid(fmriprep_study):
    params, files = fmriprep_study["params"], _run_files(fmriprep_study)
    grid = template_grid(params.bold_voxel_mm)
    bold, mask, boldref = (nib.load(files[key]) for key in ("bold", "mask", "boldref"))
    assert bold.shape == grid.shape[:3] + (params.n_volumes,)
    assert bold.get_data_dtype() in (np.int16, np.float32)
    assert bold.header.get_zooms()[3] == pytest.approx(params.tr)
    for img in (bold, mask, boldref):
        assert img.shape[:3] == grid.shape[:3]
        np.testing.assert_allclose(img.affine, grid.affine, atol=1e-6)
    assert mask.get_data_dtype() == np.uint8
    brain = np.asarray(mask.dataobj)
    assert set(np.unique(brain)) == {0, 1} and 20_000 < brain.sum() < 40_000
    np.testing.assert_allclose(boldref.get_fdata(), bold.get_fdata().mean(axis=-1), atol=1e-2)


def test_confounds_have_fmriprep_columns_and_na(fmriprep_study):
    params, files = fmriprep_study["params"], _run_files(fmriprep_study)
    raw = pd.read_csv(files["confounds"], sep="\t", dtype=str, keep_default_na=False)
    assert sorted(raw.columns) == sorted(EXPECTED_COLUMNS)
    assert len(raw) == params.n_volumes
    assert (raw.iloc[0][DIFFERENCED] == "n/a").all()
    assert not (raw.drop(index=0) == "n/a").any().any()
    assert not (raw.iloc[0].drop(DIFFERENCED) == "n/a").any()
    table = pd.read_csv(files["confounds"], sep="\t", na_values="n/a")
    assert table.drop(index=0).notna().all().all()
    meta = json.loads(sidecar_path(files["confounds"]).read_text())
    assert meta["a_comp_cor_00"]["Method"] == "aCompCor"
    # aCompCor: orthonormal, zero-mean components; std_dvars is about 1 for this noise.
    comps = table[[f"a_comp_cor_{i:02d}" for i in range(5)]].to_numpy()
    np.testing.assert_allclose(comps.T @ comps, np.eye(5), atol=1e-5)
    np.testing.assert_allclose(comps.mean(axis=0), 0, atol=1e-6)
    assert 0.8 < table["std_dvars"].median() < 1.3


def test_motion_and_fd_follow_the_true_motion(fmriprep_study):
    files = _run_files(fmriprep_study)
    table = pd.read_csv(files["confounds"], sep="\t", na_values="n/a")
    truth = pd.read_csv(
        fmriprep_study["truth"] / "sub-01_run-1_desc-truemotion_timeseries.tsv", sep="\t"
    )  # translations in mm, rotations in degrees
    np.testing.assert_allclose(table[MOTION[:3]], truth[MOTION[:3]], atol=1e-5)
    np.testing.assert_allclose(table[MOTION[3:]], np.deg2rad(truth[MOTION[3:]]), atol=1e-6)
    step = truth.diff().abs()
    fd = step[MOTION[:3]].sum(axis=1) + 50.0 * np.deg2rad(step[MOTION[3:]]).sum(axis=1)
    assert np.isnan(table["framewise_displacement"].iloc[0])
    np.testing.assert_allclose(table["framewise_displacement"].iloc[1:], fd.iloc[1:], atol=1e-4)
    assert table["framewise_displacement"].iloc[1:].gt(0).all()
    np.testing.assert_allclose(table["rot_y_derivative1"].iloc[1:],
                               np.diff(table["rot_y"]), atol=1e-7)


def test_dvars_is_the_rms_of_the_scaled_difference(fmriprep_study):
    files = _run_files(fmriprep_study)
    table = pd.read_csv(files["confounds"], sep="\t", na_values="n/a")
    brain = np.asarray(nib.load(files["mask"]).dataobj) > 0
    series = nib.load(files["bold"]).get_fdata()[brain]
    series *= 1000.0 / np.median(series)
    dvars = np.sqrt((np.diff(series, axis=1) ** 2).mean(axis=0))
    np.testing.assert_allclose(table["dvars"].iloc[1:], dvars, rtol=1e-5)
    np.testing.assert_allclose(table["global_signal"],
                               nib.load(files["bold"]).get_fdata()[brain].mean(axis=0),
                               rtol=1e-6)


def test_draws_match_the_raw_layout(small_study, fmriprep_study):
    """Same seed, same behaviour, betas, events and motion: only the images differ."""
    for rel in ["participants.tsv", "sub-03/func/sub-03_task-imitation_run-1_events.tsv"]:
        raw, fmriprep = small_study["bids"] / rel, fmriprep_study["bids"] / rel
        assert raw.read_bytes() == fmriprep.read_bytes()
    truth_raw, truth_fp = small_study["truth"], fmriprep_study["truth"]
    names = sorted(p.name for p in truth_raw.iterdir())
    assert names == sorted(p.name for p in truth_fp.iterdir())
    for name in names:
        if name == "effects.json":  # records the layout among the parameters
            continue
        if name.endswith(".nii.gz"):
            assert np.array_equal(np.asarray(nib.load(truth_raw / name).dataobj),
                                  np.asarray(nib.load(truth_fp / name).dataobj))
        else:
            assert (truth_raw / name).read_bytes() == (truth_fp / name).read_bytes(), name


def test_draws_match_across_layouts_in_later_runs(tmp_path):
    """Run 2's events and motion come after run 1's noise in the stream: still identical."""
    params = SimulationParams(n_subjects=2, n_runs=2, n_blocks=2, bold_voxel_mm=8.0, seed=11)
    simulate_study(tmp_path / "raw", tmp_path / "raw_truth", params)
    simulate_study(tmp_path / "bids", tmp_path / "truth",
                   dataclasses.replace(params, layout="fmriprep"), fmriprep_dir=tmp_path / "fp")
    for sub in ("01", "02"):
        rel = f"sub-{sub}/func/sub-{sub}_task-imitation_run-2_events.tsv"
        assert (tmp_path / "raw" / rel).read_bytes() == (tmp_path / "bids" / rel).read_bytes()
        rel = f"sub-{sub}_run-2_desc-truemotion_timeseries.tsv"
        raw, fmriprep = tmp_path / "raw_truth" / rel, tmp_path / "truth" / rel
        assert raw.read_bytes() == fmriprep.read_bytes()
    assert (tmp_path / "raw_truth" / "subjects.tsv").read_bytes() == (
        tmp_path / "truth" / "subjects.tsv").read_bytes()


def test_first_level_glm_finds_the_planted_signal(fmriprep_study):
    """A GLM on one run (raw events, derivative mask) sees the occipital task effect, and
    nothing far from every planted region."""
    from nilearn.glm.first_level import FirstLevelModel

    params, files = fmriprep_study["params"], _run_files(fmriprep_study)
    events = pd.read_csv(files["events"], sep="\t")
    model = FirstLevelModel(t_r=params.tr, mask_img=str(files["mask"]), smoothing_fwhm=6.0,
                            minimize_memory=True)
    z_img = model.fit(str(files["bold"]), events=events).compute_contrast(
        "imitate", output_type="z_score")
    z = z_img.get_fdata()
    coords = world_coords(z.shape, z_img.affine)
    distance = np.min([np.linalg.norm(coords - np.asarray(centre), axis=-1) - radius
                       for centre, radius in PLANTED_REGIONS.values()], axis=0)
    brain = np.asarray(nib.load(files["mask"]).dataobj) > 0
    # Occipital regions carry only the task effect (1.5% +- 0.25 subject SD); 4 mm inside.
    occipital = np.zeros(z.shape, dtype=bool)
    for name in ("occipitalL", "occipitalR"):
        centre, radius = PLANTED_REGIONS[name]
        occipital |= np.linalg.norm(coords - np.asarray(centre), axis=-1) <= radius - 4
    assert z[occipital].mean() > 3.0
    far = brain & (distance > 20)
    assert far.sum() > 10_000
    assert abs(z[far].mean()) < 0.2
    assert np.median(np.abs(z[far])) < 1.2


def test_bad_layout_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"must be one of \['raw', 'fmriprep'\]. 'preproc'"):
        SimulationParams(layout="preproc")
    with pytest.raises(ConfigError, match="needs an fmriprep_dir"):
        simulate_study(tmp_path / "bids", tmp_path / "truth", SimulationParams(layout="fmriprep"))
    with pytest.raises(ConfigError, match="layout is 'raw'"):
        simulate_study(tmp_path / "bids", tmp_path / "truth", SimulationParams(),
                       fmriprep_dir=tmp_path / "fp")
    with pytest.raises(ConfigError, match="same folder"):
        simulate_study(tmp_path / "bids", tmp_path / "truth", SimulationParams(layout="fmriprep"),
                       fmriprep_dir=tmp_path / "bids")
    assert not (tmp_path / "bids").exists()
