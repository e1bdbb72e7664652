"""Run the preprocessing workflows (one subject's T1w, one BOLD run) and publish their
derivatives."""

from __future__ import annotations

import logging
from pathlib import Path

from mirrorflow.exceptions import InputDataError
from mirrorflow.io.templates import TEMPLATE_SPACE, template_files
from mirrorflow.io.validate import check_bold, check_t1w, read_bold_metadata

__all__ = ["ANAT_FIELDS", "BOLD_FIELDS", "run_anat", "run_bold"]

LOGGER = logging.getLogger(__name__)

#: Keys of ``outputs`` of :func:`run_anat` and the workflow output that fills each.
ANAT_FIELDS = {
    "brain": "t1w_brain",
    "mask": "t1w_mask",
    "xfm": "xfm",
    "brain_std": "t1w_brain_std",
    "mask_std": "t1w_mask_std",
}

#: Keys of ``outputs`` of :func:`run_bold` and the workflow output that fills each.
BOLD_FIELDS = {
    "bold": "bold_smooth",
    "bold_unsmoothed": "bold_std",
    "mask": "mask",
    "confounds": "confounds",
    "boldref": "boldref_std",
}

_SLICE_AXES = {"i": 0, "j": 1, "k": 2}


def _configure_nipype(work_dir: Path) -> None:
    from nipype import config as nipype_config

    nipype_config.update_config(
        {
            "execution": {
                "crashdump_dir": str(work_dir / "crash"),
                "stop_on_first_crash": True,
                "hash_method": "content",
            },
            "monitoring": {"enabled": False},
        }
    )


def _run_and_publish(workflow, fields, outputs, metadata, work_dir, n_procs) -> None:
    """Connect one ``ds_`` sink per output to ``workflow`` and run it in ``work_dir``."""
    from nipype.pipeline import engine as pe

    from mirrorflow.preproc.interfaces import CopyDerivative

    missing = set(fields) - set(outputs)
    if missing:
        raise ValueError(f"outputs lacks {sorted(missing)}")
    outer = pe.Workflow(name=f"{workflow.name}_run", base_dir=str(work_dir))
    for key, field in fields.items():
        sink = pe.Node(
            CopyDerivative(out_file=str(Path(outputs[key]).resolve()),
                           metadata=metadata.get(key, {})),
            name=f"ds_{key}",
            run_without_submitting=True,
        )
        outer.connect(workflow, f"outputnode.{field}", sink, "in_file")
    plugin = ("MultiProc", {"n_procs": n_procs}) if n_procs > 1 else ("Linear", {})
    outer.run(plugin=plugin[0], plugin_args=plugin[1])


def run_anat(
    *,
    t1w_file,
    outputs: dict[str, str],
    work_dir,
    resolution: float,
    skull_strip: str = "auto",
    t1w_to_template: str = "SyN",
    seed: int = 1,
    n_procs: int = 1,
) -> str:
    """Validate the T1w image, run :func:`init_anat_wf` and write its derivatives.

    ``outputs`` maps each key of :data:`ANAT_FIELDS` to its destination path (images get a
    JSON sidecar). Templates are written to (and shared through) ``work_dir``'s parent.
    Returns the methods sentence.
    """
    from mirrorflow.preproc.workflows import init_anat_wf

    check_t1w(t1w_file)
    work_dir = Path(work_dir).resolve()
    _configure_nipype(work_dir)
    templates = template_files(work_dir.parent / "templates", resolution)
    anat = init_anat_wf(skull_strip=skull_strip, t1w_to_template=t1w_to_template, seed=seed)
    anat.inputs.inputnode.t1w_file = str(Path(t1w_file).resolve())
    anat.inputs.inputnode.template_t1 = templates["template_t1"]
    anat.inputs.inputnode.template = templates["template"]
    std = {"Sources": [str(t1w_file)], "Space": TEMPLATE_SPACE,
           "Resolution": f"{resolution:g} mm isotropic"}
    metadata = {
        "brain": {"Sources": [str(t1w_file)], "SkullStripped": True},
        "mask": {"Sources": [str(t1w_file)], "Type": "Brain"},
        "xfm": {"Sources": [str(t1w_file)], "From": "T1w", "To": TEMPLATE_SPACE,
                "Type": "ANTs displacement field (template -> T1w points)",
                "Description": anat.__desc__},
        "brain_std": {**std, "SkullStripped": True},
        "mask_std": {**std, "Type": "Brain"},
    }
    _run_and_publish(anat, ANAT_FIELDS, outputs, metadata, work_dir, n_procs)
    LOGGER.info("preprocessed %s", t1w_file)
    return anat.__desc__


