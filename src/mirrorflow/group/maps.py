"""Second-level models with nilearn: one-sample maps and regressions on a covariate."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["design_matrix", "fit_group", "group_model", "threshold_map"]


def design_matrix(subjects, *, covariate: pd.Series | None = None) -> pd.DataFrame:
    """Intercept, plus the mean-centred covariate when given (rows in ``subjects`` order)."""
    design = pd.DataFrame({"intercept": np.ones(len(subjects))}, index=list(subjects))
    if covariate is not None:
        values = covariate.loc[list(subjects)].to_numpy(float)
        design[covariate.name] = values - values.mean()
    return design


def fit_group(effect_maps, design: pd.DataFrame, *, contrast: str, mask_img=None):
    """Fit nilearn's SecondLevelModel and return the z map of ``contrast`` (a column)."""
    from nilearn.glm.second_level import SecondLevelModel

    if len(effect_maps) != len(design):
        raise ValueError(f"{len(effect_maps)} maps but {len(design)} design rows")
    model = SecondLevelModel(mask_img=mask_img, minimize_memory=True)
    model.fit(list(effect_maps), design_matrix=design.reset_index(drop=True))
    return model.compute_contrast(contrast, output_type="z_score")


def threshold_map(z_img, *, alpha: float, height_control: str, cluster_threshold: int, mask_img=None):
    """Positive tail of ``z_img`` thresholded with :func:`nilearn.glm.threshold_stats_img`.

    Returns the thresholded map and the z threshold used.
    """
    from nilearn.glm import threshold_stats_img

    height = None if height_control == "none" else height_control
    return threshold_stats_img(
        z_img,
        mask_img=mask_img,
        alpha=alpha,
        height_control=height,
        cluster_threshold=cluster_threshold,
        two_sided=False,
    )


def group_model(
    effect_maps,
    *,
    subjects,
    mask_img,
    threshold: dict,
    participants_file=None,
    covariate: str | None = None,
):
    """One-sample model (``covariate`` None) or regression on a participants.tsv column.

    Returns ``(z_img, thresholded_img, z_threshold, design, methods)``.
    """
    from nilearn import __version__ as nilearn_version

    from mirrorflow.io.validate import check_participants

    series = None
    if covariate is not None:
        table = check_participants(participants_file, columns=[covariate], subjects=subjects)
        series = table[covariate].set_axis(list(subjects))
    design = design_matrix(subjects, covariate=series)
    contrast = covariate or "intercept"
    z_img = fit_group(effect_maps, design, contrast=contrast, mask_img=mask_img)
    thresholded, z_threshold = threshold_map(z_img, mask_img=mask_img, **threshold)
    what = (
        f"a regression on mean-centred {covariate} (with intercept)"
        if covariate
        else "a one-sample t-test"
    )
    methods = (
        f"Group maps of {len(subjects)} participants were computed with {what} in nilearn "
        f"{nilearn_version}'s SecondLevelModel and thresholded at z > {z_threshold:.2f} "
        f"({threshold['height_control']} alpha {threshold['alpha']}, clusters of at least "
        f"{threshold['cluster_threshold']} voxels)."
    )
    return z_img, thresholded, float(z_threshold), design.rename_axis("participant_id"), methods
