"""Preprocessing as nipype workflows built by factory functions (fMRIPrep style): one
anatomical workflow per subject, one BOLD workflow per run."""

from __future__ import annotations

__all__ = ["anat_description", "bold_description", "init_anat_wf", "init_bold_wf"]


def init_anat_wf(
    *,
    skull_strip: str = "auto",
    t1w_to_template: str = "SyN",
    seed: int = 1,
    mem_gb: float = 2.0,
    name: str = "anat_wf",
):
    """Build the anatomical workflow of one subject.

    T1w brain extraction (:class:`~mirrorflow.preproc.interfaces.SkullStrip`), registration
    of the T1w brain to the MNI152 template with ANTs (antspyx), composed into one
    displacement field, and the T1w brain and brain mask warped to the template grid.

    Parameters
    ----------
    skull_strip : {"auto", "force", "skip"}
        ``auto`` skips images that are already skull-stripped.
    t1w_to_template : {"SyN", "Affine"}
        ANTs transform from the T1w image to the template (SyN: affine then nonlinear).
    seed : int
        Random seed of ANTs' metric sampling (registration is then repeatable).
    mem_gb : float
        Memory estimate of the heavy nodes.
    name : str
        Workflow name.

    Inputs
    ------
    t1w_file
        Raw T1w image.
    template_t1, template
        Template T1w at 2 mm (the registration target) and on the output grid.

    Outputs
    -------
    t1w_brain, t1w_mask
        Brain-extracted T1w (2 mm) and its brain mask, in T1w space.
    xfm
        Displacement field template -> T1w (ANTs convention: warps T1w images to the
        template), on the 2 mm template grid.
    t1w_brain_std, t1w_mask_std
        T1w brain and brain mask on the output template grid.
    """
    from nipype.interfaces.utility import IdentityInterface
    from nipype.pipeline import engine as pe

    from mirrorflow.preproc import interfaces as mf

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        IdentityInterface(fields=["t1w_file", "template_t1", "template"]), name="inputnode"
    )
    outputnode = pe.Node(
        IdentityInterface(
            fields=["t1w_brain", "t1w_mask", "xfm", "t1w_brain_std", "t1w_mask_std"]
        ),
        name="outputnode",
    )
    strip = pe.Node(mf.SkullStrip(mode=skull_strip, seed=seed), name="t1w_skull_strip",
                    mem_gb=mem_gb)
    register = pe.Node(mf.AntsRegistration(transform=t1w_to_template, seed=seed),
                       name="t1w_to_template", mem_gb=mem_gb)
    compose = pe.Node(mf.ComposeTransforms(), name="compose_transforms")
    brain_std = pe.Node(mf.ApplyTransforms(), name="t1w_brain_to_template")
    mask_std = pe.Node(mf.ApplyTransforms(interpolation="nearestNeighbor"),
                       name="t1w_mask_to_template")
    # fmt: off
    workflow.connect([
        (inputnode, strip, [("t1w_file", "in_file")]),
        (strip, register, [("out_file", "moving")]),
        (inputnode, register, [("template_t1", "fixed")]),
        (inputnode, compose, [("template_t1", "reference")]),
        (register, compose, [("transforms", "transforms")]),
        (strip, brain_std, [("out_file", "in_file")]),
        (strip, mask_std, [("out_mask", "in_file")]),
        (inputnode, brain_std, [("template", "reference")]),
        (inputnode, mask_std, [("template", "reference")]),
        (compose, brain_std, [("out_file", "transforms")]),
        (compose, mask_std, [("out_file", "transforms")]),
        (strip, outputnode, [("out_file", "t1w_brain"), ("out_mask", "t1w_mask")]),
        (compose, outputnode, [("out_file", "xfm")]),
        (brain_std, outputnode, [("out_file", "t1w_brain_std")]),
        (mask_std, outputnode, [("out_file", "t1w_mask_std")]),
    ])
    # fmt: on
    workflow.__desc__ = anat_description(skull_strip=skull_strip,
                                         t1w_to_template=t1w_to_template)
    return workflow


