"""Seeded simulator of the facial-imitation fMRI study (Braadbaart et al. 2014 design).

Writes a small raw BIDS dataset (T1w, task-imitation BOLD runs, events, participants.tsv
with EQ and imitation accuracy) and, beside it, the ground truth: the planted regions as
MNI masks and every effect size, so that each later stage can be checked against it.

Generative model, per subject *i* and run:

* Anatomy: nilearn's MNI152 template (ICBM 2009a nonlinear symmetric), placed in the
  scanner by a subject affine (rotation up to ``rotation_deg``, translation up to
  ``translation_mm``, scaling within ``scaling``); the registration stages must undo it.
* BOLD: ``S(x, t) = B(x) * (1 + sum_c beta_c(x) x_c(t) / 100 + drift(t)) + noise``, built in
  MNI space, moved into the scanner by the subject affine and a per-volume head motion
  (random walk with occasional jumps), then sampled on a 4 mm scanner grid. ``x_c`` is the
  block regressor of condition ``c`` convolved with the Glover HRF; noise is AR(1) in time.
* Planted effects (% signal change, spheres in :data:`PLANTED_REGIONS`): both conditions
  activate every region by ``task``; mismatch adds ``mismatch_insula`` in bilateral insula;
  imitation activity grows by ``eq_slope`` per SD of EQ in premotor and somatosensory cortex
  and by ``accuracy_slope`` per SD of accuracy in premotor cortex and insula.
* Behaviour: EQ and accuracy drawn from a bivariate normal with correlation ``eq_accuracy_r``.

Layouts (``SimulationParams.layout``): ``"raw"`` writes the scanner-space BIDS dataset above;
``"fmriprep"`` writes, beside a raw dataset that holds only the events and participants, the
runs as fMRIPrep derivatives would hold them (:mod:`mirrorflow.simulate.fmriprep`): the same
signal model computed directly on the MNI BOLD grid, with no subject affine and no head motion
in the series, and the true motion in the confounds table. Both layouts make the same random
draws in the same order, so behaviour, betas, events and motion are identical for a seed.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from mirrorflow.exceptions import ConfigError
from mirrorflow.io.bids import bids_name, write_json, write_sidecar
from mirrorflow.io.templates import TEMPLATE_SPACE, template_grid, world_coords
from mirrorflow.simulate.fmriprep import (
    check_fmriprep_dir,
    mni_series,
    save_image,
    tissue_masks,
    write_fmriprep_description,
    write_fmriprep_run,
)

__all__ = ["LAYOUTS", "PLANTED_REGIONS", "SimulationParams", "simulate_study"]

LOGGER = logging.getLogger(__name__)

#: Ways the study can be written: raw BIDS, or fMRIPrep-layout derivatives.
LAYOUTS = ("raw", "fmriprep")
#: Planted regions: MNI centre (mm) and radius (mm).
PLANTED_REGIONS = {
    "insulaL": ((-38.0, 6.0, 2.0), 10.0),
    "insulaR": ((38.0, 6.0, 2.0), 10.0),
    "premotorL": ((-50.0, 2.0, 38.0), 10.0),
    "premotorR": ((50.0, 2.0, 38.0), 10.0),
    "somatosensoryL": ((-52.0, -26.0, 44.0), 10.0),
    "somatosensoryR": ((52.0, -26.0, 44.0), 10.0),
    "occipitalL": ((-30.0, -86.0, 2.0), 10.0),
    "occipitalR": ((30.0, -86.0, 2.0), 10.0),
}

#: Which regions carry which planted effect; the truth masks are their unions.
EFFECT_REGIONS = {
    "task": tuple(PLANTED_REGIONS),
    "mismatchGtImitate": ("insulaL", "insulaR"),
    "eq": ("premotorL", "premotorR", "somatosensoryL", "somatosensoryR"),
    "accuracy": ("premotorL", "premotorR", "insulaL", "insulaR"),
    "overlap": ("premotorL", "premotorR"),
}


@dataclass
class SimulationParams:
    """Parameters of the simulated study; defaults match ``config/config.yaml``."""

    n_subjects: int = 20
    n_runs: int = 2
    n_blocks: int = 4
    block_duration: float = 16.0
    rest_duration: float = 12.0
    tr: float = 2.0
    task: str = "imitation"
    bold_voxel_mm: float = 4.0
    noise_percent: float = 1.5
    ar1: float = 0.3
    task_effect: float = 1.5
    mismatch_insula: float = 1.0
    eq_slope: float = 0.6
    accuracy_slope: float = 0.6
    subject_sd: float = 0.25
    eq_accuracy_r: float = 0.5
    motion_sd: float = 0.03
    rotation_deg: float = 4.0
    translation_mm: float = 5.0
    scaling: float = 0.04
    seed: int = 42
    layout: str = "raw"

    def __post_init__(self) -> None:
        _check_layout(self.layout)

    @property
    def n_volumes(self) -> int:
        """Volumes per run: leading rest, then blocks each followed by rest."""
        seconds = self.rest_duration + self.n_blocks * (self.block_duration + self.rest_duration)
        return int(round(seconds / self.tr))


def _check_layout(layout) -> None:
    if layout not in LAYOUTS:
        raise ConfigError(
            f"simulation 'layout' must be one of {list(LAYOUTS)}. {layout!r} was provided."
        )


def simulate_study(
    bids_dir, truth_dir, params: SimulationParams | None = None, fmriprep_dir=None
) -> dict:
    """Write the simulated study to ``bids_dir`` (and ``fmriprep_dir``), truth to ``truth_dir``.

    With layout ``"raw"`` ``bids_dir`` gets everything. With ``"fmriprep"`` it gets all but the
    T1w and BOLD images, and ``fmriprep_dir`` (required) gets per run the ``desc-preproc_bold``,
    ``desc-brain_mask`` and ``boldref`` images in :data:`TEMPLATE_SPACE` (res ``bold_voxel_mm``),
    the ``desc-confounds_timeseries`` table and a dataset description. ``truth_dir`` is the
    same for both. Returns a dict with the subject labels, the layout and a methods sentence.
    Raises :class:`ConfigError` (a ``ValueError``) if ``fmriprep_dir`` does not fit the layout.
    """
    params = params or SimulationParams()
    _check_layout(params.layout)
    bids_dir, truth_dir = Path(bids_dir), Path(truth_dir)
    fmriprep_dir = check_fmriprep_dir(fmriprep_dir, bids_dir, params.layout)
    rng = np.random.default_rng(params.seed)
    anat = _MniAnatomy.load(params.bold_voxel_mm)
    behaviour = _behaviour(params, rng)
    behaviour = behaviour.assign(z_eq=_zscore(behaviour["eq"]), z_acc=_zscore(behaviour["accuracy"]))
    _write_dataset_files(bids_dir, params, behaviour)
    if fmriprep_dir is not None:
        write_fmriprep_description(fmriprep_dir, bids_dir)
        anat.tissue = tissue_masks(anat.brain, anat.epi_affine)
    records = []
    for index, row in behaviour.iterrows():
        sub = row["participant_id"].removeprefix("sub-")
        sub_rng = np.random.default_rng([params.seed, index])
        records.append(
            _simulate_subject(bids_dir, fmriprep_dir, sub, row, params, anat, sub_rng, index)
        )
    _write_truth(truth_dir, params, anat, behaviour, records)
    methods = (
        f"A study of {params.n_subjects} participants was simulated with mirrorflow (seed "
        f"{params.seed}): {params.n_runs} runs of {params.n_volumes} volumes (TR {params.tr} s, "
        f"{params.bold_voxel_mm} mm voxels) with {params.n_blocks} alternating imitate and "
        f"mismatch blocks of {params.block_duration} s, noise {params.noise_percent}% (AR(1) "
        f"{params.ar1}), and planted effects in bilateral insula, premotor and somatosensory "
        "cortex"
    )
    if fmriprep_dir is not None:
        methods += (
            f"; runs were written motion-free in {TEMPLATE_SPACE} in the file layout of "
            "fMRIPrep derivatives (an imitation, not fMRIPrep output)"
        )
    return {"subjects": list(behaviour["participant_id"]), "layout": params.layout,
            "methods": methods + "."}


# --------------------------------------------------------------------------- anatomy


@dataclass
class _MniAnatomy:
    """The MNI template at 2 mm (T1w) and on the BOLD grid, which is
    :func:`~mirrorflow.io.templates.template_grid` at the BOLD resolution (baseline EPI,
    brain mask where the smoothed template brain is at least half inside, regions)."""

    t1: nib.Nifti1Image
    epi_affine: np.ndarray
    baseline: np.ndarray
    coords: np.ndarray
    brain: np.ndarray
    tissue: dict | None = None

    @classmethod
    def load(cls, voxel_mm: float) -> _MniAnatomy:
        from nilearn.datasets import load_mni152_gm_template, load_mni152_template
        from nilearn.image import resample_to_img

        t1 = load_mni152_template(resolution=2)
        grid = template_grid(voxel_mm)
        gm = resample_to_img(
            load_mni152_gm_template(resolution=2), grid, interpolation="continuous",
            force_resample=True, copy_header=True,
        )
        inside = ndimage.gaussian_filter((grid.get_fdata() > 0.05).astype(float), 0.7)
        baseline = 1000.0 * inside * (0.75 + 0.35 * np.clip(gm.get_fdata(), 0, 1))
        coords = world_coords(baseline.shape, grid.affine)
        return cls(t1=t1, epi_affine=grid.affine, baseline=baseline, coords=coords,
                   brain=inside >= 0.5)

    def sphere(self, name: str, coords: np.ndarray | None = None) -> np.ndarray:
        centre, radius = PLANTED_REGIONS[name]
        coords = self.coords if coords is None else coords
        return np.linalg.norm(coords - np.asarray(centre), axis=-1) <= radius


# --------------------------------------------------------------------------- behaviour


def _behaviour(params: SimulationParams, rng: np.random.Generator) -> pd.DataFrame:
    """participants.tsv: EQ (0-80) and imitation accuracy (%) with correlation r."""
    n, r = params.n_subjects, params.eq_accuracy_r
    z = rng.multivariate_normal([0.0, 0.0], [[1.0, r], [r, 1.0]], size=n)
    return pd.DataFrame(
        {
            "participant_id": [f"sub-{i + 1:02d}" for i in range(n)],
            "age": rng.integers(19, 36, size=n),
            "sex": rng.choice(["F", "M"], size=n),
            "eq": np.round(np.clip(45.0 + 11.0 * z[:, 0], 0, 80), 1),
            "accuracy": np.round(np.clip(62.0 + 9.0 * z[:, 1], 0, 100), 1),
        }
    )


def _zscore(values: pd.Series) -> np.ndarray:
    values = values.to_numpy(float)
    return (values - values.mean()) / values.std(ddof=1)


# --------------------------------------------------------------------------- subjects


def _events(params: SimulationParams, rng: np.random.Generator) -> pd.DataFrame:
    """Blocks of imitate and mismatch (balanced, shuffled), each followed by rest."""
    kinds = np.array(["imitate", "mismatch"] * (params.n_blocks // 2))
    rng.shuffle(kinds)
    step = params.block_duration + params.rest_duration
    onsets = params.rest_duration + step * np.arange(len(kinds))
    return pd.DataFrame(
        {"onset": onsets, "duration": params.block_duration, "trial_type": kinds}
    )


def _regressors(events: pd.DataFrame, params: SimulationParams) -> dict[str, np.ndarray]:
    from nilearn.glm.first_level import compute_regressor

    frame_times = np.arange(params.n_volumes) * params.tr
    out = {}
    for kind in ("imitate", "mismatch"):
        rows = events[events["trial_type"] == kind]
        condition = np.vstack([rows["onset"], rows["duration"], np.ones(len(rows))])
        regressor, _ = compute_regressor(condition, "glover", frame_times)
        out[kind] = regressor[:, 0] / regressor.max()
    return out


def _subject_betas(params, anat, rng, z_eq, z_acc) -> tuple[dict, dict]:
    """Per-condition % signal change maps on the MNI BOLD grid, plus the region betas."""
    beta = {"imitate": np.zeros(anat.baseline.shape), "mismatch": np.zeros(anat.baseline.shape)}
    table = {}
    for name in PLANTED_REGIONS:
        mask = anat.sphere(name)
        imitate = params.task_effect + rng.normal(0, params.subject_sd)
        mismatch = params.task_effect + rng.normal(0, params.subject_sd)
        if name in EFFECT_REGIONS["eq"]:
            imitate += params.eq_slope * z_eq
        if name in EFFECT_REGIONS["accuracy"]:
            imitate += params.accuracy_slope * z_acc
        if name in EFFECT_REGIONS["mismatchGtImitate"]:
            mismatch += params.mismatch_insula
        beta["imitate"][mask] = imitate
        beta["mismatch"][mask] = mismatch
        table[name] = (imitate, mismatch)
    return beta, table


def _rigid(angles_deg, translation, centre=np.zeros(3)) -> np.ndarray:
    """4x4 rotation (x, y, z Euler angles, degrees) about ``centre`` then translation."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    out = np.eye(4)
    out[:3, :3] = rz @ ry @ rx
    out[:3, 3] = np.asarray(translation) + centre - out[:3, :3] @ centre
    return out


