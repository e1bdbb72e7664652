"""Tiny synthetic runs for the QC tests: a 10x12x10 grid, 40 volumes, known FD and tSNR."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

SHAPE = (10, 12, 10)
N_VOLUMES = 40
TR = 2.0
#: 4 mm voxels with the grid centred on the origin, as in a coarse MNI grid.
AFFINE = np.array(
    [[4.0, 0, 0, -18.0], [0, 4.0, 0, -22.0], [0, 0, 4.0, -18.0], [0, 0, 0, 1.0]]
)
SIGNAL, NOISE = 100.0, 4.0  # tSNR inside the mask is exactly SIGNAL / NOISE


def box_mask(shape=SHAPE, *, lo=(2, 3, 2), hi=(8, 9, 8)) -> np.ndarray:
    mask = np.zeros(shape, dtype=bool)
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return mask


def standard_noise(shape, rng) -> np.ndarray:
    """Noise whose series has mean 0 and standard deviation 1 (ddof 0) in every voxel."""
    noise = rng.normal(size=shape)
    noise -= noise.mean(axis=-1, keepdims=True)
    return noise / noise.std(axis=-1, keepdims=True)


def save_image(path, data, *, affine=AFFINE, tr=None):
    img = nib.Nifti1Image(np.asarray(data), affine)
    if tr is not None:
        img.header.set_zooms((*img.header.get_zooms()[:3], tr))
    nib.save(img, path)
    return path


def confounds_table(n_volumes=N_VOLUMES, *, seed=0, fd=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    table = pd.DataFrame({f"trans_{a}": rng.normal(0, 0.2, n_volumes) for a in "xyz"})
    for axis in "xyz":
        table[f"rot_{axis}"] = rng.normal(0, 0.003, n_volumes)
    if fd is None:
        fd = np.abs(rng.normal(0.3, 0.2, n_volumes))
    table["framewise_displacement"] = fd
    table["dvars"] = rng.normal(20, 2, n_volumes)
    table["std_dvars"] = rng.normal(1.0, 0.1, n_volumes)
    table["a_comp_cor_00"] = rng.normal(0, 1, n_volumes)
    table.loc[0, ["framewise_displacement", "dvars", "std_dvars"]] = np.nan
    return table


def write_confounds(path, table: pd.DataFrame):
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


@pytest.fixture
def run_files(tmp_path):
    """One run: BOLD (SIGNAL + NOISE * unit noise inside the mask, noisier outside), its
    uint8 mask and confounds table."""
    rng = np.random.default_rng(1)
    mask = box_mask()
    noise = standard_noise((*SHAPE, N_VOLUMES), rng)
    sigma = np.where(mask, NOISE, 50.0)[..., None]
    bold = (SIGNAL + sigma * noise).astype(np.float32)
    table = confounds_table()
    return {
        "bold_file": save_image(tmp_path / "sub-01_run-1_bold.nii.gz", bold, tr=TR),
        "mask_file": save_image(tmp_path / "sub-01_run-1_mask.nii.gz", mask.astype(np.uint8)),
        "confounds_file": write_confounds(tmp_path / "sub-01_run-1_confounds.tsv", table),
        "table": table,
        "bold": bold,
        "mask": mask,
    }
