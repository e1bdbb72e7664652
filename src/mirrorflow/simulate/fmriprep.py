"""The simulated study written in the file layout of fMRIPrep derivatives.

:func:`mirrorflow.simulate.study.simulate_study` with ``layout="fmriprep"`` builds each run
directly on the template grid, without head motion, and hands it to :func:`write_fmriprep_run`,
which writes what fMRIPrep writes per run in a template space: the preprocessed series, its
brain mask, a reference volume and the confounds table with fMRIPrep's column names. This
imitates fMRIPrep's layout so that the workflow's ``fmriprep`` input mode can run on the
simulated study; nothing here runs or reproduces fMRIPrep's processing.

Confounds, computed from the simulated series and the true head motion:

* ``trans_*`` (mm), ``rot_*`` (radians) and their ``_derivative1`` (backward differences).
* ``framewise_displacement``: Power et al. (2012), the sum of absolute backward differences
  of the six parameters, rotations as arc length on a sphere of :data:`FD_RADIUS_MM`.
* ``dvars``: root mean square over brain voxels of the backward temporal difference, after
  scaling the series so that its median in the brain is 1000 (as nipype's ``ComputeDVARS``,
  which fMRIPrep uses, does by default). ``std_dvars`` divides it by the mean over voxels of
  its expected value under stationarity, ``sqrt(2 (1 - ar1)) * sd``, with ``sd`` the robust
  standard deviation (interquartile range / 1.349) and ``ar1`` the lag-1 autocorrelation of
  each voxel's series (the standardisation of Nichols 2017).
* ``global_signal``, ``csf``, ``white_matter``: means over rough tissue masks (see
  :func:`tissue_masks`).
* ``a_comp_cor_00`` to ``a_comp_cor_04``: left singular vectors (numpy SVD) of the white matter
  and CSF series after removing each voxel's mean and linear trend, without variance
  normalisation; signs are fixed so that each component's largest absolute value is positive.

First rows of differenced columns are ``n/a``, as in fMRIPrep's tables.

References
----------
Power JD et al. (2012) NeuroImage 59:2142-2154. Behzadi Y et al. (2007) NeuroImage 37:90-101.
Nichols TE (2017) Notes on creating a standardized version of DVARS. arXiv:1704.01469.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.bids import (
    bids_name,
    dataset_description,
    temporary_path,
    write_json,
    write_sidecar,
)

__all__ = [
    "CONFOUND_COLUMNS",
    "FD_RADIUS_MM",
    "check_fmriprep_dir",
    "confounds_table",
    "mni_series",
    "save_image",
    "tissue_masks",
    "write_fmriprep_description",
    "write_fmriprep_run",
]

LOGGER = logging.getLogger(__name__)

#: Radius (mm) of the sphere on which rotations become displacements in FD (Power 2012).
FD_RADIUS_MM = 50.0
#: Number of aCompCor components written.
N_COMPCOR = 5

_MOTION = ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")

#: Columns of the simulated confounds table, in the order written.
CONFOUND_COLUMNS = (
    "global_signal",
    "csf",
    "white_matter",
    "std_dvars",
    "dvars",
    "framewise_displacement",
    *(f"a_comp_cor_{i:02d}" for i in range(N_COMPCOR)),
    *(name for column in _MOTION for name in (column, f"{column}_derivative1")),
)

_NOT_FMRIPREP = "simulated by mirrorflow in the fMRIPrep derivatives layout, not by fMRIPrep"


def check_fmriprep_dir(fmriprep_dir, bids_dir, layout: str) -> Path | None:
    """``fmriprep_dir`` as a path with layout ``"fmriprep"`` (required, not ``bids_dir``);
    ``None`` with layout ``"raw"``, which refuses one."""
    if layout != "fmriprep":
        if fmriprep_dir is not None:
            raise ConfigError(
                f"fmriprep_dir {str(fmriprep_dir)!r} was given, but the simulation layout is "
                f"{layout!r}; set layout 'fmriprep' to write fMRIPrep-layout derivatives"
            )
        return None
    if fmriprep_dir is None:
        raise ConfigError("simulation layout 'fmriprep' needs an fmriprep_dir to write to")
    fmriprep_dir = Path(fmriprep_dir)
    if fmriprep_dir.resolve() == Path(bids_dir).resolve():
        raise ConfigError(f"fmriprep_dir and bids_dir are the same folder: {bids_dir}")
    return fmriprep_dir


def mni_series(baseline, betas, regressors, drift, noise, noise_percent) -> np.ndarray:
    """The simulator's signal model on the template grid, as after motion correction and
    normalisation: ``baseline * (1 + sum_c betas_c x_c / 100 + drift)`` plus ``noise`` scaled
    to ``noise_percent`` of the temporal mean (+ 5), float32, shape ``baseline.shape + (T,)``."""
    change = sum(
        betas[c].astype(np.float32)[..., None] * (regressors[c] / 100.0).astype(np.float32)
        for c in ("imitate", "mismatch")
    )
    data = baseline.astype(np.float32)[..., None] * (1 + change + drift.astype(np.float32))
    signal = data.mean(axis=-1, keepdims=True)
    data += noise * (signal * noise_percent / 100.0 + 5.0)
    return data


def save_image(data, affine, path, zooms) -> None:
    """Save ``data`` as NIfTI with ``affine`` as qform and sform, and mm/s units."""
    img = nib.Nifti1Image(data, affine)
    img.header.set_zooms(zooms)
    img.header.set_xyzt_units("mm", "sec")
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=1)
    nib.save(img, path)


# --------------------------------------------------------------------------- masks


def tissue_masks(brain: np.ndarray, affine: np.ndarray) -> dict[str, np.ndarray]:
    """Rough tissue masks on the grid of ``brain`` (a boolean brain mask with ``affine``).

    nilearn's MNI152 grey- and white-matter masks (probability above 0.2, closed) are put on
    the grid by nearest neighbour. They overlap, so ``white_matter`` is the white-matter
    mask minus the grey-matter mask, and ``csf`` is the brain minus both; ``compcor`` is
    their union. Raises ``ValueError`` if any of them is empty on this grid.
    """
    from nilearn.datasets import load_mni152_gm_mask, load_mni152_wm_mask
    from nilearn.image import resample_to_img

    grid = nib.Nifti1Image(brain.astype(np.uint8), affine)

    def on_grid(img):
        img = resample_to_img(img, grid, interpolation="nearest", force_resample=True,
                              copy_header=True)
        return np.asarray(img.dataobj) > 0

    gm = on_grid(load_mni152_gm_mask(resolution=2)) & brain
    wm = on_grid(load_mni152_wm_mask(resolution=2)) & brain
    masks = {"brain": brain, "white_matter": wm & ~gm, "csf": brain & ~gm & ~wm}
    masks["compcor"] = masks["white_matter"] | masks["csf"]
    empty = [name for name, mask in masks.items() if not mask.any()]
    if empty:
        raise ValueError(f"tissue mask(s) {empty} are empty on the {brain.shape} BOLD grid")
    return masks


# --------------------------------------------------------------------------- confounds


def _backward_diff(values: np.ndarray) -> np.ndarray:
    """Backward differences along the first axis, NaN in the first row."""
    values = np.asarray(values, dtype=float)
    return np.concatenate([np.full((1,) + values.shape[1:], np.nan), np.diff(values, axis=0)])


def _framewise_displacement(motion: np.ndarray) -> np.ndarray:
    """Power (2012) FD of ``motion`` (volumes x 6: translations mm, rotations radians)."""
    step = np.abs(_backward_diff(motion))
    return step[:, :3].sum(axis=1) + FD_RADIUS_MM * step[:, 3:].sum(axis=1)


def _dvars(series: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DVARS and standardised DVARS of ``series`` (voxels x volumes); NaN in the first row."""
    scaled = series * (1000.0 / np.median(series))
    dvars = np.sqrt(np.mean(np.diff(scaled, axis=1) ** 2, axis=0))
    q75, q25 = np.percentile(scaled, [75, 25], axis=1)
    robust_sd = (q75 - q25) / 1.349
    centred = scaled - scaled.mean(axis=1, keepdims=True)
    power = np.sum(centred**2, axis=1)
    varying = (robust_sd > 0) & (power > 0)
    ar1 = np.sum(centred[varying, 1:] * centred[varying, :-1], axis=1) / power[varying]
    expected = np.mean(np.sqrt(2.0 * (1.0 - ar1)) * robust_sd[varying])
    return np.r_[np.nan, dvars], np.r_[np.nan, dvars / expected]


