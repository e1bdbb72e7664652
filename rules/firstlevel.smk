# nilearn first-level GLM of each participant, contrasts from config.


rule firstlevel_glm:
    input:
        bold=get_subject_runs(PREPROC["bold"]),
        masks=get_subject_runs(PREPROC["mask"]),
        confounds=get_subject_runs(PREPROC["confounds"]),
        events=get_subject_events,
    output:
        maps=expand(
            FIRSTLEVEL_MAP,
            contrast=list(config["firstlevel"]["contrasts"]),
            stat=["effect", "variance", "z", "t"],
            allow_missing=True,
        ),
        sidecars=expand(
            sidecar(FIRSTLEVEL_MAP),
            contrast=list(config["firstlevel"]["contrasts"]),
            stat=["effect", "variance", "z", "t"],
            allow_missing=True,
        ),
        mask=FIRSTLEVEL_MASK,
        mask_sidecar=sidecar(FIRSTLEVEL_MASK),
        design=DESIGN,
        design_sidecar=sidecar(DESIGN),
        design_figure=report(
            DESIGN_FIGURE,
            caption="../report/design.rst",
            category="3. First level",
            subcategory="design matrices",
            labels={"subject": "sub-{sub}"},
        ),
    log:
        f"{OUT}/logs/firstlevel_glm/sub-{{sub}}.log",
    benchmark:
        BENCHMARKS["firstlevel_glm"]
    conda:
        "../envs/firstlevel.yaml"
    container:
        config["containers"]["firstlevel"]
    params:
        contrasts=config["firstlevel"]["contrasts"],
        conditions=config["firstlevel"]["conditions"],
        confounds=[] if NO_MOTION else config["firstlevel"]["confounds"],
        hrf_model=config["firstlevel"]["hrf_model"],
        drift_model=config["firstlevel"]["drift_model"],
        high_pass=config["firstlevel"]["high_pass"],
        noise_model=config["firstlevel"]["noise_model"],
        map_template=get_firstlevel_template,
    script:
        "../workflow/scripts/firstlevel_glm.py"
