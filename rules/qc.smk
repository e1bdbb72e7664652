# Quality control of every preprocessed run (figures and metrics), the study's QC table
# with exclusions (a checkpoint: later stages use only the included runs), and the
# derivatives' dataset_description.json files.


rule preproc_qc:
    input:
        bold=PREPROC["bold_unsmoothed"],
        mask=PREPROC["mask"],
        confounds=PREPROC["confounds"],
        boldref=PREPROC["boldref"],
    output:
        metrics=QC["metrics"],
        motion=report(
            QC["motion"],
            caption="../report/qc_motion.rst",
            category="2. Quality control",
            subcategory="sub-{sub}",
            labels={"run": RUN_ID, "figure": "motion"},
        ),
        carpet=report(
            QC["carpet"],
            caption="../report/qc_carpet.rst",
            category="2. Quality control",
            subcategory="sub-{sub}",
            labels={"run": RUN_ID, "figure": "carpet"},
        ),
        registration=report(
            QC["registration"],
            caption="../report/qc_registration.rst",
            category="2. Quality control",
            subcategory="sub-{sub}",
            labels={"run": RUN_ID, "figure": "registration"},
        ),
    log:
        log_file("preproc_qc"),
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    resources:
        mem_mb=3000,
        runtime=10,
    params:
        resolution=config["preproc"]["resolution"],
        fd_spike=config["qc"]["fd_spike"],
        templates_dir=get_templates_workdir,
    script:
        "../workflow/scripts/preproc_qc.py"


checkpoint preproc_qc_table:
    input:
        metrics=expand(QC["metrics"], zip, **RUN_PAIRS),
    output:
        table=report(
            QC_TABLE,
            caption="../report/qc_table.rst",
            category="2. Quality control",
            subcategory="exclusions",
            labels={"run": "all runs", "figure": "QC table"},
        ),
        sidecar=sidecar(QC_TABLE),
    log:
        log_file("preproc_qc_table"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        runs=get_qc_run_keys(),
        max_mean_fd=None if NO_MOTION else config["qc"]["max_mean_fd"],
        fd_spike=config["qc"]["fd_spike"],
    script:
        "../workflow/scripts/preproc_qc_table.py"


# JSON only: the small group environment serves every stage.
rule derivatives_description:
    output:
        f"{OUT}/{{stage}}/dataset_description.json",
    log:
        log_file("derivatives_description"),
    wildcard_constraints:
        stage="preproc|firstlevel|group|meta|macm",
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(500),
        runtime=per_attempt(5),
    params:
        source=SOURCE_DIR,
    script:
        "../workflow/scripts/derivatives_description.py"