def run_bold(
    *,
    bold_file,
    t1w_brain,
    xfm,
    t1w_mask_std,
    outputs: dict[str, str],
    work_dir,
    fwhm: float,
    resolution: float,
    realign_loops: int = 1,
    slice_timing: bool = True,
    compcor_components: int = 5,
    seed: int = 1,
    n_procs: int = 1,
) -> str:
    """Validate the BOLD run, run :func:`init_bold_wf` and write its derivatives.

    ``t1w_brain``, ``xfm`` and ``t1w_mask_std`` are outputs of :func:`run_anat`.
    ``outputs`` maps each key of :data:`BOLD_FIELDS` to its destination path; every file
    gets a JSON sidecar. Slice timing is corrected when the BOLD sidecar gives
    ``SliceTiming`` and ``slice_timing`` is true. nipype's working directory ``work_dir``
    keeps cached nodes, so a rerun with the same inputs reuses them. Returns the methods
    sentence.
    """
    from mirrorflow.preproc.workflows import init_bold_wf

    img, tr = check_bold(bold_file)
    metadata_in = read_bold_metadata(bold_file)
    slice_times = metadata_in.get("SliceTiming") if slice_timing else None
    direction = str(metadata_in.get("SliceEncodingDirection", "k"))
    if direction.rstrip("-") not in _SLICE_AXES:
        raise InputDataError(f"{bold_file}: SliceEncodingDirection {direction!r} is not i, j or k")
    slice_axis = _SLICE_AXES[direction.rstrip("-")]
    if slice_times is not None and len(slice_times) != img.shape[slice_axis]:
        raise InputDataError(
            f"{bold_file}: SliceTiming has {len(slice_times)} entries for "
            f"{img.shape[slice_axis]} slices along axis {direction}"
        )
    if slice_times is not None and (min(slice_times) < 0 or max(slice_times) >= tr):
        raise InputDataError(f"{bold_file}: SliceTiming values must lie in [0, TR={tr} s)")

    work_dir = Path(work_dir).resolve()
    _configure_nipype(work_dir)
    templates = template_files(work_dir.parent / "templates", resolution)
    bold = init_bold_wf(
        fwhm=fwhm, tr=tr, slice_times=slice_times, slice_axis=slice_axis,
        realign_loops=realign_loops, compcor_components=compcor_components, seed=seed,
    )
    for field, value in [("bold_file", bold_file), ("t1w_brain", t1w_brain), ("xfm", xfm),
                         ("t1w_mask_std", t1w_mask_std), ("template", templates["template"]),
                         ("template_noise", templates["noise_mask"])]:
        setattr(bold.inputs.inputnode, field, str(Path(value).resolve()))
    common = {
        "SkullStripped": False,
        "Sources": [str(bold_file), str(t1w_brain), str(xfm)],
        "Space": TEMPLATE_SPACE,
        "Resolution": f"{resolution:g} mm isotropic",
    }
    timing = {"RepetitionTime": tr, "SliceTimingCorrected": bool(slice_times)}
    if slice_times:
        timing["StartTime"] = (min(slice_times) + max(slice_times)) / 2
    metadata = {
        "bold": {**common, **timing, "SmoothingFWHM": fwhm},
        "bold_unsmoothed": {**common, **timing},
        "mask": {**common, "Type": "Brain"},
        "confounds": {"Sources": [str(bold_file)], "Description": bold.__desc__},
        "boldref": common,
    }
    _run_and_publish(bold, BOLD_FIELDS, outputs, metadata, work_dir, n_procs)
    LOGGER.info("preprocessed %s", bold_file)
    return bold.__desc__