def _subject_affine(params, rng) -> np.ndarray:
    """MNI -> scanner world: scaling, rotation and translation of the subject's head."""
    scale = np.eye(4)
    scale[:3, :3] = np.diag(1 + rng.uniform(-params.scaling, params.scaling, 3))
    rigid = _rigid(
        rng.uniform(-params.rotation_deg, params.rotation_deg, 3),
        rng.uniform(-params.translation_mm, params.translation_mm, 3),
    )
    return rigid @ scale


def _motion(params, rng) -> np.ndarray:
    """Head motion (n_volumes x 6: trans mm, rot deg): a random walk with rare jumps."""
    steps = rng.normal(0, params.motion_sd, (params.n_volumes, 6))
    jumps = rng.random(params.n_volumes) < 0.03
    steps[jumps] += rng.normal(0, 0.3, (jumps.sum(), 6))
    steps[0] = 0
    return np.cumsum(steps, axis=0)


def _scanner_grid(subject_affine, shape_mm, voxel_mm) -> tuple[np.ndarray, tuple]:
    """An axis-aligned scanner grid centred on the subject's head."""
    shape = tuple(int(np.ceil(s / voxel_mm)) for s in shape_mm)
    centre = subject_affine[:3, :3] @ np.array([0.0, -18.0, 8.0]) + subject_affine[:3, 3]
    affine = np.diag([voxel_mm] * 3 + [1.0])
    affine[:3, 3] = centre - voxel_mm * (np.array(shape) - 1) / 2
    return affine, shape


