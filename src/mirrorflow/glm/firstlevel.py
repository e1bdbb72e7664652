"""Subject-level GLM: nilearn's FirstLevelModel over a subject's runs, contrasts from config."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mirrorflow.exceptions import ConfigError, InputDataError
from mirrorflow.io.config import unknown_conditions
from mirrorflow.io.validate import check_bold, check_events

__all__ = [
    "STATS", "combine_sessions", "contrast_conditions", "design_dof", "fit_first_level",
    "write_first_level", "write_maps",
]

LOGGER = logging.getLogger(__name__)

#: Maps written per contrast, in nilearn's ``compute_contrast(output_type=...)`` names.
STATS = {"effect": "effect_size", "variance": "effect_variance", "z": "z_score", "t": "stat"}


def _check_contrasts(contrasts: dict[str, str], conditions) -> None:
    """Each contrast expression uses only configured conditions."""
    for name, expression in contrasts.items():
        unknown = unknown_conditions(expression, conditions)
        if unknown:
            raise ConfigError(
                f"contrast '{name}' = '{expression}' uses unknown condition(s) {unknown}; "
                f"conditions are {sorted(conditions)}"
            )


def contrast_conditions(contrasts: dict[str, str]) -> list[str]:
    """The conditions that the contrast expressions use, sorted."""
    return sorted({name for expression in contrasts.values()
                   for name in unknown_conditions(expression, ())})


def _read_confounds(path, columns) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", na_values="n/a")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(f"{path}: confound column(s) {missing} not found")
    # The first row of derivative-type confounds is undefined; fMRIPrep's convention is n/a.
    return table[list(columns)].fillna(0.0)


def fit_first_level(
    *,
    bold_files,
    events_files,
    confounds_files,
    mask_files,
    conditions,
    contrasts: dict[str, str],
    confound_columns=(),
    hrf_model: str = "glover",
    drift_model: str = "cosine",
    high_pass: float = 0.008,
    noise_model: str = "ar1",
    modulation: bool = False,
):
    """Fit the GLM over all runs of one subject and compute every contrast.

    The analysis mask is the intersection of the runs' brain masks. With ``modulation``
    each event's amplitude is its events file's ``modulation`` column (nilearn); without
    it, such a column is an error (:func:`~mirrorflow.io.validate.check_events`). Returns
    ``(maps, design_matrices, methods, mask)`` where ``maps[contrast][stat]`` is a
    Nifti1Image for each stat of :data:`STATS`.
    """
    from nilearn import __version__ as nilearn_version
    from nilearn.glm.first_level import FirstLevelModel
    from nilearn.masking import intersect_masks

    if not (len(bold_files) == len(events_files) == len(confounds_files)):
        raise ValueError("one events and one confounds file are needed per BOLD run")
    _check_contrasts(contrasts, conditions)
    trs, events, confounds = set(), [], []
    required = contrast_conditions(contrasts)
    for bold, events_file, confounds_file in zip(bold_files, events_files, confounds_files):
        img, tr = check_bold(bold)
        trs.add(tr)
        events.append(
            check_events(events_file, conditions=conditions, run_duration=img.shape[3] * tr,
                         modulation=modulation, required=required)
        )
        confounds.append(_read_confounds(confounds_file, confound_columns))
    if len(trs) != 1:
        raise InputDataError(f"runs {list(bold_files)} have different repetition times {trs}")
    tr = trs.pop()
    mask = intersect_masks(list(mask_files), threshold=1, connected=False)
    model = FirstLevelModel(
        t_r=tr,
        hrf_model=hrf_model,
        drift_model=drift_model,
        high_pass=high_pass,
        noise_model=noise_model,
        mask_img=mask,
        smoothing_fwhm=None,
        minimize_memory=True,
    )
    model.fit(list(bold_files), events=events, confounds=confounds if confound_columns else None)
    maps = {}
    for name, expression in contrasts.items():
        per_run = [_expression_vector(expression, dm) for dm in model.design_matrices_]
        maps[name] = {
            stat: model.compute_contrast(per_run, stat_type="t", output_type=key)
            for stat, key in STATS.items()
        }
    methods = (
        f"A GLM was fitted to each participant's {len(bold_files)} run(s) with nilearn "
        f"{nilearn_version} (HRF {hrf_model}, {drift_model} drift with high-pass "
        f"{high_pass} Hz, {noise_model} noise model, confounds: "
        f"{', '.join(confound_columns) or 'none (no motion regressors)'}; event amplitudes: "
        + ("the events' modulation column" if modulation else "1")
        + "); contrasts: "
        + "; ".join(f"{k} = {v}" for k, v in contrasts.items())
        + "."
    )
    return maps, model.design_matrices_, methods, mask


def write_maps(maps, mask, *, map_template, mask_file, methods, sources) -> None:
    """Write every map to ``map_template.format(contrast=..., stat=...)`` with a sidecar,
    and the mask."""
    from mirrorflow.io.bids import save_float_image, write_sidecar

    for contrast, stats in maps.items():
        for stat, img in stats.items():
            path = map_template.format(contrast=contrast, stat=stat)
            save_float_image(img, path)
            write_sidecar(path, {"Contrast": contrast, "Statistic": stat,
                                 "Sources": sources, "Description": methods})
    mask.to_filename(mask_file)


def write_first_level(
    maps, design_matrices, mask, *, map_template, mask_file, design_file, methods, sources
) -> None:
    """:func:`write_maps`, and the runs' design matrices stacked in one TSV with a ``run``
    column (its sidecar: the methods sentence, which names the confounds used)."""
    from mirrorflow.io.bids import write_sidecar

    write_maps(maps, mask, map_template=map_template, mask_file=mask_file, methods=methods,
               sources=sources)
    design = pd.concat(
        [dm.assign(run=index + 1) for index, dm in enumerate(design_matrices)]
    ).rename_axis("frame_time")
    design.to_csv(design_file, sep="\t", float_format="%.6g")
    write_sidecar(design_file, {"Sources": sources, "Description": methods})


def _expression_vector(expression: str, design_matrix: pd.DataFrame) -> np.ndarray:
    """Contrast vector of an expression over the columns of one run's design matrix."""
    from nilearn.glm import expression_to_contrast_vector

    return np.asarray(expression_to_contrast_vector(expression, list(design_matrix.columns)))