def _acompcor(series: np.ndarray) -> tuple[np.ndarray, dict]:
    """The first :data:`N_COMPCOR` components of ``series`` (voxels x volumes) and their
    metadata for the confounds sidecar."""
    n_voxels, n_volumes = series.shape
    if min(n_voxels, n_volumes) < N_COMPCOR:
        raise ValueError(
            f"aCompCor needs at least {N_COMPCOR} voxels and volumes; found {n_voxels} "
            f"voxels and {n_volumes} volumes"
        )
    design = np.column_stack([np.ones(n_volumes), np.linspace(-1.0, 1.0, n_volumes)])
    data = series.T
    resid = data - design @ np.linalg.lstsq(design, data, rcond=None)[0]
    # The left singular vectors and squared singular values of ``resid`` are those of its
    # (volumes x volumes) Gram matrix: far cheaper than the SVD of volumes x voxels.
    u, power, _ = np.linalg.svd(resid @ resid.T, hermitian=True)
    u = u[:, :N_COMPCOR]
    u *= np.sign(u[np.abs(u).argmax(axis=0), np.arange(N_COMPCOR)])
    power = np.clip(power, 0.0, None)
    s = np.sqrt(power)
    explained = power / power.sum()
    meta = {
        f"a_comp_cor_{i:02d}": {
            "Method": "aCompCor",
            "Mask": "combined",
            "Retained": True,
            "SingularValue": float(s[i]),
            "VarianceExplained": float(explained[i]),
            "CumulativeVarianceExplained": float(explained[: i + 1].sum()),
            "Description": "principal component of the white matter and CSF series after "
            "removing each voxel's mean and linear trend (numpy SVD); " + _NOT_FMRIPREP,
        }
        for i in range(N_COMPCOR)
    }
    return u, meta


