# Meta-analytic connectivity modelling: the seed (conjunction clusters by default),
# experiments of the reference database (Neurosynth v7, converted once to a NiMARE
# Dataset) with a focus in it, their ALE with voxel-level FWE and, from the same fit, each
# experiment's contribution to each cluster.


rule macm_reference:
    input:
        coordinates=f"{config['macm']['reference_dir']}/data-neurosynth_version-7_coordinates.tsv.gz",
        metadata=f"{config['macm']['reference_dir']}/data-neurosynth_version-7_metadata.tsv.gz",
    output:
        dataset=MACM_REFERENCE,
    log:
        log_file("macm_reference"),
    benchmark:
        benchmark_file("macm_reference")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(20),
    script:
        "../workflow/scripts/macm_reference.py"


rule macm_seed:
    input:
        unpack(get_macm_seed_inputs),
    output:
        mask=MACM_SEED,
        sidecar=sidecar(MACM_SEED),
    log:
        log_file("macm_seed"),
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        seeds=config["macm"]["seeds"],
    script:
        "../workflow/scripts/macm_seed.py"


# One job per shard of the MACM's Monte Carlo null (mirrorflow.meta.null).
rule macm_null:
    input:
        seed=MACM_SEED,
        reference=MACM_REFERENCE,
    output:
        MACM_NULL,
    log:
        log_file("macm_null"),
    benchmark:
        benchmark_file("macm_null")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    # The null runs on mirrorflow's engine (~0.7 GB).
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(60),
    params:
        shards=config["macm"]["shards"],
        assumed_sample_size=config["macm"]["assumed_sample_size"],
        n_iters=config["macm"]["n_iters"],
        seed=config["macm"]["seed"],
        # the FWE alpha matters to the null only through its early stop
        early_stop=MACM_STOP,
    script:
        "../workflow/scripts/macm_null.py"


rule macm_ale:
    input:
        seed=MACM_SEED,
        reference=MACM_REFERENCE,
        nulls=expand(MACM_NULL, shard=range(config["macm"]["shards"])),
    output:
        maps=expand(MACM_MAP, map=MACM_MAPS),
        map_sidecars=expand(sidecar(MACM_MAP), map=MACM_MAPS),
        thresholded=META_THR["macm"],
        sidecar=sidecar(META_THR["macm"]),
        experiments=MACM_EXPERIMENTS,
        experiments_sidecar=sidecar(MACM_EXPERIMENTS),
        contributions=MACM_CONTRIBUTIONS,
        contributions_sidecar=sidecar(MACM_CONTRIBUTIONS),
    log:
        log_file("macm_ale"),
    benchmark:
        benchmark_file("macm_ale")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    # Two cores for the FocusCounter. The ALE fit of the ~4,300 experiments the default
    # seed selects, a chunk of experiments at a time, peaks at 1.35 GB (the job checks
    # mirrorflow.meta.macm.macm_memory_mb against what it was granted before the fit).
    threads: 2
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(60),
    params:
        assumed_sample_size=config["macm"]["assumed_sample_size"],
        alpha=config["macm"]["alpha"],
        n_iters=config["macm"]["n_iters"],
        seed=config["macm"]["seed"],
        early_stop=config["macm"]["early_stop"],
        contributions=config["macm"]["contributions"],
    script:
        "../workflow/scripts/macm_ale.py"
