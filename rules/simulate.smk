# The embedded, seeded simulated study (raw BIDS, or fMRIPrep-layout derivatives beside
# the events and participants) and its ground truth.


rule simulate_study:
    output:
        **SIM_OUTPUTS,
    log:
        f"{OUT}/logs/simulate_study/simulate_study.log",
    benchmark:
        BENCHMARKS["simulate_study"]
    conda:
        "../envs/simulate.yaml"
    container:
        config["containers"]["simulate"]
    params:
        simulation=config.get("simulation", {}),
        task=TASK,
        fmriprep_dir=FMRIPREP_DIR if LAYOUT == "fmriprep" else None,
    script:
        "../workflow/scripts/simulate_study.py"