def init_bold_wf(
    *,
    fwhm: float,
    tr: float,
    slice_times: list[float] | None = None,
    slice_axis: int = 2,
    realign_loops: int = 1,
    compcor_components: int = 5,
    seed: int = 1,
    mem_gb: float = 2.0,
    name: str = "bold_wf",
):
    """Build the preprocessing workflow of one BOLD run.

    Head-motion estimation (nipy), slice-timing correction when slice times are known,
    rigid BOLD-to-T1w registration (ANTs), one resampling of the series to the template
    grid through motion, BOLD-to-T1w and T1w-to-template transforms together, brain mask,
    Gaussian smoothing, and confounds: motion and derivatives, FD and DVARS
    (``nipype.algorithms.confounds``) and aCompCor over template white matter and CSF.

    Parameters
    ----------
    fwhm : float
        Smoothing kernel (mm); 0 disables smoothing.
    tr : float
        Repetition time (s).
    slice_times : list of float, optional
        Slice acquisition times (s), from the BIDS ``SliceTiming`` field.
    slice_axis : int
        Voxel axis of the slices (BIDS ``SliceEncodingDirection`` i, j, k -> 0, 1, 2).
    realign_loops : int
        Realignment loops to the mean image.
    compcor_components : int
        Number of aCompCor components kept.
    seed : int
        Random seed of ANTs' metric sampling.
    mem_gb : float
        Memory estimate of the heavy nodes.
    name : str
        Workflow name.

    Inputs
    ------
    bold_file
        Raw BOLD series.
    t1w_brain, xfm
        Outputs of :func:`init_anat_wf`: T1w brain and template -> T1w field.
    t1w_mask_std
        T1w brain mask on the output template grid.
    template, template_noise
        Template on the output grid, and its white matter + CSF mask (aCompCor).

    Outputs
    -------
    bold_std, bold_smooth, mask, confounds, boldref_std
        Unsmoothed and smoothed series on the template grid, brain mask, confounds TSV,
        and the mean BOLD image on the template grid (for QC).
    """
    from nipype.algorithms.confounds import ACompCor, FramewiseDisplacement
    from nipype.interfaces.utility import IdentityInterface, Merge
    from nipype.pipeline import engine as pe

    from mirrorflow.preproc import bold as mb
    from mirrorflow.preproc import interfaces as mf

    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        IdentityInterface(
            fields=["bold_file", "t1w_brain", "xfm", "t1w_mask_std", "template", "template_noise"]
        ),
        name="inputnode",
    )
    outputnode = pe.Node(
        IdentityInterface(fields=["bold_std", "bold_smooth", "mask", "confounds", "boldref_std"]),
        name="outputnode",
    )
    realign = pe.Node(mb.Realign(loops=realign_loops), name="motion_estimation", mem_gb=mem_gb)
    stc = pe.Node(
        mb.SliceTiming(tr=tr, slice_times=list(slice_times or []), slice_axis=slice_axis),
        name="slice_timing", mem_gb=mem_gb,
    )
    # Six parameters between two images of one head (the linear schedule of every
    # registration here: interfaces.LINEAR_SCHEDULE).
    bold_to_t1w = pe.Node(mf.AntsRegistration(transform="Rigid", seed=seed), name="bold_to_t1w")
    # ANTs order: template -> T1w (field), then T1w -> BOLD reference (rigid).
    merge_xfms = pe.Node(Merge(2, ravel_inputs=True), name="merge_transforms")
    resample = pe.Node(mb.ResampleToTemplate(), name="resample_to_template", mem_gb=mem_gb)
    mask = pe.Node(mb.BrainMask(), name="brain_mask")
    boldref_std = pe.Node(mf.TemporalMean(), name="bold_reference_std")
    smooth = pe.Node(mf.Smooth(fwhm=fwhm), name="smoothing", mem_gb=mem_gb)
    fd = pe.Node(
        FramewiseDisplacement(parameter_source="NIPY", radius=50.0), name="framewise_displacement"
    )
    dvars = pe.Node(mb.DVARS(), name="dvars")
    noise_mask = pe.Node(mb.NoiseMask(), name="noise_mask")
    acompcor = pe.Node(
        ACompCor(
            components_file="acompcor.tsv", merge_method="none", num_components=compcor_components,
            pre_filter="cosine", repetition_time=tr, header_prefix="a_comp_cor_",
            failure_mode="NaN",
        ),
        name="acompcor", mem_gb=mem_gb,
    )
    confounds = pe.Node(mb.GatherConfounds(), name="gather_confounds")

    # fmt: off
    workflow.connect([
        (inputnode, realign, [("bold_file", "in_file")]),
        (inputnode, stc, [("bold_file", "in_file")]),
        (realign, bold_to_t1w, [("ref_file", "moving")]),
        (inputnode, bold_to_t1w, [("t1w_brain", "fixed")]),
        (inputnode, merge_xfms, [("xfm", "in1")]),
        (bold_to_t1w, merge_xfms, [("transforms", "in2")]),
        (stc, resample, [("out_file", "in_file")]),
        (realign, resample, [("motion_file", "motion_file")]),
        (inputnode, resample, [("template", "reference"), ("t1w_mask_std", "mask")]),
        (merge_xfms, resample, [("out", "transforms")]),
        (resample, mask, [("out_file", "in_file"), ("fov_mask", "fov_mask")]),
        (inputnode, mask, [("t1w_mask_std", "anat_mask")]),
        (resample, boldref_std, [("out_file", "in_file")]),
        (resample, smooth, [("out_file", "in_file")]),
        (realign, fd, [("par_file", "in_file")]),
        (resample, dvars, [("out_file", "in_file")]),
        (mask, dvars, [("out_file", "in_mask")]),
        (inputnode, noise_mask, [("template_noise", "template_noise")]),
        (mask, noise_mask, [("out_file", "bold_mask")]),
        (resample, acompcor, [("out_file", "realigned_file")]),
        (noise_mask, acompcor, [("out_file", "mask_files")]),
        (realign, confounds, [("par_file", "par_file")]),
        (fd, confounds, [("out_file", "fd_file")]),
        (dvars, confounds, [("out_all", "dvars_file")]),
        (acompcor, confounds, [("components_file", "acompcor_file")]),
        (resample, outputnode, [("out_file", "bold_std")]),
        (smooth, outputnode, [("out_file", "bold_smooth")]),
        (mask, outputnode, [("out_file", "mask")]),
        (confounds, outputnode, [("out_file", "confounds")]),
        (boldref_std, outputnode, [("out_file", "boldref_std")]),
    ])
    # fmt: on
    workflow.__desc__ = bold_description(
        fwhm=fwhm, realign_loops=realign_loops, slice_timing=bool(slice_times),
        compcor_components=compcor_components,
    )
    return workflow


