# Group maps (one-sample), regressions on behaviour, their overlap, and the behavioural
# correlation.


rule group_mask:
    input:
        get_group_masks,
    output:
        GROUP_MASK,
    log:
        f"{OUT}/logs/group_mask/group_mask.log",
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    script:
        "../workflow/scripts/group_mask.py"


rule group_model:
    input:
        maps=get_group_maps,
        mask=GROUP_MASK,
        participants=PARTICIPANTS,
        qc=QC_TABLE,
    output:
        z=GROUP_Z,
        thresholded=GROUP_THR,
        z_sidecar=sidecar(GROUP_Z),
        thresholded_sidecar=sidecar(GROUP_THR),
        design=GROUP_DESIGN,
    log:
        f"{OUT}/logs/group_model/contrast-{{contrast}}_model-{{model}}.log",
    benchmark:
        f"{OUT}/logs/group_model/contrast-{{contrast}}_model-{{model}}.bench.tsv"
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    params:
        subjects=get_included_subjects,
        covariate=get_covariate,
        threshold=config["group"]["threshold"],
    script:
        "../workflow/scripts/group_model.py"


rule group_overlap:
    input:
        get_overlap_inputs,
    output:
        conjunction=GROUP_OVERLAP,
        sidecar=sidecar(GROUP_OVERLAP),
    log:
        f"{OUT}/logs/group_overlap/group_overlap.log",
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    script:
        "../workflow/scripts/group_overlap.py"


rule group_behaviour:
    input:
        participants=PARTICIPANTS,
        qc=QC_TABLE,
    output:
        BEHAVIOUR,
    log:
        f"{OUT}/logs/group_behaviour/group_behaviour.log",
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    params:
        **config["behaviour"],
        subjects=get_included_subjects,
    script:
        "../workflow/scripts/group_behaviour.py"
