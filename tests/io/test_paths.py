"""The study's file name templates: BIDS-Derivatives names, sessions where they apply."""

from mirrorflow.io.paths import StudyPaths

SPACE = "MNI152NLin2009aSym"


def test_run_files_without_sessions():
    paths = StudyPaths("out", task="imitation", space=SPACE, res="2")
    assert paths.run_id == "sub-{sub}_task-imitation_run-{run}"
    assert paths.preproc()["bold"] == (
        "out/preproc/sub-{sub}/func/sub-{sub}_task-imitation_run-{run}"
        f"_space-{SPACE}_res-2_desc-preproc_bold.nii.gz")
    assert paths.preproc()["confounds"] == (
        "out/preproc/sub-{sub}/func/sub-{sub}_task-imitation_run-{run}"
        "_desc-confounds_timeseries.tsv")
    assert paths.anat()["xfm"] == (
        f"out/preproc/sub-{{sub}}/anat/sub-{{sub}}_from-T1w_to-{SPACE}_mode-image_xfm.nii.gz")
    assert paths.raw("bids")["t1w"] == "bids/sub-{sub}/anat/sub-{sub}_T1w.nii.gz"


def test_sessions_name_runs_and_where_asked_the_t1w_and_the_model():
    paths = StudyPaths("out", task="t", space=SPACE, res="2", sessions=True)
    assert paths.run_id == "sub-{sub}_ses-{ses}_task-t_run-{run}"
    assert paths.raw("bids")["bold"] == (
        "bids/sub-{sub}/ses-{ses}/func/sub-{sub}_ses-{ses}_task-t_run-{run}_bold.nii.gz")
    # One T1w and one model per participant unless asked otherwise.
    assert paths.anat()["brain"] == "out/preproc/sub-{sub}/anat/sub-{sub}_desc-brain_T1w.nii.gz"
    assert paths.glm()["map"] == paths.firstlevel()["map"]
    each = StudyPaths("out", task="t", space=SPACE, res="2", sessions=True,
                      anat_sessions=True, model_sessions=True)
    assert each.anat_id == each.glm_id == "sub-{sub}_ses-{ses}"
    assert each.anat()["brain"] == (
        "out/preproc/sub-{sub}/ses-{ses}/anat/sub-{sub}_ses-{ses}_desc-brain_T1w.nii.gz")
    assert each.glm()["design"] == (
        "out/firstlevel/sub-{sub}/ses-{ses}/sub-{sub}_ses-{ses}_task-t_design.tsv")
    # What the group reads stays the participant's (the sessions' fixed effects).
    assert each.firstlevel()["mask"] == (
        f"out/firstlevel/sub-{{sub}}/sub-{{sub}}_task-t_space-{SPACE}_res-2_desc-brain_mask"
        ".nii.gz")


def test_group_files():
    paths = StudyPaths("out", task="t", space=SPACE, res="2")
    assert paths.group(stat="z", desc="thresholded") == (
        f"out/group/task-t_space-{SPACE}_res-2_contrast-{{contrast}}_model-{{model}}"
        "_stat-z_desc-thresholded_statmap.nii.gz")
    assert paths.group(shard="{shard}", suffix="null", extension=".npz", std=False,
                       folder="group/nulls") == (
        "out/group/nulls/task-t_contrast-{contrast}_model-{model}_shard-{shard}_null.npz")
    assert paths.group_figure("slices", contrast="c", model="m", desc="conjunction") == (
        f"out/group/figures/task-t_space-{SPACE}_res-2_contrast-c_model-m_stat-z"
        "_desc-conjunctionSlices_statmap.png")