def _resample(volume, src_affine, dst_affine, dst_shape, world) -> np.ndarray:
    """Sample ``volume`` (on ``src_affine``) at the scanner grid mapped by ``world``."""
    matrix = np.linalg.inv(src_affine) @ np.linalg.inv(world) @ dst_affine
    return ndimage.affine_transform(
        volume, matrix[:3, :3], offset=matrix[:3, 3], output_shape=dst_shape, order=1
    )


def _simulate_subject(bids_dir, fmriprep_dir, sub, row, params, anat, rng, index) -> dict:
    """Simulate one subject with ``rng``; both layouts make the same draws in the same order.

    The fMRIPrep layout draws (and drops) the scanner-space T1w and noise too, so that the
    stream stays aligned; its MNI-grid noise comes from its own seed ``(seed, index, run)``.
    """
    raw = fmriprep_dir is None
    subject_affine = _subject_affine(params, rng)
    # T1w: template brain moved into the scanner, with a smooth bias field and noise.
    t1_affine, t1_shape = _scanner_grid(subject_affine, (180, 216, 180), 2.0)
    if raw:
        t1 = _resample(anat.t1.get_fdata(), anat.t1.affine, t1_affine, t1_shape, subject_affine)
        bias = 1 + 0.1 * np.linspace(-1, 1, t1_shape[2])[None, None, :]
        # A skull-stripped T1w (zero outside the brain), as many shared datasets provide.
        t1 = np.where(t1 > 0.01, 1000 * t1 * bias + rng.normal(0, 10, t1_shape), 0).clip(0)
        anat_dir = bids_dir / f"sub-{sub}" / "anat"
        anat_dir.mkdir(parents=True, exist_ok=True)
        t1_file = anat_dir / bids_name(sub=sub, suffix="T1w")
        save_image(t1.astype(np.int16), t1_affine, t1_file, zooms=(2.0, 2.0, 2.0))
        write_sidecar(t1_file, {"Modality": "MR", "Simulated": True})
    else:
        _skip_normals(rng, int(np.prod(t1_shape)))

    betas, table = _subject_betas(params, anat, rng, row["z_eq"], row["z_acc"])
    bold_affine, bold_shape = _scanner_grid(subject_affine, (176, 208, 168), params.bold_voxel_mm)
    motions = []
    func_dir = bids_dir / f"sub-{sub}" / "func"
    func_dir.mkdir(parents=True, exist_ok=True)
    for run in range(1, params.n_runs + 1):
        events = _events(params, rng)
        regressors = _regressors(events, params)
        motion = _motion(params, rng)
        frame_times = np.arange(params.n_volumes) * params.tr
        drift = 0.01 * np.cos(np.pi * frame_times / frame_times[-1]) * rng.normal()
        entities = dict(sub=sub, task=params.task, run=run)
        if raw:
            noise = _ar1_noise(params, rng, bold_shape)
            data = _scanner_bold(params, anat, betas, regressors, drift, motion,
                                 subject_affine, bold_affine, noise)
            bold_file = func_dir / bids_name(suffix="bold", **entities)
            save_image(data, bold_affine, bold_file, (params.bold_voxel_mm,) * 3 + (params.tr,))
            write_sidecar(bold_file, {"RepetitionTime": params.tr, "TaskName": params.task})
        else:
            _skip_normals(rng, int(np.prod(bold_shape)) * params.n_volumes)
            noise = _ar1_noise(params, np.random.default_rng([params.seed, index, run]),
                               anat.baseline.shape)
            data = mni_series(anat.baseline, betas, regressors, drift, noise,
                              params.noise_percent)
            write_fmriprep_run(
                fmriprep_dir / f"sub-{sub}" / "func", entities=entities, space=TEMPLATE_SPACE,
                res=f"{params.bold_voxel_mm:g}", data=data, affine=anat.epi_affine,
                masks=anat.tissue, motion=motion, tr=params.tr, task=params.task,
            )
        events.to_csv(
            func_dir / bids_name(suffix="events", extension=".tsv", **entities),
            sep="\t", index=False, float_format="%.2f",
        )
        motions.append(motion)
    return {"sub": sub, "affine": subject_affine, "betas": table, "motion": motions}