def anat_description(*, skull_strip, t1w_to_template) -> str:
    """Methods sentence of the anatomical workflow, with tool versions."""
    import ants
    import nipype

    return (
        f"The T1w image was processed with a nipype {nipype.__version__} workflow: it was "
        f"brain-extracted (mode {skull_strip}: the MNI152NLin6Asym brain mask brought back "
        "through an affine registration to its whole-head template) and the T1w brain was "
        f"registered to the MNI152 template shipped with nilearn ({t1w_to_template}) with "
        f"ANTs (antspyx {ants.__version__}; linear stages at 1/6, 1/4 and 1/2 resolution, "
        "as in ANTs' quick protocol), the transforms composed into one displacement field."
    )


def bold_description(*, fwhm, realign_loops, slice_timing, compcor_components=5) -> str:
    """Methods sentence of the BOLD workflow, with tool versions."""
    import nipy
    import nipype

    stc = (
        "slice timing was corrected to the middle of the acquisition (cubic spline in time), "
        if slice_timing else ""
    )
    return (
        f"BOLD runs were preprocessed with a nipype {nipype.__version__} workflow: head "
        f"motion was estimated with nipy {nipy.__version__} ({realign_loops} realignment "
        f"loop(s) to the mean), {stc}the mean motion-corrected image was registered rigidly "
        "to the T1w brain with ANTs, and the series was resampled once to the template grid "
        "through the per-volume motion, BOLD-to-T1w and T1w-to-template transforms "
        f"together (trilinear), then smoothed with a {fwhm} mm FWHM Gaussian kernel. "
        "Framewise displacement (Power et al. 2012) and aCompCor "
        f"({compcor_components} components over template white matter and CSF; Behzadi et "
        "al. 2007) were computed with nipype's confounds algorithms, and DVARS with its "
        "standardised forms (Nichols 2013) as nipype computes them."
    )
