"""Quality-control figures of one preprocessed BOLD run: motion, carpet, registration.

Figures are :class:`matplotlib.figure.Figure` objects drawn on an Agg canvas, never
through pyplot's global state, so they need no display and leave no open figure
behind. Each function writes one PNG (1200 px wide) through a temporary name and an
atomic rename, and returns its path.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import matplotlib
import nibabel as nib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.bids import temporary_path
from mirrorflow.io.validate import open_nifti
from mirrorflow.qc.inputs import DVARS_COLUMN, FD_COLUMN, _load_image, load_run, read_confounds

__all__ = ["plot_carpet", "plot_motion", "plot_registration"]

LOGGER = logging.getLogger(__name__)

_WIDTH_IN, _DPI = 12.0, 100  # 1200 px wide
_CONTOUR_COLOR = "#ff2020"  # template brain outline
_WM_COLOR = "#ffd000"  # template white-matter boundary
_REGISTRATION_ROWS = ("z", "y", "x")  # axial, coronal, sagittal
_N_CUTS = 7


def _figure(height_in: float) -> Figure:
    fig = Figure(figsize=(_WIDTH_IN, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, out_file) -> Path:
    """Write ``fig`` as PNG under a temporary name, rename it to ``out_file``, close it."""
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(out_file)
    try:
        # "standard": the whole figure, whatever another library set in rcParams (some
        # set savefig.bbox to "tight", which crops every figure to a different size).
        with matplotlib.rc_context({"savefig.bbox": "standard"}):
            fig.savefig(tmp, format="png", dpi=_DPI, facecolor=fig.get_facecolor())
        os.replace(tmp, out_file)
    finally:
        tmp.unlink(missing_ok=True)
        fig.clear()
    LOGGER.info("wrote %s", out_file)
    return out_file


def plot_motion(confounds_file, out_file, *, fd_threshold: float = 0.5, title: str = "") -> Path:
    """Translations, rotations and framewise displacement of one run over time.

    Parameters
    ----------
    confounds_file : :obj:`str` or :class:`~pathlib.Path`
        fMRIPrep-style confounds table (six motion parameters, ``framewise_displacement``).
    out_file : :obj:`str` or :class:`~pathlib.Path`
        Output PNG.
    fd_threshold : :obj:`float`, default=0.5
        FD (mm) drawn as a dashed line on the FD panel.
    title : :obj:`str`, default=""
        Figure title.

    Returns
    -------
    :class:`~pathlib.Path`
        ``out_file``.

    Raises
    ------
    InputDataError
        The table is missing, unreadable or lacks a required column.

    Notes
    -----
    Three stacked panels share the volume axis: translations (mm), rotations (converted
    from radians to degrees) and FD with its mean in the legend.
    """
    table = read_confounds(confounds_file)
    volumes = np.arange(len(table))
    fig = _figure(7.0)
    axes = fig.subplots(3, 1, sharex=True)
    for axis in "xyz":
        axes[0].plot(volumes, table[f"trans_{axis}"], lw=1, label=axis)
        axes[1].plot(volumes, np.degrees(table[f"rot_{axis}"]), lw=1, label=axis)
    axes[0].set_ylabel("translation (mm)")
    axes[1].set_ylabel("rotation (deg)")
    fd = table[FD_COLUMN].to_numpy(float)
    mean_fd = np.nanmean(fd) if np.isfinite(fd).any() else np.nan
    axes[2].plot(volumes, fd, lw=1, color="k", label=f"FD (mean {mean_fd:.3f} mm)")
    axes[2].axhline(fd_threshold, ls="--", lw=1, color="tab:red",
                    label=f"threshold {fd_threshold:g} mm")
    axes[2].set_ylabel("FD (mm)")
    axes[2].set_xlabel("volume")
    axes[2].set_xlim(-0.5, max(len(table) - 0.5, 0.5))
    for ax in axes:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="small", ncol=3,
                  frameon=False, borderaxespad=0.0)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, out_file)


def plot_carpet(bold_file, mask_file, confounds_file, out_file, *, title: str = "") -> Path:
    """FD and standardized DVARS above a carpet plot of the run's brain voxels.

    Parameters
    ----------
    bold_file : :obj:`str` or :class:`~pathlib.Path`
        4D BOLD series.
    mask_file : :obj:`str` or :class:`~pathlib.Path`
        3D brain mask on the BOLD grid; non-zero voxels are plotted.
    confounds_file : :obj:`str` or :class:`~pathlib.Path`
        fMRIPrep-style confounds table, one row per volume.
    out_file : :obj:`str` or :class:`~pathlib.Path`
        Output PNG.
    title : :obj:`str`, default=""
        Figure title.

    Returns
    -------
    :class:`~pathlib.Path`
        ``out_file``.

    Raises
    ------
    InputDataError
        As :func:`mirrorflow.qc.inputs.load_run`.

    Notes
    -----
    The carpet is :func:`nilearn.plotting.plot_carpet` (each voxel detrended and
    z-scored, time in seconds from the header's TR); the trace panel above it uses the
    same volume columns.
    """
    from nilearn.plotting import plot_carpet as nilearn_carpet

    table, bold, mask = load_run(
        confounds_file=confounds_file, bold_file=bold_file, mask_file=mask_file
    )
    n_volumes = bold.shape[3]
    t_r = float(bold.header.get_zooms()[3])
    if not t_r > 0:
        LOGGER.warning("%s: no TR in the header; the carpet's time axis is in volumes", bold_file)
        t_r = 1.0
    mask_img = nib.Nifti1Image(mask.astype(np.uint8), bold.affine)
    volumes = np.arange(n_volumes)

    fig = _figure(8.0)
    grid = fig.add_gridspec(2, 1, height_ratios=[1, 3], hspace=0.35)
    top = fig.add_subplot(grid[0])
    top.plot(volumes, table[FD_COLUMN], lw=1, color="tab:red", label="FD (mm)")
    top.set_ylabel("FD (mm)", color="tab:red")
    handles = top.get_lines()
    if DVARS_COLUMN in table.columns:
        right = top.twinx()
        dvars = table[DVARS_COLUMN].to_numpy(float)
        handles += right.plot(volumes, dvars, lw=1, color="tab:blue", label="std DVARS")
        right.set_ylabel("std DVARS", color="tab:blue")
    top.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize="small",
               ncol=2, frameon=False, borderaxespad=0.0)
    top.set_xlim(-0.5, n_volumes - 0.5)
    top.set_xlabel("volume")
    bottom = fig.add_subplot(grid[1])
    nilearn_carpet(bold, mask_img=mask_img, t_r=t_r, axes=bottom, standardize="zscore_sample")
    if title:
        fig.suptitle(title)
    return _save(fig, out_file)


def _read_data(img: nib.Nifti1Image, path) -> np.ndarray:
    try:
        return img.get_fdata(dtype=np.float32)
    except Exception as err:  # nibabel raises many types for truncated files
        raise InputDataError(f"{path}: not a readable NIfTI image ({err})") from err


def _mean_image(path) -> nib.Nifti1Image:
    """A 3D image as is, or the temporal mean of a 4D series."""
    img = open_nifti(path)
    if img.ndim == 4 and img.shape[3] == 1:
        img = img.slicer[..., 0]
    if img.ndim not in (3, 4):
        raise InputDataError(f"{path}: expected a 3D or 4D image, found {img.ndim}D {img.shape}")
    data = _read_data(img, path)
    if img.ndim == 4:
        data = data.mean(axis=3)
    return nib.Nifti1Image(data, img.affine)


def _cut_coords(mask: np.ndarray, affine: np.ndarray) -> dict[str, list[float]]:
    """World coordinates of evenly spaced cuts through the mask, per display mode.

    Cuts follow the template mask, not the run, so every run of a study is shown at the
    same slices.
    """
    xyz = nib.affines.apply_affine(affine, np.argwhere(mask))
    cuts = {}
    for axis, mode in enumerate("xyz"):
        low, high = xyz[:, axis].min(), xyz[:, axis].max()
        cuts[mode] = [round(float(c), 1) for c in np.linspace(low, high, _N_CUTS + 2)[1:-1]]
    return cuts


def plot_registration(bold_file, template_file, mask_file, out_file, *, title: str = "") -> Path:
    """The run's mean BOLD image with the template's outlines, to check normalization.

    Parameters
    ----------
    bold_file : :obj:`str` or :class:`~pathlib.Path`
        BOLD series in template space (its temporal mean is shown) or a 3D reference.
    template_file : :obj:`str` or :class:`~pathlib.Path`
        The template image (T1w); its white-matter boundary is drawn as thin contours.
    mask_file : :obj:`str` or :class:`~pathlib.Path`
        The template's brain mask; its outline is drawn in red.
    out_file : :obj:`str` or :class:`~pathlib.Path`
        Output PNG.
    title : :obj:`str`, default=""
        Figure title.

    Returns
    -------
    :class:`~pathlib.Path`
        ``out_file``.

    Raises
    ------
    InputDataError
        A file is missing or unreadable, the BOLD image is not 3D or 4D, or the template
        or mask is not 3D, or the mask is empty.

    Notes
    -----
    Three rows of :func:`nilearn.plotting.plot_anat` cuts: seven axial, seven coronal
    and seven sagittal slices, evenly spaced through the template mask (the same for
    every run). The template's white-matter contour is drawn at the midpoint between the
    median template intensity inside the mask and its 90th percentile. A misregistered
    run shows brain signal outside the red outline or ventricles off the contours.
    A 4D series is read whole (as float32) to average it; pass the run's 3D reference
    image where memory is short.
    """
    from nilearn.plotting import plot_anat

    background = _mean_image(bold_file)
    template = _load_image(template_file, ndim=3, what="template image")
    mask = _load_image(mask_file, ndim=3, what="template brain mask")
    values = _read_data(template, template_file)
    mask_data = _read_data(mask, mask_file) > 0
    if not mask_data.any():
        raise InputDataError(f"{mask_file}: the template brain mask is empty")
    same_grid = values.shape == mask_data.shape and np.allclose(template.affine, mask.affine)
    inside = values[mask_data] if same_grid else values[values > 0]
    level = None
    if inside.size and np.ptp(inside) > 0:
        level = float(np.mean(np.percentile(inside, [50, 90])))
    template = nib.Nifti1Image(values, template.affine)
    mask = nib.Nifti1Image(mask_data.astype(np.float32), mask.affine)

    cuts = _cut_coords(mask_data, mask.affine)
    fig = _figure(6.6)
    fig.set_facecolor("black")
    top = 0.95 if title else 1.0
    if title:
        fig.text(0.01, 0.985, title, color="white", va="top", fontsize="large")
    height = top / len(_REGISTRATION_ROWS)
    for row, mode in enumerate(_REGISTRATION_ROWS):
        ax = fig.add_axes((0.0, top - (row + 1) * height, 1.0, height))
        display = plot_anat(
            background, display_mode=mode, cut_coords=cuts[mode], axes=ax, figure=fig,
            black_bg=True, draw_cross=False, colorbar=False, annotate=True, dim=0,
        )
        if level is not None:
            display.add_contours(template, levels=[level], colors=_WM_COLOR, linewidths=0.5)
        display.add_contours(mask, levels=[0.5], colors=_CONTOUR_COLOR, linewidths=1.2)
    return _save(fig, out_file)