def confounds_table(data: np.ndarray, masks: dict, motion: np.ndarray) -> tuple[pd.DataFrame,
                                                                                 dict]:
    """fMRIPrep-named confounds of one run and the metadata of their JSON sidecar.

    Parameters
    ----------
    data : ndarray, shape (x, y, z, volumes)
        The series on the template grid.
    masks : dict
        Boolean masks from :func:`tissue_masks`.
    motion : ndarray, shape (volumes, 6)
        Head motion as the simulator draws it: translations in mm, rotations in degrees.
        Rotations are written in radians, as fMRIPrep does.

    Returns
    -------
    table : DataFrame
        Columns :data:`CONFOUND_COLUMNS`; NaN in the first row of differenced columns.
    meta : dict
        Per-column descriptions (and aCompCor singular values and explained variance).
    """
    motion = np.array(motion, dtype=float)
    motion[:, 3:] = np.deg2rad(motion[:, 3:])
    brain = data[masks["brain"]].astype(float)
    dvars, std_dvars = _dvars(brain)
    compcor, meta = _acompcor(data[masks["compcor"]].astype(float))
    columns = {
        "global_signal": brain.mean(axis=0),
        "csf": data[masks["csf"]].mean(axis=0, dtype=float),
        "white_matter": data[masks["white_matter"]].mean(axis=0, dtype=float),
        "std_dvars": std_dvars,
        "dvars": dvars,
        "framewise_displacement": _framewise_displacement(motion),
        **{f"a_comp_cor_{i:02d}": compcor[:, i] for i in range(N_COMPCOR)},
    }
    derivative = _backward_diff(motion)
    for j, name in enumerate(_MOTION):
        columns[name] = motion[:, j]
        columns[f"{name}_derivative1"] = derivative[:, j]
    table = pd.DataFrame(columns, columns=list(CONFOUND_COLUMNS))
    units = {"trans": "mm", "rot": "rad"}
    meta.update(
        {
            "global_signal": {"Description": "mean over the brain mask"},
            "csf": {"Description": "mean over the rough CSF mask (brain minus nilearn's "
                    "MNI152 grey- and white-matter masks)"},
            "white_matter": {"Description": "mean over nilearn's MNI152 white-matter mask "
                             "minus its grey-matter mask"},
            "dvars": {"Description": "RMS over the brain of the backward difference, series "
                      "scaled to a median of 1000 in the brain"},
            "std_dvars": {"Description": "dvars divided by its mean expected value, "
                          "sqrt(2 (1 - ar1)) x (IQR / 1.349), over brain voxels"},
            "framewise_displacement": {
                "Description": "Power et al. (2012): sum of absolute backward differences, "
                f"rotations as arc length on a {FD_RADIUS_MM:g} mm sphere",
                "Units": "mm",
            },
        }
    )
    for name in _MOTION:
        unit = units[name.split("_")[0]]
        meta[name] = {"Description": "true simulated head motion", "Units": unit}
        meta[f"{name}_derivative1"] = {"Description": f"backward difference of {name}",
                                       "Units": unit}
    return table, meta


