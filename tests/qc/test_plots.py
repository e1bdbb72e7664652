"""QC figures (mirrorflow.qc.plots): valid, non-blank PNGs that show what they should."""

from __future__ import annotations

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest

from mirrorflow.exceptions import InputDataError
from mirrorflow.qc.plots import _mean_image, plot_carpet, plot_motion, plot_registration

from .conftest import N_VOLUMES, SHAPE, confounds_table, save_image, write_confounds

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_png(path, *, min_height=300):
    """Pixels of a PNG, after checking it is a real, non-blank, 1200 px wide image."""
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = mpimg.imread(path)
    assert pixels.shape[1] == 1200 and min_height <= pixels.shape[0] <= 1200
    assert pixels[..., :3].std() > 0
    return pixels[..., :3]


def _only_outputs(folder, names):
    """No temporary files left beside the outputs."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


@pytest.fixture
def no_open_figures():
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before


@pytest.fixture
def template(tmp_path):
    """An ellipsoid 'brain' (bright core, darker rim) and its mask, on the run grid."""
    ijk = np.indices(SHAPE).astype(float)
    centre = (np.array(SHAPE) - 1) / 2
    radius = np.sqrt(sum(((ijk[a] - centre[a]) / (0.42 * SHAPE[a])) ** 2 for a in range(3)))
    image = np.where(radius < 0.6, 1.0, np.where(radius < 1.0, 0.6, 0.0)).astype(np.float32)
    mask = (radius < 1.0).astype(np.uint8)
    return {
        "image": image,
        "mask": mask,
        "template_file": save_image(tmp_path / "tpl_T1w.nii.gz", image),
        "mask_file": save_image(tmp_path / "tpl_mask.nii.gz", mask),
    }


def test_plot_motion(tmp_path, run_files, no_open_figures):
    out = tmp_path / "figs" / "motion.png"
    returned = plot_motion(run_files["confounds_file"], out, title="sub-01 run-1")
    assert returned == out
    pixels = _read_png(out)
    assert pixels.shape[0] == 700
    other = plot_motion(run_files["confounds_file"], tmp_path / "figs" / "other.png",
                        fd_threshold=0.05, title="sub-01 run-1")
    assert not np.array_equal(pixels, _read_png(other))  # the threshold line moved
    _only_outputs(out.parent, ["motion.png", "other.png"])


def test_plot_motion_missing_column(tmp_path):
    path = write_confounds(tmp_path / "c.tsv", confounds_table().drop(columns="rot_x"))
    with pytest.raises(InputDataError, match=r"c.tsv: missing confound column\(s\) \['rot_x'\]"):
        plot_motion(path, tmp_path / "motion.png")
    assert not (tmp_path / "motion.png").exists()


def test_plot_carpet(tmp_path, run_files, no_open_figures):
    out = tmp_path / "figs" / "carpet.png"
    returned = plot_carpet(run_files["bold_file"], run_files["mask_file"],
                           run_files["confounds_file"], out, title="sub-01 run-1")
    assert returned == out
    assert _read_png(out).shape[0] == 800
    _only_outputs(out.parent, ["carpet.png"])


def test_plot_carpet_without_std_dvars(tmp_path, run_files, no_open_figures):
    path = write_confounds(tmp_path / "c.tsv", confounds_table().drop(columns="std_dvars"))
    out = plot_carpet(run_files["bold_file"], run_files["mask_file"], path,
                      tmp_path / "carpet.png")
    _read_png(out)


def test_plot_carpet_checks_volumes(tmp_path, run_files):
    short = write_confounds(tmp_path / "short.tsv", confounds_table(N_VOLUMES - 1))
    with pytest.raises(InputDataError, match=r"has 40 volumes .*short.tsv has 39 rows"):
        plot_carpet(run_files["bold_file"], run_files["mask_file"], short,
                    tmp_path / "carpet.png")
    assert not (tmp_path / "carpet.png").exists()


def _red_pixels(pixels):
    return int(((pixels[..., 0] > 0.8) & (pixels[..., 1] < 0.3) & (pixels[..., 2] < 0.3)).sum())


def test_plot_registration_shows_misregistration(tmp_path, template, no_open_figures):
    rng = np.random.default_rng(2)
    noise = rng.normal(0, 5, (*SHAPE, N_VOLUMES))
    bold = save_image(tmp_path / "bold.nii.gz",
                      (100 * template["image"][..., None] + noise).astype(np.float32), tr=2.0)
    figs = tmp_path / "figs"
    aligned = plot_registration(bold, template["template_file"], template["mask_file"],
                                figs / "aligned.png", title="sub-01 run-1")
    aligned_pixels = _read_png(aligned)
    assert _red_pixels(aligned_pixels) > 50  # the template outline is drawn

    # the same run against a template (image and mask) two voxels away
    moved = {
        key: save_image(tmp_path / f"moved_{key}.nii.gz", np.roll(template[key], 2, axis=1))
        for key in ("image", "mask")
    }
    shifted = plot_registration(bold, moved["image"], moved["mask"], figs / "shifted.png",
                                title="sub-01 run-1")
    shifted_pixels = _read_png(shifted)
    assert aligned_pixels.shape == shifted_pixels.shape
    changed = np.abs(aligned_pixels - shifted_pixels).max(axis=-1) > 0.1
    assert changed.mean() > 0.002
    _only_outputs(figs, ["aligned.png", "shifted.png"])


def test_plot_registration_takes_a_3d_reference(tmp_path, template, no_open_figures):
    rng = np.random.default_rng(3)
    series = (100 * template["image"][..., None]
              + rng.normal(0, 5, (*SHAPE, N_VOLUMES))).astype(np.float32)
    bold = save_image(tmp_path / "bold.nii.gz", series, tr=2.0)
    boldref = save_image(tmp_path / "boldref.nii.gz", series.mean(axis=3))
    # a 4D series is shown as its temporal mean, a 3D image as it is
    np.testing.assert_allclose(_mean_image(bold).get_fdata(), series.mean(axis=3), atol=1e-4)
    np.testing.assert_array_equal(_mean_image(boldref).get_fdata(), series.mean(axis=3))
    out = plot_registration(boldref, template["template_file"], template["mask_file"],
                            tmp_path / "ref.png")
    assert _red_pixels(_read_png(out)) > 50


def test_plot_registration_errors(tmp_path, template):
    bold = save_image(tmp_path / "boldref.nii.gz", 100 * template["image"])
    empty = save_image(tmp_path / "empty_mask.nii.gz", np.zeros(SHAPE, np.uint8))
    with pytest.raises(InputDataError, match="empty_mask.nii.gz: the template brain mask is"):
        plot_registration(bold, template["template_file"], empty, tmp_path / "r.png")
    with pytest.raises(InputDataError, match="absent.nii.gz: file does not exist"):
        plot_registration(tmp_path / "absent.nii.gz", template["template_file"],
                          template["mask_file"], tmp_path / "r.png")
    as_4d = save_image(tmp_path / "tpl4d.nii.gz", template["image"][..., None].repeat(2, 3))
    with pytest.raises(InputDataError, match="tpl4d.nii.gz: expected a 3D template image"):
        plot_registration(bold, as_4d, template["mask_file"], tmp_path / "r.png")
    truncated = tmp_path / "truncated_T1w.nii.gz"
    data = template["template_file"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputDataError, match="truncated_T1w.nii.gz: not a readable NIfTI"):
        plot_registration(bold, truncated, template["mask_file"], tmp_path / "r.png")
    assert not (tmp_path / "r.png").exists()
