# The embedded, seeded simulated study (raw BIDS) and its ground truth.


rule simulate_study:
    output:
        description=f"{SIM_DIR}/bids/dataset_description.json",
        participants=f"{SIM_DIR}/bids/participants.tsv",
        participants_sidecar=f"{SIM_DIR}/bids/participants.json",
        task_sidecar=f"{SIM_DIR}/bids/task-{TASK}_bold.json",
        bold=expand(BOLD, zip, **RUN_PAIRS),
        bold_sidecars=expand(sidecar(BOLD), zip, **RUN_PAIRS),
        events=expand(EVENTS, zip, **RUN_PAIRS),
        t1w=expand(T1W, sub=SUBJECTS),
        t1w_sidecars=expand(sidecar(T1W), sub=SUBJECTS),
        truth=directory(f"{SIM_DIR}/truth"),
    log:
        f"{OUT}/logs/simulate_study.log",
    benchmark:
        f"{OUT}/logs/simulate_study.bench.tsv"
    conda:
        "../envs/simulate.yaml"
    container:
        config["containers"]["simulate"]
    params:
        simulation=config.get("simulation", {}),
        task=TASK,
    script:
        "../workflow/scripts/simulate_study.py"
