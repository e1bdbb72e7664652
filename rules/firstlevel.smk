# nilearn first-level GLM of each participant (or of each session, then the participant's
# fixed effects: firstlevel.sessions), contrasts from config.


rule firstlevel_glm:
    input:
        bold=get_model_runs(PREPROC["bold"]),
        masks=get_model_runs(PREPROC["mask"]),
        confounds=get_model_runs(PREPROC["confounds"]),
        events=get_model_events,
    output:
        maps=expand(
            GLM_MAP,
            contrast=list(config["firstlevel"]["contrasts"]),
            stat=["effect", "variance", "z", "t"],
            allow_missing=True,
        ),
        sidecars=expand(
            sidecar(GLM_MAP),
            contrast=list(config["firstlevel"]["contrasts"]),
            stat=["effect", "variance", "z", "t"],
            allow_missing=True,
        ),
        mask=GLM_MASK,
        mask_sidecar=sidecar(GLM_MASK),
        design=DESIGN,
        design_sidecar=sidecar(DESIGN),
        design_figure=report(
            DESIGN_FIGURE,
            caption="../report/design.rst",
            category="3. First level",
            subcategory="design matrices",
            labels=GLM_LABELS,
        ),
    log:
        log_file("firstlevel_glm"),
    benchmark:
        benchmark_file("firstlevel_glm")
    conda:
        "../envs/firstlevel.yaml"
    container:
        config["containers"]["firstlevel"]
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        contrasts=config["firstlevel"]["contrasts"],
        conditions=config["firstlevel"]["conditions"],
        confounds=[] if NO_MOTION else config["firstlevel"]["confounds"],
        hrf_model=config["firstlevel"]["hrf_model"],
        drift_model=config["firstlevel"]["drift_model"],
        high_pass=config["firstlevel"]["high_pass"],
        noise_model=config["firstlevel"]["noise_model"],
        modulation=config["firstlevel"]["modulation"],
        map_template=get_map_template(GLM_MAP),
    script:
        "../workflow/scripts/firstlevel_glm.py"


if FL_EACH:

    rule firstlevel_fixed:
        input:
            effects=get_session_files(GLM_MAP, stat="effect"),
            variances=get_session_files(GLM_MAP, stat="variance"),
            masks=get_session_files(GLM_MASK),
            designs=get_session_files(DESIGN),
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
        log:
            log_file("firstlevel_fixed"),
        conda:
            "../envs/firstlevel.yaml"
        container:
            config["containers"]["firstlevel"]
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            contrasts=list(config["firstlevel"]["contrasts"]),
            map_template=get_map_template(FIRSTLEVEL_MAP),
        script:
            "../workflow/scripts/firstlevel_fixed.py"
