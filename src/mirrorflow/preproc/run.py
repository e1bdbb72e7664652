"""Run the preprocessing workflow of one BOLD run and publish its derivatives."""

from __future__ import annotations

import logging
from pathlib import Path

from mirrorflow.io.templates import TEMPLATE_SPACE, template_files
from mirrorflow.io.validate import check_bold, check_t1w

__all__ = ["run_preproc"]

LOGGER = logging.getLogger(__name__)

#: Keys of ``outputs`` and the workflow output that fills each.
OUTPUT_FIELDS = {
    "bold": "bold_smooth",
    "bold_unsmoothed": "bold_std",
    "mask": "mask",
    "confounds": "confounds",
    "boldref": "boldref_std",
}


def run_preproc(
    *,
    bold_file,
    t1w_file,
    outputs: dict[str, str],
    work_dir,
    fwhm: float,
    resolution: float,
    realign_loops: int = 1,
    t1w_to_template: str = "Affine",
    skull_strip: str = "auto",
    seed: int = 1,
    n_procs: int = 1,
) -> str:
    """Validate the inputs, run :func:`init_preproc_wf` and write the derivatives.

    ``outputs`` maps each key of :data:`OUTPUT_FIELDS` to its destination path; every file
    gets a JSON sidecar. nipype's working directory ``work_dir`` keeps cached nodes, so a
    rerun with the same inputs reuses them. Returns the methods sentence.
    """
    from nipype import config as nipype_config
    from nipype.pipeline import engine as pe

    from mirrorflow.preproc.interfaces import CopyDerivative
    from mirrorflow.preproc.workflows import init_preproc_wf

    _, tr = check_bold(bold_file)
    check_t1w(t1w_file)
    missing = set(OUTPUT_FIELDS) - set(outputs)
    if missing:
        raise ValueError(f"outputs lacks {sorted(missing)}")

    work_dir = Path(work_dir).resolve()
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
    templates = template_files(work_dir / "templates", resolution)
    preproc = init_preproc_wf(
        fwhm=fwhm, tr=tr, realign_loops=realign_loops, t1w_to_template=t1w_to_template,
        skull_strip=skull_strip, seed=seed,
    )
    for field, value in [("bold_file", bold_file), ("t1w_file", t1w_file), *templates.items()]:
        setattr(preproc.inputs.inputnode, field, str(Path(value).resolve()))

    outer = pe.Workflow(name="run_wf", base_dir=str(work_dir))
    common = {
        "SkullStripped": False,
        "Sources": [str(bold_file), str(t1w_file)],
        "Space": TEMPLATE_SPACE,
        "Resolution": f"{resolution:g} mm isotropic",
    }
    metadata = {
        "bold": {**common, "RepetitionTime": tr, "SmoothingFWHM": fwhm},
        "bold_unsmoothed": {**common, "RepetitionTime": tr},
        "mask": {**common, "Type": "Brain"},
        "confounds": {"Sources": [str(bold_file)], "Description": preproc.__desc__},
        "boldref": common,
    }
    for key, field in OUTPUT_FIELDS.items():
        sink = pe.Node(
            CopyDerivative(out_file=str(Path(outputs[key]).resolve()), metadata=metadata[key]),
            name=f"ds_{key}",
            run_without_submitting=True,
        )
        outer.connect(preproc, f"outputnode.{field}", sink, "in_file")
    plugin = ("MultiProc", {"n_procs": n_procs}) if n_procs > 1 else ("Linear", {})
    outer.run(plugin=plugin[0], plugin_args=plugin[1])
    LOGGER.info("preprocessed %s", bold_file)
    return preproc.__desc__