def design_dof(design_file) -> int:
    """Residual degrees of freedom of a model from its design TSV (:func:`write_first_level`):
    over its runs, the volumes minus the design's columns."""
    design = pd.read_csv(design_file, sep="\t")
    n_columns = design.shape[1] - 2  # without frame_time and run
    return int(sum(len(rows) - n_columns for _, rows in design.groupby("run")))


def combine_sessions(*, effects, variances, masks, designs):
    """One participant's maps from its session models, by fixed effects.

    ``effects[contrast]`` and ``variances[contrast]`` list the sessions' effect and variance
    maps in one order, ``masks`` and ``designs`` (design TSVs, for each model's degrees of
    freedom) in the same. Per contrast, nilearn's ``compute_fixed_effects`` gives the
    sessions' mean effect, its variance, t and z, within the voxels every session's mask
    holds. Returns ``(maps, mask, methods)`` as :func:`fit_first_level`.
    """
    import json

    from nilearn import __version__ as nilearn_version
    from nilearn.glm import compute_fixed_effects
    from nilearn.masking import intersect_masks

    from mirrorflow.io.bids import sidecar_path

    mask = intersect_masks(list(masks), threshold=1, connected=False)
    dofs = [design_dof(design) for design in designs]
    maps = {}
    for contrast in effects:
        effect, variance, t, z = compute_fixed_effects(
            list(effects[contrast]), list(variances[contrast]), mask=mask, dofs=dofs)
        maps[contrast] = {"effect": effect, "variance": variance, "z": z, "t": t}
    # The session models' own sentence (their design's sidecar), then how they combine.
    model = sidecar_path(designs[0])
    model = json.loads(model.read_text()).get("Description", "") if model.exists() else ""
    methods = (model + " " if model else "") + (
        f"Each of the participant's {len(dofs)} sessions was modelled on its own; each "
        f"contrast's session estimates were combined by fixed effects (nilearn "
        f"{nilearn_version} compute_fixed_effects: mean effect, its variance, and t and z "
        f"with the sessions' residual degrees of freedom, {', '.join(map(str, dofs))})."
    )
    return maps, mask, methods