def _scanner_bold(params, anat, betas, regressors, drift, motion, subject_affine, bold_affine,
                  noise) -> np.ndarray:
    """The int16 series in the scanner: each volume moved by the subject affine and motion."""
    bold_shape = noise.shape[:3]
    centre = bold_affine[:3, :3] @ ((np.array(bold_shape) - 1) / 2) + bold_affine[:3, 3]
    data = np.empty(bold_shape + (params.n_volumes,), dtype=np.float32)
    for t in range(params.n_volumes):
        change = (
            betas["imitate"] * regressors["imitate"][t]
            + betas["mismatch"] * regressors["mismatch"][t]
        ) / 100.0
        volume = anat.baseline * (1 + change + drift[t])
        head = _rigid(motion[t, 3:], motion[t, :3], centre) @ subject_affine
        data[..., t] = _resample(volume, anat.epi_affine, bold_affine, bold_shape, head)
    signal = data.mean(axis=-1, keepdims=True)
    data += noise * (signal * params.noise_percent / 100.0 + 5.0)
    return np.clip(np.round(data + 100), 0, 32767).astype(np.int16)


def _skip_normals(rng, count: int, chunk: int = 1 << 22) -> None:
    """Advance ``rng`` past ``count`` standard normal draws (in chunks, to bound memory)."""
    for start in range(0, count, chunk):
        rng.standard_normal(min(chunk, count - start))


