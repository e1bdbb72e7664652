# fMRIPrep derivatives, or another pipeline's normalised series, as input: each run's
# series, mask and confounds are checked, put on the workflow's template grid and
# smoothed, with the same outputs as rule preproc_bold.


rule preproc_import:
    input:
        bold=get_fmriprep("bold"),
        mask=get_fmriprep("mask"),
        confounds=get_fmriprep("confounds"),
        sidecars=get_bold_sidecars,
    output:
        **PREPROC,
        **PREPROC_SIDECARS,
    log:
        log_file("preproc_import"),
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        fwhm=config["preproc"]["fwhm"],
        resolution=config["preproc"]["resolution"],
        space=SPACE,
        pipeline="fMRIPrep" if LAYOUT == "fmriprep" else "another pipeline",
        smoothed=LAYOUT == "preprocessed" and _study["preprocessed"]["smoothed"],
    script:
        "../workflow/scripts/preproc_import.py"
