# nipype preprocessing of raw BIDS: one anatomical workflow per subject, or per session
# (preproc.t1w; brain extraction, T1w-to-MNI registration), one BOLD workflow per run
# (slice timing, motion, BOLD-to-T1w, a single resampling to MNI, smoothing, confounds).


rule preproc_anat:
    input:
        t1w=get_t1w,
    output:
        **ANAT,
        **ANAT_SIDECARS,
    log:
        log_file("preproc_anat"),
    benchmark:
        benchmark_file("preproc_anat")
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    # One subject (or session) per job: nipype runs its nodes one at a time.
    # Per-subject and per-run rules (thousands of jobs) use plain numbers, evaluated once
    # per job in every dry run; sized for a 2 mm grid, so they are not retried with more.
    resources:
        mem_mb=3000,
        runtime=20,
    params:
        resolution=config["preproc"]["resolution"],
        t1w_to_template=config["preproc"]["t1w_to_template"],
        skull_strip=config["preproc"]["skull_strip"],
        seed=config["preproc"]["seed"],
        work_dir=get_anat_workdir,
    script:
        "../workflow/scripts/preproc_anat.py"


rule preproc_bold:
    input:
        bold=get_bold,
        sidecars=get_bold_sidecars,
        t1w_brain=ANAT["brain"],
        xfm=ANAT["xfm"],
        t1w_mask_std=ANAT["mask_std"],
    output:
        **PREPROC,
        **PREPROC_SIDECARS,
    log:
        log_file("preproc_bold"),
    benchmark:
        benchmark_file("preproc_bold")
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    # One run per job, one ITK thread (a repeatable ANTs registration).
    resources:
        mem_mb=6000,
        runtime=30,
    params:
        fwhm=config["preproc"]["fwhm"],
        resolution=config["preproc"]["resolution"],
        realign_loops=config["preproc"]["realign_loops"],
        slice_timing=config["preproc"]["slice_timing"],
        compcor_components=config["preproc"]["compcor_components"],
        seed=config["preproc"]["seed"],
        work_dir=get_preproc_workdir,
    script:
        "../workflow/scripts/preproc_bold.py"