def _ar1_noise(params, rng, shape) -> np.ndarray:
    """Unit-variance AR(1) noise over time for each voxel of ``shape``."""
    noise = rng.standard_normal(shape + (params.n_volumes,)).astype(np.float32)
    scale = np.sqrt(1 - params.ar1**2)
    for t in range(1, params.n_volumes):
        noise[..., t] = params.ar1 * noise[..., t - 1] + scale * noise[..., t]
    return noise


# --------------------------------------------------------------------------- dataset files


def _write_dataset_files(bids_dir: Path, params: SimulationParams, behaviour) -> None:
    bids_dir.mkdir(parents=True, exist_ok=True)
    write_json(
        bids_dir / "dataset_description.json",
        {
            "Name": "mirrorflow simulated facial-imitation study",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "mirrorflow", "Description": "seeded simulator"}],
        },
    )
    behaviour.drop(columns=["z_eq", "z_acc"]).to_csv(
        bids_dir / "participants.tsv", sep="\t", index=False
    )
    write_json(
        bids_dir / "participants.json",
        {
            "age": {"Description": "age", "Units": "years"},
            "sex": {"Description": "sex", "Levels": {"F": "female", "M": "male"}},
            "eq": {"Description": "Empathy Quotient (Baron-Cohen & Wheelwright 2004), 0-80"},
            "accuracy": {"Description": "facial imitation accuracy", "Units": "percent"},
        },
    )
    write_json(
        bids_dir / f"task-{params.task}_bold.json",
        {"TaskName": params.task, "RepetitionTime": params.tr},
    )


