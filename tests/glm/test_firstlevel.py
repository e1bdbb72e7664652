import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.glm.firstlevel import fit_first_level

TR, N = 2.0, 100
CONTRASTS = {"imitate": "imitate", "mismatchGtImitate": "mismatch - imitate"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One 6x6x6 run: voxels x<2 respond to imitate (2%), x>=4 to mismatch (2%)."""
    from nilearn.glm.first_level import compute_regressor

    root = tmp_path_factory.mktemp("glm")
    events = pd.DataFrame(
        {"onset": [10.0, 50, 90, 130, 170], "duration": 16.0,
         "trial_type": ["imitate", "mismatch", "imitate", "mismatch", "imitate"]}
    )
    frame_times = np.arange(N) * TR
    reg = {}
    for kind in ("imitate", "mismatch"):
        rows = events[events.trial_type == kind]
        cond = np.vstack([rows.onset, rows.duration, np.ones(len(rows))])
        reg[kind] = compute_regressor(cond, "glover", frame_times)[0][:, 0]
    rng = np.random.default_rng(0)
    data = 100 + rng.normal(0, 1, (6, 6, 6, N))
    data[:2] += 2 * reg["imitate"]
    data[4:] += 2 * reg["mismatch"]
    img = nib.Nifti1Image(data.astype(np.float32), np.diag([3.0, 3, 3, 1]))
    img.header.set_zooms((3.0, 3.0, 3.0, TR))
    paths = {"bold": root / "sub-01_task-x_run-1_bold.nii.gz",
             "events": root / "sub-01_task-x_run-1_events.tsv",
             "confounds": root / "confounds.tsv", "mask": root / "mask.nii.gz"}
    nib.save(img, paths["bold"])
    paths["bold"].with_name("sub-01_task-x_run-1_bold.json").write_text(
        json.dumps({"RepetitionTime": TR}))
    events.to_csv(paths["events"], sep="\t", index=False)
    pd.DataFrame({"trans_x": rng.normal(0, 0.1, N)}).to_csv(paths["confounds"], sep="\t", index=False)
    nib.save(nib.Nifti1Image(np.ones((6, 6, 6), np.uint8), img.affine), paths["mask"])
    return paths


def _fit(run, **kwargs):
    options = dict(
        bold_files=[run["bold"]], events_files=[run["events"]],
        confounds_files=[run["confounds"]], mask_files=[run["mask"]],
        conditions=["imitate", "mismatch"], contrasts=CONTRASTS, confound_columns=["trans_x"],
    )
    return fit_first_level(**{**options, **kwargs})


def test_recovers_planted_responses(run):
    maps, designs, methods, _ = _fit(run)
    z_imitate = maps["imitate"]["z"].get_fdata()
    z_diff = maps["mismatchGtImitate"]["z"].get_fdata()
    effect = maps["imitate"]["effect"].get_fdata()
    # A 2-unit response in unit noise over 100 volumes gives z around 15; null voxels ~N(0,1).
    assert z_imitate[:2].min() > 6
    assert np.abs(z_imitate[2:4]).max() < 4.5
    assert z_diff[4:].min() > 4 and z_diff[:2].max() < -4
    # Effects are in data units: the planted amplitude 2 within sampling error.
    assert effect[:2].mean() == pytest.approx(2.0, abs=0.2)
    assert "trans_x" in designs[0].columns
    assert "nilearn" in methods


def test_equals_nilearn_called_directly(run):
    from nilearn.glm.first_level import FirstLevelModel

    maps, *_ = _fit(run)
    model = FirstLevelModel(t_r=TR, hrf_model="glover", drift_model="cosine", high_pass=0.008,
                            noise_model="ar1", mask_img=nib.load(run["mask"]))
    model.fit(str(run["bold"]), events=pd.read_csv(run["events"], sep="\t"),
              confounds=pd.read_csv(run["confounds"], sep="\t"))
    reference = model.compute_contrast("mismatch - imitate", output_type="z_score")
    np.testing.assert_allclose(
        maps["mismatchGtImitate"]["z"].get_fdata(), reference.get_fdata(), rtol=1e-6, atol=1e-6
    )


def test_unknown_condition_in_contrast(run):
    with pytest.raises(ConfigError, match=r"uses unknown condition\(s\) \['smile'\]"):
        _fit(run, contrasts={"bad": "smile - imitate"})


def test_missing_confound_column(run):
    with pytest.raises(InputDataError, match=r"confound column\(s\) \['rot_x'\] not found"):
        _fit(run, confound_columns=["rot_x"])


def test_unknown_trial_type_in_events(run, tmp_path):
    events = pd.read_csv(run["events"], sep="\t")
    events.loc[0, "trial_type"] = "yawn"
    bad = tmp_path / "events.tsv"
    events.to_csv(bad, sep="\t", index=False)
    with pytest.raises(InputDataError, match=r"events.tsv: unknown trial types \['yawn'\]"):
        _fit(run, events_files=[bad])


def test_modulation_column_scales_events_only_when_configured(run, tmp_path):
    """nilearn reads a ``modulation`` column as each event's amplitude: with
    firstlevel.modulation the design is nilearn's own for the modulated events (and the
    methods say so); without it the column is refused, naming the file."""
    from nilearn.glm.first_level import make_first_level_design_matrix

    events = pd.read_csv(run["events"], sep="\t").assign(modulation=[1.0, 0.5, 2.0, 1.5, 0.25])
    modulated = tmp_path / "sub-01_task-x_run-1_events.tsv"
    events.to_csv(modulated, sep="\t", index=False)
    with pytest.raises(InputDataError, match=rf"{modulated}: column 'modulation' would set"):
        _fit(run, events_files=[modulated])
    _, designs, methods, _ = _fit(run, events_files=[modulated], modulation=True)
    reference = make_first_level_design_matrix(
        np.arange(N) * TR, events, hrf_model="glover", drift_model="cosine", high_pass=0.008)
    for condition in ("imitate", "mismatch"):
        np.testing.assert_allclose(designs[0][condition], reference[condition], atol=1e-10)
    _, plain, plain_methods, _ = _fit(run)
    assert not np.allclose(designs[0]["imitate"], plain[0]["imitate"])
    assert "event amplitudes: the events' modulation column" in methods
    assert "event amplitudes: 1" in plain_methods
    with pytest.raises(InputDataError, match="firstlevel.modulation is true but the file has no"):
        _fit(run, modulation=True)


def test_run_without_a_condition_of_a_contrast(run, tmp_path):
    """nilearn's own error for a run without a contrast's condition names neither; the
    check before the fit names the file and the condition."""
    from nilearn.glm import expression_to_contrast_vector

    events = pd.read_csv(run["events"], sep="\t")
    only_imitate = tmp_path / "events.tsv"
    events[events.trial_type == "imitate"].to_csv(only_imitate, sep="\t", index=False)
    with pytest.raises(ValueError, match="is not valid"):
        expression_to_contrast_vector("mismatch - imitate", ["imitate", "constant"])
    with pytest.raises(InputDataError, match=rf"{only_imitate}: no events of condition\(s\) "
                                             r"\['mismatch'\]"):
        _fit(run, events_files=[only_imitate])
    maps, *_ = _fit(run, events_files=[only_imitate], contrasts={"imitate": "imitate"})
    assert set(maps) == {"imitate"}
