"""Second-level models with nilearn: one-sample, paired and regression designs.

A group model is one of

* ``onesample``: the first-level maps of one contrast, intercept only;
* ``paired``: the maps of two first-level contrasts (``first`` and ``second``) of the same
  participants; the design has a condition column (+1 first, -1 second) and one column
  per participant, as in nilearn's paired-test example, so the condition t equals the
  one-sample t of the differences;
* ``regression``: the maps of one contrast regressed on a participants.tsv column, with
  an intercept and optional nuisance columns (numeric, or categorical such as sex: coded
  as indicator columns, first level dropped); every column but the intercept is
  mean-centred, so the intercept is the group mean at the average covariate.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from mirrorflow.exceptions import InputDataError
from mirrorflow.jobs import frozen_gc

__all__ = [
    "MODEL_KINDS",
    "describe_model",
    "design_matrix",
    "fit_group",
    "group_design",
    "group_model",
    "paired_design",
    "threshold_map",
]

MODEL_KINDS = ("onesample", "paired", "regression")


def _centred(values) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    return values - values.mean()


def _nuisance_columns(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """A participants.tsv column as mean-centred design columns: numeric as is, otherwise
    one indicator column per level after the first (sorted)."""
    values = table[column]
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        return pd.DataFrame({column: _centred(numeric)}, index=table.index)
    levels = sorted(values.astype(str).unique())
    return pd.DataFrame(
        {f"{column}{level}": _centred(values.astype(str) == level) for level in levels[1:]},
        index=table.index,
    )


def design_matrix(subjects, *, covariate: pd.Series | None = None,
                  nuisance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Intercept, then the mean-centred ``covariate`` and ``nuisance`` columns (rows in
    ``subjects`` order; both indexed by subject label)."""
    subjects = list(subjects)
    design = pd.DataFrame({"intercept": np.ones(len(subjects))}, index=subjects)
    if covariate is not None:
        design[covariate.name] = _centred(covariate.loc[subjects])
    if nuisance is not None:
        for column in nuisance.columns:
            design = design.join(_nuisance_columns(nuisance.loc[subjects], column))
    return design


def paired_design(subjects, *, label: str, conditions=("first", "second")) -> pd.DataFrame:
    """Paired design for the maps of the first condition then the second (each in
    ``subjects`` order): the ``label`` column is +1 / -1, then one indicator column per
    participant. Rows are named ``sub-<label>_<condition>``."""
    subjects = list(subjects)
    n = len(subjects)
    first, second = conditions
    index = [f"sub-{s}_{first}" for s in subjects] + [f"sub-{s}_{second}" for s in subjects]
    design = pd.DataFrame({label: np.r_[np.ones(n), -np.ones(n)]}, index=index)
    for i, sub in enumerate(subjects):
        design[f"sub{sub}"] = np.r_[np.eye(n)[i], np.eye(n)[i]]
    return design


def group_design(spec: dict, subjects, *, participants_file=None) -> tuple[pd.DataFrame, str]:
    """The design of a group model ``spec`` (see :func:`mirrorflow.io.config.group_models`)
    and the name of its tested column."""
    from mirrorflow.io.validate import check_participants

    kind = spec["kind"]
    if kind == "onesample":
        return design_matrix(subjects), "intercept"
    if kind == "paired":
        design = paired_design(subjects, label=spec["label"], conditions=spec["contrasts"])
        return design, spec["label"]
    if kind != "regression":
        raise ValueError(f"unknown group model kind {kind!r}; choose from {MODEL_KINDS}")
    nuisance = list(spec.get("nuisance", []))
    table = check_participants(participants_file, columns=[spec["covariate"]],
                               subjects=subjects)
    missing = [c for c in nuisance if c not in table.columns]
    if missing:
        raise InputDataError(f"{participants_file}: missing nuisance column(s) {missing}")
    labels = list(subjects)
    for column in nuisance:
        empty = table[column].isna()
        if empty.any():
            raise InputDataError(
                f"{participants_file}: nuisance column '{column}' is empty for "
                f"{table.index[empty].tolist()}"
            )
    covariate = table[spec["covariate"]].set_axis(labels)
    extra = table[nuisance].set_axis(labels) if nuisance else None
    return design_matrix(labels, covariate=covariate, nuisance=extra), spec["covariate"]


def fit_group(effect_maps, design: pd.DataFrame, *, contrast: str, mask_img=None,
              output_type: str = "z_score"):
    """Fit nilearn's SecondLevelModel and return the ``output_type`` map of ``contrast``
    (a design column)."""
    from nilearn.glm.second_level import SecondLevelModel

    if len(effect_maps) != len(design):
        raise ValueError(f"{len(effect_maps)} maps but {len(design)} design rows")
    imgs = [m if isinstance(m, nib.Nifti1Image) else str(m) for m in effect_maps]
    with frozen_gc():  # nilearn collects garbage for every image it reads
        model = SecondLevelModel(mask_img=mask_img, minimize_memory=True)
        model.fit(imgs, design_matrix=design.reset_index(drop=True))
        return model.compute_contrast(contrast, output_type=output_type)


def threshold_map(z_img, *, alpha: float, height_control: str, cluster_threshold: int,
                  mask_img=None):
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


def describe_model(spec: dict, n_subjects: int) -> str:
    """One sentence for the methods: what the group model tests."""
    kind = spec["kind"]
    if kind == "onesample":
        what = f"a one-sample t-test of the first-level '{spec['contrasts'][0]}' maps"
    elif kind == "paired":
        first, second = spec["contrasts"]
        what = (f"a paired t-test of '{first}' against '{second}' (condition column "
                "+1/-1 and one column per participant)")
    else:
        nuisance = spec.get("nuisance") or []
        extra = f", with nuisance covariate(s) {', '.join(nuisance)}" if nuisance else ""
        what = (f"a regression of the first-level '{spec['contrasts'][0]}' maps on "
                f"mean-centred {spec['covariate']} (with intercept{extra}; covariates "
                "mean-centred)")
    return f"{what}, {n_subjects} participants"


def group_model(effect_maps, *, spec: dict, subjects, mask_img, participants_file=None):
    """Fit one group model. ``effect_maps``: the maps in ``subjects`` order (for paired
    models, all ``first`` maps then all ``second`` maps).

    Returns ``(z_img, design, tested_column, methods)``.
    """
    from nilearn import __version__ as nilearn_version

    design, column = group_design(spec, subjects, participants_file=participants_file)
    z_img = fit_group(effect_maps, design, contrast=column, mask_img=mask_img)
    methods = (
        f"Group model: {describe_model(spec, len(subjects))}, fitted with nilearn "
        f"{nilearn_version}'s SecondLevelModel (OLS); z map of the '{column}' column."
    )
    return z_img, design, column, methods