def _write_truth(truth_dir: Path, params, anat: _MniAnatomy, behaviour, records) -> None:
    """Masks of every planted effect on the 2 mm template grid, and the effect sizes."""
    truth_dir.mkdir(parents=True, exist_ok=True)
    t1 = anat.t1
    coords = world_coords(t1.shape, t1.affine)
    for effect, regions in EFFECT_REGIONS.items():
        mask = np.zeros(t1.shape, dtype=np.uint8)
        for name in regions:
            mask[anat.sphere(name, coords)] = 1
        name = bids_name(space=TEMPLATE_SPACE, res="2", desc=effect, suffix="mask")
        nib.save(nib.Nifti1Image(mask, t1.affine), truth_dir / name)
    subjects = []
    for rec, (_, row) in zip(records, behaviour.iterrows(), strict=True):
        entry = {"participant_id": row["participant_id"], "z_eq": row["z_eq"],
                 "z_accuracy": row["z_acc"]}
        for region, (imitate, mismatch) in rec["betas"].items():
            entry[f"{region}_imitate"] = imitate
            entry[f"{region}_mismatch"] = mismatch
        subjects.append(entry)
        for run, motion in enumerate(rec["motion"], start=1):
            pd.DataFrame(
                motion, columns=["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"]
            ).to_csv(
                truth_dir / f"sub-{rec['sub']}_run-{run}_desc-truemotion_timeseries.tsv",
                sep="\t", index=False, float_format="%.5f",
            )
    pd.DataFrame(subjects).to_csv(truth_dir / "subjects.tsv", sep="\t", index=False)
    sample_r = float(np.corrcoef(behaviour["eq"], behaviour["accuracy"])[0, 1])
    write_json(
        truth_dir / "effects.json",
        {
            "space": TEMPLATE_SPACE,
            "regions": {k: {"centre_mm": c, "radius_mm": r} for k, (c, r) in PLANTED_REGIONS.items()},
            "effect_regions": EFFECT_REGIONS,
            "params": asdict(params),
            "units": "percent signal change; slopes per SD of the covariate",
            "eq_accuracy_r_population": params.eq_accuracy_r,
            "eq_accuracy_r_sample": sample_r,
        },
    )
