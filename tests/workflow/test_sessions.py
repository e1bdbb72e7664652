"""Raw BIDS with sessions through the real workflow: a T1w per session (preproc.t1w:
session) and a first-level model per session combined by fixed effects
(firstlevel.sessions: each).

One participant scanned twice, each time with its own T1w: the seeded small study's
sub-01 and sub-02 (two heads, each an affine transform of the template apart) as sessions 1
and 2 of sub-01, in a tree of links. Each session's run must be registered to its own
session's T1w; the planted task effect must come out of the fixed-effects map.
"""

import json
from collections import Counter

import nibabel as nib
import numpy as np
import pytest
from nilearn.image import resample_to_img

from .conftest import REDUCED, snakemake
from .test_fmriprep_mode import _jobs

pytestmark = pytest.mark.e2e

SPACE = "space-MNI152NLin2009aSym_res-4"


def _two_sessions(study, bids):
    """``study``'s sub-01 and sub-02 as sessions 1 and 2 of sub-01 (links)."""
    bids.mkdir(parents=True)
    for name in ("dataset_description.json", "task-imitation_bold.json"):
        if (study / name).exists():
            (bids / name).symlink_to(study / name)
    (bids / "participants.tsv").write_text("participant_id\teq\taccuracy\nsub-01\t40\t0.7\n")
    for ses, source in (("1", "01"), ("2", "02")):
        for path in sorted((study / f"sub-{source}").rglob("*_*")):
            folder = bids / "sub-01" / f"ses-{ses}" / path.parent.name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name.replace(f"sub-{source}_", f"sub-01_ses-{ses}_")).symlink_to(path)


def test_t1w_and_first_level_model_per_session(small_study, tmp_path):
    bids, out = tmp_path / "bids", tmp_path / "results"
    _two_sessions(small_study["bids"], bids)
    config = tmp_path / "sessions.yaml"
    config.write_text(f"study: {{source: bids, bids_dir: '{bids}'}}\n"
                      "preproc: {t1w: session}\nfirstlevel: {sessions: each}\n")
    zmap = (out / "firstlevel/sub-01" /
            f"sub-01_task-imitation_{SPACE}_contrast-imitate_stat-z_statmap.nii.gz")
    result = snakemake(zmap, "--cores", "2", "--configfile", REDUCED, config, "--config",
                       f"output_dir={out}")
    jobs = Counter(_jobs(result.stdout + result.stderr))
    assert (jobs["preproc_anat"], jobs["preproc_bold"], jobs["firstlevel_glm"],
            jobs["firstlevel_fixed"]) == (2, 2, 2, 1)
    for ses in ("1", "2"):
        anat = out / f"preproc/sub-01/ses-{ses}/anat"
        xfm = anat / f"sub-01_ses-{ses}_from-T1w_to-MNI152NLin2009aSym_mode-image_xfm.nii.gz"
        assert xfm.exists()
        # The session's run was registered through its own session's T1w, not the other's.
        bold = json.loads((out / f"preproc/sub-01/ses-{ses}/func/sub-01_ses-{ses}_task-"
                           f"imitation_run-1_{SPACE}_desc-preproc_bold.json").read_text())
        inputs = set(bold["Provenance"]["InputChecksums"])
        assert str(xfm) in inputs
        assert not [p for p in inputs if "/anat/" in p and f"/ses-{ses}/" not in p]
    # The planted task region stands out in the fixed effects of the two sessions.
    img = nib.load(zmap)
    z = img.get_fdata()
    task = resample_to_img(nib.load(next(small_study["truth"].glob("*desc-task_mask.nii.gz"))),
                           img, interpolation="nearest", force_resample=True,
                           copy_header=True).get_fdata() > 0
    brain = z != 0
    assert z[task & brain].mean() >= 3 and abs(z[~task & brain].mean()) < 0.5
    sidecar = json.loads(zmap.with_name(zmap.name.replace(".nii.gz", ".json")).read_text())
    assert "combined by fixed effects" in sidecar["Description"]
