"""Preprocessing of one BOLD run as a nipype workflow (fMRIPrep-style factory)."""

from __future__ import annotations

__all__ = ["init_preproc_wf", "preproc_description"]


def init_preproc_wf(
    *,
    fwhm: float,
    tr: float,
    slice_times: list[float] | None = None,
    realign_loops: int = 1,
    t1w_to_template: str = "Affine",
    skull_strip: str = "auto",
    seed: int = 1,
    mem_gb: float = 2.0,
    name: str = "preproc_wf",
):
    """Build the preprocessing workflow of one BOLD run.

    Motion (and slice-timing) correction with nipy, BOLD-to-T1w rigid and T1w-to-template
    registration with ANTs (antspyx), resampling of the realigned series to the template grid
    through the composed BOLD-to-T1w and T1w-to-template transforms,
    Gaussian smoothing, and confounds (motion, derivatives, FD, DVARS) with nipype's
    ``nipype.algorithms.confounds``.

    Parameters
    ----------
    fwhm : float
        Smoothing kernel (mm); 0 disables smoothing.
    tr : float
        Repetition time (s).
    slice_times : list of float, optional
        Slice acquisition times (s); when given, slice timing is corrected jointly with
        motion (nipy's SpaceTimeRealign).
    realign_loops : int
        Realignment loops to the mean image.
    t1w_to_template : {"Affine", "SyN"}
        ANTs transform from the T1w image to the template.
    skull_strip : {"auto", "force", "skip"}
        T1w brain extraction (:class:`~mirrorflow.preproc.interfaces.SkullStrip`); ``auto``
        skips images that are already skull-stripped.
    seed : int
        Random seed of ANTs' metric sampling (registration is then repeatable).
    mem_gb : float
        Memory estimate of the heavy nodes.
    name : str
        Workflow name.

    Inputs
    ------
    bold_file, t1w_file, template, template_mask
        Raw BOLD series and T1w; template image and brain mask on the output grid.
    template_t1 : str
        Template T1w at its native (2 mm) resolution, the registration target.

    Outputs
    -------
    bold_std, bold_smooth, mask, confounds, boldref_std
        Unsmoothed and smoothed series on the template grid, brain mask, confounds TSV,
        and the mean BOLD image on the template grid (for QC).
    """
    from nipype.algorithms.confounds import ComputeDVARS, FramewiseDisplacement
    from nipype.interfaces.utility import IdentityInterface, Merge
    from nipype.pipeline import engine as pe

    from mirrorflow.preproc import interfaces as mf

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        IdentityInterface(
            fields=["bold_file", "t1w_file", "template", "template_mask", "template_t1"]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        IdentityInterface(fields=["bold_std", "bold_smooth", "mask", "confounds", "boldref_std"]),
        name="outputnode",
    )
    realign = pe.Node(
        mf.Realign(tr=tr, slice_times=list(slice_times or []), loops=realign_loops),
        name="motion_correction",
        mem_gb=mem_gb,
    )
    boldref = pe.Node(mf.TemporalMean(), name="bold_reference")
    t1w_brain = pe.Node(mf.SkullStrip(mode=skull_strip, seed=seed), name="t1w_skull_strip",
                        mem_gb=mem_gb)
    bold_to_t1w = pe.Node(mf.AntsRegistration(transform="Rigid", seed=seed), name="bold_to_t1w")
    t1w_to_template_reg = pe.Node(
        mf.AntsRegistration(transform=t1w_to_template, seed=seed),
        name="t1w_to_template",
        mem_gb=mem_gb,
    )
    # ANTs applies the list last-to-first: T1w <- BOLD, then template <- T1w.
    merge_xfms = pe.Node(Merge(2, ravel_inputs=True), name="merge_transforms")
    to_template = pe.Node(mf.ApplyTransformsSeries(), name="resample_to_template", mem_gb=mem_gb)
    mask = pe.Node(mf.BrainMask(), name="brain_mask")
    boldref_std = pe.Node(mf.TemporalMean(), name="bold_reference_std")
    smooth = pe.Node(mf.Smooth(fwhm=fwhm), name="smoothing", mem_gb=mem_gb)
    fd = pe.Node(
        FramewiseDisplacement(parameter_source="NIPY", radius=50.0), name="framewise_displacement"
    )
    dvars = pe.Node(ComputeDVARS(save_all=True, remove_zerovariance=True), name="dvars")
    confounds = pe.Node(mf.GatherConfounds(), name="gather_confounds")

    # fmt: off
    workflow.connect([
        (inputnode, realign, [("bold_file", "in_file")]),
        (realign, boldref, [("out_file", "in_file")]),
        (boldref, bold_to_t1w, [("out_file", "moving")]),
        (inputnode, t1w_brain, [("t1w_file", "in_file")]),
        (t1w_brain, bold_to_t1w, [("out_file", "fixed")]),
        (t1w_brain, t1w_to_template_reg, [("out_file", "moving")]),
        (inputnode, t1w_to_template_reg, [("template_t1", "fixed")]),
        (t1w_to_template_reg, merge_xfms, [("transforms", "in1")]),
        (bold_to_t1w, merge_xfms, [("transforms", "in2")]),
        (realign, to_template, [("out_file", "in_file")]),
        (inputnode, to_template, [("template", "reference")]),
        (merge_xfms, to_template, [("out", "transforms")]),
        (to_template, mask, [("out_file", "in_file")]),
        (inputnode, mask, [("template_mask", "template_mask")]),
        (to_template, boldref_std, [("out_file", "in_file")]),
        (to_template, smooth, [("out_file", "in_file")]),
        (realign, fd, [("par_file", "in_file")]),
        (to_template, dvars, [("out_file", "in_file")]),
        (mask, dvars, [("out_file", "in_mask")]),
        (realign, confounds, [("par_file", "par_file")]),
        (fd, confounds, [("out_file", "fd_file")]),
        (dvars, confounds, [("out_all", "dvars_file")]),
        (to_template, outputnode, [("out_file", "bold_std")]),
        (smooth, outputnode, [("out_file", "bold_smooth")]),
        (mask, outputnode, [("out_file", "mask")]),
        (confounds, outputnode, [("out_file", "confounds")]),
        (boldref_std, outputnode, [("out_file", "boldref_std")]),
    ])
    # fmt: on
    workflow.__desc__ = preproc_description(
        fwhm=fwhm, realign_loops=realign_loops, t1w_to_template=t1w_to_template,
        slice_timing=bool(slice_times), skull_strip=skull_strip,
    )
    return workflow


def preproc_description(
    *, fwhm, realign_loops, t1w_to_template, slice_timing, skull_strip="auto"
) -> str:
    """Methods sentence of the preprocessing workflow, with tool versions."""
    import ants
    import nipy
    import nipype

    stc = "slice timing and head motion were corrected jointly" if slice_timing else (
        "head motion was corrected"
    )
    return (
        f"BOLD runs were preprocessed with a nipype {nipype.__version__} workflow: {stc} with "
        f"nipy {nipy.__version__} ({realign_loops} realignment loop(s) to the mean), the T1w "
        f"image was brain-extracted (mode {skull_strip}: the MNI152NLin6Asym brain mask "
        "brought back through an affine registration to its whole-head template), the mean "
        "BOLD image was registered rigidly to the T1w brain and the T1w brain to the MNI152 "
        f"template shipped with nilearn ({t1w_to_template}) with ANTs (antspyx "
        f"{ants.__version__}), the realigned series was resampled to the template grid "
        "through the composed transforms, smoothed "
        f"with a {fwhm} mm FWHM Gaussian kernel, and framewise displacement (Power et al. "
        "2012) and DVARS were computed with nipype's confounds algorithms."
    )