# --------------------------------------------------------------------------- writers


def write_fmriprep_run(
    func_dir, *, entities: dict, space: str, res: str, data: np.ndarray, affine: np.ndarray,
    masks: dict, motion: np.ndarray, tr: float, task: str,
) -> dict[str, Path]:
    """Write one run as fMRIPrep would in ``space``: preproc series, brain mask, boldref and
    confounds table, each with a JSON sidecar. Returns their paths.

    The series is rounded to int16 (like the raw layout's; a third of float32's size), and
    the boldref and confounds are computed from the rounded series, as written.
    """
    func_dir = Path(func_dir)
    func_dir.mkdir(parents=True, exist_ok=True)
    std = dict(entities, space=space, res=res)
    voxel = tuple(float(v) for v in nib.affines.voxel_sizes(affine))
    paths = {
        "bold": func_dir / bids_name(desc="preproc", suffix="bold", **std),
        "mask": func_dir / bids_name(desc="brain", suffix="mask", **std),
        "boldref": func_dir / bids_name(suffix="boldref", **std),
        "confounds": func_dir / bids_name(
            desc="confounds", suffix="timeseries", extension=".tsv", **entities
        ),
    }
    description = (
        f"BOLD series {_NOT_FMRIPREP}: the simulator's signal model computed directly on the "
        f"{space} grid at {res} mm, without head motion (as after motion correction and "
        "normalisation)."
    )
    data = np.clip(np.round(data), -32768, 32767).astype(np.int16)
    save_image(data, affine, paths["bold"], zooms=voxel + (tr,))
    write_sidecar(paths["bold"], {"RepetitionTime": tr, "TaskName": task,
                                  "SkullStripped": False, "Description": description})
    save_image(masks["brain"].astype(np.uint8), affine, paths["mask"], zooms=voxel)
    write_sidecar(paths["mask"], {"Type": "Brain", "Description": f"brain mask {_NOT_FMRIPREP}"})
    save_image(data.mean(axis=-1, dtype=float).astype(np.float32), affine, paths["boldref"],
               zooms=voxel)
    write_sidecar(paths["boldref"], {"Description": f"temporal mean, {_NOT_FMRIPREP}"})
    table, meta = confounds_table(data, masks, motion)
    tmp = temporary_path(paths["confounds"])
    table.to_csv(tmp, sep="\t", index=False, na_rep="n/a", float_format="%.8g")
    os.replace(tmp, paths["confounds"])
    write_sidecar(paths["confounds"], meta)
    return paths


def write_fmriprep_description(fmriprep_dir, bids_dir) -> Path:
    """``dataset_description.json`` of the simulated derivatives: says who made them."""
    from mirrorflow import __version__

    fmriprep_dir = Path(fmriprep_dir)
    description = dataset_description(stage="simulated fMRIPrep-layout derivatives",
                                      source=os.path.relpath(bids_dir, fmriprep_dir))
    description["GeneratedBy"] = [
        {
            "Name": "mirrorflow simulator",
            "Version": __version__,
            "Description": "mirrorflow.simulate.study: a seeded simulation written in the "
            "file layout of fMRIPrep derivatives. It imitates that layout; it was not "
            "produced by fMRIPrep.",
        }
    ]
    return write_json(fmriprep_dir / "dataset_description.json", description)
