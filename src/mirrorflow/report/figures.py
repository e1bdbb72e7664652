"""Figures of the study report, drawn with nilearn's plotting and matplotlib.

- :func:`glass_brain`: a thresholded map as a glass brain (every meta-analytic map).
- :func:`map_figures`: a thresholded group map as a glass brain and as axial slices.
- :func:`design_figure`: each run's first-level design matrix (nilearn
  ``plot_design_matrix``).
- :func:`scatter_figure`: the behavioural correlation, with r and its bootstrap CI.
- :func:`runtime_figure`: total job time per rule, from Snakemake's benchmark files.

Every function writes one PNG through a temporary name and an atomic rename.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from mirrorflow.io.bids import temporary_path  # noqa: E402

__all__ = [
    "design_figure",
    "glass_brain",
    "map_figures",
    "runtime_figure",
    "scatter_figure",
    "slices",
]


def _save(figure_or_display, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path, ".png")
    try:
        figure_or_display.savefig(str(tmp), dpi=100)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
        plt.close("all")
    return path


def _is_empty(img) -> bool:
    return not np.any(np.asarray(img.dataobj, dtype=float) != 0)


def glass_brain(img, path, *, title: str) -> Path:
    """Glass-brain figure (PNG) of a thresholded map; an empty map is drawn as such."""
    from nilearn import plotting

    empty = not np.any(np.asarray(img.dataobj, dtype=float) > 0)
    display = plotting.plot_glass_brain(
        None if empty else img,
        display_mode="lyrz",
        colorbar=not empty,
        cmap="inferno" if not empty else None,
        plot_abs=False,
        black_bg=False,
        title=f"{title} (no surviving voxels)" if empty else title,
    )
    return _save(display, path)


def slices(img, path, *, title: str, cuts: int = 8) -> Path:
    """Axial slices of a thresholded map over nilearn's MNI152 template, cut through the
    map's clusters (evenly spaced where the map is empty)."""
    from nilearn import plotting

    img = nib.load(str(img)) if not isinstance(img, nib.Nifti1Image) else img
    empty = _is_empty(img)
    display = plotting.plot_stat_map(
        img,
        display_mode="z",
        cut_coords=np.linspace(-30, 60, cuts) if empty else cuts,
        threshold=1e-6,
        colorbar=not empty,
        cmap="inferno",
        black_bg=False,
        title=f"{title} (no surviving voxels)" if empty else title,
    )
    return _save(display, path)


def map_figures(img, *, glass_file, slices_file, title: str) -> tuple[Path, Path]:
    """Glass brain and axial slices of one thresholded map."""
    img = nib.load(str(img))
    return glass_brain(img, glass_file, title=title), slices(img, slices_file, title=title)


def design_figure(design_file, path) -> Path:
    """Every run's design matrix side by side (the stacked TSV that the first level
    writes, with its ``run`` column)."""
    from nilearn.plotting import plot_design_matrix

    design = pd.read_csv(design_file, sep="\t", index_col="frame_time")
    runs = sorted(design["run"].unique())
    fig, axes = plt.subplots(1, len(runs), figsize=(5 * len(runs), 7), squeeze=False)
    for ax, run in zip(axes[0], runs):
        matrix = design[design["run"] == run].drop(columns="run").dropna(axis=1, how="all")
        plot_design_matrix(matrix, axes=ax)
        ax.set_title(f"run {run}", fontsize=11)
    fig.suptitle(Path(design_file).name)
    fig.tight_layout()
    return _save(fig, path)


def scatter_figure(table: pd.DataFrame, result: dict, path) -> Path:
    """Scatter of two scores with the least-squares line, Pearson's r, its bootstrap 95%
    CI and p (``result`` from :func:`mirrorflow.group.behaviour.correlate`)."""
    x, y = result["x"], result["y"]
    values = table[[x, y]].to_numpy(float)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(values[:, 0], values[:, 1], color="#3060a0", edgecolor="white", s=50)
    slope, intercept = np.polyfit(values[:, 0], values[:, 1], 1)
    line = np.linspace(values[:, 0].min(), values[:, 0].max(), 2)
    ax.plot(line, slope * line + intercept, color="#c03030")
    low, high = result["pearson_r_ci95"]
    ax.set_title(
        f"r = {result['pearson_r']:.2f}, 95% CI [{low:.2f}, {high:.2f}], "
        f"p = {result['pearson_p']:.2g}, n = {result['n']}",
        fontsize=10,
    )
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    fig.tight_layout()
    return _save(fig, path)


def runtime_figure(summary: pd.DataFrame, path) -> Path:
    """Horizontal bars of the total wall time per rule (``summary`` from
    :func:`mirrorflow.report.runtimes.runtime_summary`)."""
    per_rule = summary.sort_values("total_s")
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(per_rule) + 1.5))
    ax.barh(per_rule["rule"], per_rule["total_s"], color="#3060a0")
    for i, (total, count) in enumerate(zip(per_rule["total_s"], per_rule["jobs"])):
        ax.text(total, i, f" {total:.0f} s ({count} job{'s' * (count > 1)})", va="center",
                fontsize=8)
    ax.set_xlabel("wall time, all jobs of the rule (s)")
    ax.set_xlim(0, per_rule["total_s"].max() * 1.3 if len(per_rule) else 1)
    fig.tight_layout()
    return _save(fig, path)
