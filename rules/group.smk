# Group maps (one-sample), regressions on behaviour, their overlap, and the behavioural
# correlation.


rule group_mask:
    input:
        get_group_masks,
    output:
        mask=GROUP_MASK,
        sidecar=sidecar(GROUP_MASK),
    log:
        log_file("group_mask"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    script:
        "../workflow/scripts/group_mask.py"


rule group_model:
    input:
        participants=get_participants,
        maps=get_group_maps,
        mask=GROUP_MASK,
        qc=QC_TABLE,
    output:
        z=GROUP_Z,
        z_sidecar=sidecar(GROUP_Z),
        design=GROUP_DESIGN,
        design_sidecar=sidecar(GROUP_DESIGN),
    log:
        log_file("group_model"),
    benchmark:
        benchmark_file("group_model")
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(20),
    params:
        subjects=get_model_subjects,
        left_out=get_model_left_out,
        spec=get_group_model,
    script:
        "../workflow/scripts/group_model.py"


# Permutation inference only: one job per shard of the permutation blocks.
rule group_null:
    input:
        participants=get_participants,
        maps=get_group_maps,
        mask=GROUP_MASK,
        qc=QC_TABLE,
    output:
        GROUP_NULL,
    log:
        log_file("group_null"),
    benchmark:
        benchmark_file("group_null")
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    # One shard of the permutation blocks per job.
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(60),
    params:
        subjects=get_model_subjects,
        spec=get_group_model,
        inference=INFERENCE_NULL,
    script:
        "../workflow/scripts/group_null.py"


rule group_threshold:
    input:
        participants=get_participants,
        z=GROUP_Z,
        maps=get_group_maps,
        mask=GROUP_MASK,
        qc=QC_TABLE,
        nulls=get_null_shards,
    output:
        **(
            {"logp": GROUP_LOGP, "logp_sidecar": sidecar(GROUP_LOGP)}
            if PERMUTATION
            else {}
        ),
        thresholded=GROUP_THR,
        thresholded_sidecar=sidecar(GROUP_THR),
        clusters=group_report(GROUP_CLUSTERS, "clusters", caption="group_clusters"),
        clusters_sidecar=sidecar(GROUP_CLUSTERS),
        glassbrain=group_report(
            group_figure("glassbrain"), "glass brain", caption="group_map"
        ),
        slices=group_report(group_figure("slices"), "slices", caption="group_map"),
    log:
        log_file("group_threshold"),
    benchmark:
        benchmark_file("group_threshold")
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        subjects=get_model_subjects,
        spec=get_group_model,
        inference=INFERENCE_THRESHOLD,
        atlas=config["group"]["atlas"],
    script:
        "../workflow/scripts/group_threshold.py"


rule group_overlap:
    input:
        get_overlap_inputs,
    output:
        conjunction=GROUP_OVERLAP,
        sidecar=sidecar(GROUP_OVERLAP),
        clusters=group_report(OVERLAP_CLUSTERS, "clusters", **OVERLAP_REPORT),
        glassbrain=group_report(
            OVERLAP_FIGURES["glassbrain"], "glass brain", **OVERLAP_REPORT
        ),
        slices=group_report(OVERLAP_FIGURES["slices"], "slices", **OVERLAP_REPORT),
        clusters_sidecar=sidecar(OVERLAP_CLUSTERS),
    log:
        log_file("group_overlap"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        atlas=config["group"]["atlas"],
    script:
        "../workflow/scripts/group_overlap.py"


rule group_behaviour:
    input:
        participants=PARTICIPANTS,
        qc=QC_TABLE,
    output:
        correlation=BEHAVIOUR,
        figure=report(
            BEHAVIOUR_FIGURE,
            caption="../report/behaviour.rst",
            category="5. Behaviour",
            labels={"figure": "scatter"},
        ),
    log:
        log_file("group_behaviour"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        **config["behaviour"],
        subjects=get_behaviour_subjects,
    script:
        "../workflow/scripts/group_behaviour.py"
