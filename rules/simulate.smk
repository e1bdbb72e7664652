# The embedded, seeded simulated study (raw BIDS, or fMRIPrep-layout derivatives beside
# the events and participants) and its ground truth.


rule simulate_study:
    output:
        **SIM_OUTPUTS,
    log:
        log_file("simulate_study"),
    benchmark:
        benchmark_file("simulate_study")
    conda:
        "../envs/simulate.yaml"
    container:
        config["containers"]["simulate"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(20),
    params:
        simulation=config.get("simulation", {}),
        task=TASK,
        fmriprep_dir=FMRIPREP_DIR if LAYOUT == "fmriprep" else None,
    script:
        "../workflow/scripts/simulate_study.py"
