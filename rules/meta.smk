# Coordinate-based meta-analysis: each category's coordinates (Sleuth, NiMARE JSON,
# reference-database ids or simulated) normalised to NiMARE JSON, ALE per category,
# conjunction, ALE subtraction both ways, and for every thresholded map a cluster table
# with atlas labels and a glass brain. Paths and input functions live in common.smk;
# science in mirrorflow.meta.


rule meta_simulate:
    output:
        datasets=expand(META_SIMULATED, category=list(SIM_CATEGORIES)),
        truth=META_TRUTH,
    log:
        log_file("meta_simulate"),
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        categories=SIM_CATEGORIES,
        shared_foci=config["meta"]["simulate"]["shared_foci"],
        n_experiments=config["meta"]["simulate"]["n_experiments"],
        sample_size=config["meta"]["simulate"]["sample_size"],
        n_noise_foci=config["meta"]["simulate"]["n_noise_foci"],
        fwhm=config["meta"]["simulate"]["fwhm"],
        seed=config["meta"]["simulate"]["seed"],
    script:
        "../workflow/scripts/meta_simulate.py"


rule meta_inputs:
    input:
        source=get_category_source,
    output:
        dataset=META_COORDS,
        summary=META_COORDS_SUMMARY,
    log:
        log_file("meta_inputs"),
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        spec=lambda wildcards: config["meta"]["categories"][wildcards.category],
        assumed_sample_size=config["macm"]["assumed_sample_size"],
    script:
        "../workflow/scripts/meta_inputs.py"


# One job per shard of the Monte Carlo null's seeded blocks (mirrorflow.meta.null).
rule meta_ale_null:
    input:
        dataset=META_COORDS,
    output:
        ALE_NULL,
    log:
        log_file("meta_ale_null"),
    benchmark:
        benchmark_file("meta_ale_null")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    # One shard of the Monte Carlo null per job.
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(60),
    params:
        shards=config["meta"]["ale"]["shards"],
        voxel_thresh=config["meta"]["ale"]["cluster_forming_p"],
        n_iters=config["meta"]["ale"]["n_iters"],
        seed=config["meta"]["ale"]["seed"],
        # the FWE level and alpha matter to the null only through its early stop
        early_stop=ALE_STOP,
    script:
        "../workflow/scripts/meta_ale_null.py"


rule meta_ale:
    input:
        dataset=META_COORDS,
        nulls=get_ale_null_shards,
    output:
        maps=expand(ALE_MAP, map=ALE_MAPS, allow_missing=True),
        map_sidecars=expand(sidecar(ALE_MAP), map=ALE_MAPS, allow_missing=True),
        thresholded=ALE_THR,
        sidecar=sidecar(ALE_THR),
    log:
        log_file("meta_ale"),
    benchmark:
        benchmark_file("meta_ale")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(60),
    params:
        level=config["meta"]["ale"]["level"],
        voxel_thresh=config["meta"]["ale"]["cluster_forming_p"],
        alpha=config["meta"]["ale"]["alpha"],
        n_iters=config["meta"]["ale"]["n_iters"],
        seed=config["meta"]["ale"]["seed"],
        early_stop=config["meta"]["ale"]["early_stop"],
    script:
        "../workflow/scripts/meta_ale.py"


rule meta_contributions:
    input:
        dataset=META_COORDS,
        thresholded=ALE_THR,
    output:
        table=META_CONTRIBUTIONS,
        sidecar=sidecar(META_CONTRIBUTIONS),
    log:
        log_file("meta_contributions"),
    benchmark:
        benchmark_file("meta_contributions")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    # NiMARE's Jackknife on two loky workers was no faster than on one core (the
    # 112-study contagion set: 134 s against 124 s; each worker imports NiMARE again).
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(60),
    params:
        method=config["meta"]["ale"]["contributions"],
    script:
        "../workflow/scripts/meta_contributions.py"


rule meta_conjunction:
    input:
        maps=expand(ALE_THR, category=META_CATEGORIES),
    output:
        conjunction=META_THR["conjunction"],
        sidecar=sidecar(META_THR["conjunction"]),
    log:
        log_file("meta_conjunction"),
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        categories=META_CATEGORIES,
    script:
        "../workflow/scripts/meta_conjunction.py"


# One job per shard of the subtraction's permutations (NiMARE's own, in blocks).
rule meta_contrast_null:
    input:
        datasets=get_category_datasets,
    output:
        CONTRAST_NULL,
    log:
        log_file("meta_contrast_null"),
    benchmark:
        benchmark_file("meta_contrast_null")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    # One shard of NiMARE's permutations per job.
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(120),
    params:
        categories=META_CATEGORIES,
        shards=config["meta"]["contrast"]["shards"],
        n_iters=config["meta"]["contrast"]["n_iters"],
        seed=config["meta"]["contrast"]["seed"],
    script:
        "../workflow/scripts/meta_contrast_null.py"


rule meta_contrast:
    input:
        datasets=get_category_datasets,
        nulls=expand(CONTRAST_NULL, shard=range(config["meta"]["contrast"]["shards"])),
        gates=get_contrast_gates,
    output:
        directions=[META_THR[d] for d in CONTRAST_DIRECTIONS],
        sidecars=[sidecar(META_THR[d]) for d in CONTRAST_DIRECTIONS],
        maps=expand(CONTRAST_MAP, map=CONTRAST_MAPS),
        map_sidecars=expand(sidecar(CONTRAST_MAP), map=CONTRAST_MAPS),
    log:
        log_file("meta_contrast"),
    benchmark:
        benchmark_file("meta_contrast")
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    params:
        categories=META_CATEGORIES,
        voxel_thresh=config["meta"]["contrast"]["voxel_p"],
        min_cluster_mm3=config["meta"]["contrast"]["min_cluster_mm3"],
        n_iters=config["meta"]["contrast"]["n_iters"],
        seed=config["meta"]["contrast"]["seed"],
    script:
        "../workflow/scripts/meta_contrast.py"


# One rule for every thresholded map of the meta-analysis and MACM (META_PREFIX):
# folder is meta/ale, meta/conjunction, meta/contrast or macm.
rule meta_clusters:
    input:
        thresholded=f"{OUT}/{{folder}}/meta-{{name}}_z_desc-thresholded.nii.gz",
    output:
        table=report(
            f"{OUT}/{{folder}}/meta-{{name}}_clusters.tsv",
            caption="../report/meta_clusters.rst",
            category="6. Meta-analysis and MACM",
            subcategory="{name}",
            labels={"map": "{name}", "view": "clusters"},
        ),
        sidecar=f"{OUT}/{{folder}}/meta-{{name}}_clusters.json",
        figure=report(
            f"{OUT}/{{folder}}/meta-{{name}}_glassbrain.png",
            caption="../report/meta_map.rst",
            category="6. Meta-analysis and MACM",
            subcategory="{name}",
            labels={"map": "{name}", "view": "glass brain"},
        ),
    log:
        log_file("meta_clusters"),
    wildcard_constraints:
        folder="meta/ale|meta/conjunction|meta/contrast|macm",
        name="[A-Za-z0-9]+",
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        atlases=config["meta"]["atlases"],
        title=lambda wildcards: f"meta-{wildcards.name}",
    script:
        "../workflow/scripts/meta_clusters.py"
