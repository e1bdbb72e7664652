# Coordinate-based meta-analysis: simulated (or given) coordinate sets, ALE per
# category, conjunction (MACM seed) and ALE subtraction. Python logic lives in
# common.smk (OUT, get_meta_dataset, get_meta_datasets); science in mirrorflow.meta.


rule meta_simulate:
    output:
        datasets=expand(
            f"{OUT}/meta/sourcedata/desc-{{category}}_coordinates.json",
            category=list(config["meta"]["categories"]),
        ),
        truth=f"{OUT}/meta/sourcedata/desc-truth_foci.json",
    log:
        f"{OUT}/logs/meta_simulate/meta_simulate.log",
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    params:
        categories=config["meta"]["categories"],
        shared_foci=config["meta"]["simulate"]["shared_foci"],
        n_experiments=config["meta"]["simulate"]["n_experiments"],
        sample_size=config["meta"]["simulate"]["sample_size"],
        n_noise_foci=config["meta"]["simulate"]["n_noise_foci"],
        fwhm=config["meta"]["simulate"]["fwhm"],
        seed=config["meta"]["simulate"]["seed"],
    script:
        "../workflow/scripts/meta_simulate.py"


rule meta_ale:
    input:
        dataset=get_meta_dataset,
    output:
        maps=expand(
            f"{OUT}/meta/ale/meta-{{category}}_{{map}}.nii.gz",
            map=ALE_MAPS,
            allow_missing=True,
        ),
        thresholded=f"{OUT}/meta/ale/meta-{{category}}_z_desc-thresholded.nii.gz",
        sidecar=f"{OUT}/meta/ale/meta-{{category}}_z_desc-thresholded.json",
    log:
        f"{OUT}/logs/meta_ale/meta-{{category}}.log",
    benchmark:
        f"{OUT}/logs/meta_ale/meta-{{category}}.bench.tsv"
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    params:
        voxel_thresh=config["meta"]["ale"]["cluster_forming_p"],
        alpha=config["meta"]["ale"]["alpha"],
        n_iters=config["meta"]["ale"]["n_iters"],
        seed=config["meta"]["ale"]["seed"],
    script:
        "../workflow/scripts/meta_ale.py"


rule meta_conjunction:
    input:
        maps=expand(
            f"{OUT}/meta/ale/meta-{{category}}_z_desc-thresholded.nii.gz",
            category=list(config["meta"]["categories"]),
        ),
    output:
        conjunction=f"{OUT}/meta/conjunction/meta-conjunction_z_desc-thresholded.nii.gz",
        conjunction_sidecar=f"{OUT}/meta/conjunction/meta-conjunction_z_desc-thresholded.json",
        mask=f"{OUT}/meta/conjunction/meta-conjunction_desc-seed_mask.nii.gz",
        mask_sidecar=f"{OUT}/meta/conjunction/meta-conjunction_desc-seed_mask.json",
    log:
        f"{OUT}/logs/meta_conjunction/meta-conjunction.log",
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    params:
        categories=list(config["meta"]["categories"]),
        seed_radius=config["macm"]["seed_radius"],
    script:
        "../workflow/scripts/meta_conjunction.py"


rule meta_contrast:
    input:
        datasets=get_meta_datasets,
    output:
        group1_gt_group2=f"{OUT}/meta/contrast/meta-contrast_z_desc-group1GtGroup2Thresholded.nii.gz",
        group2_gt_group1=f"{OUT}/meta/contrast/meta-contrast_z_desc-group2GtGroup1Thresholded.nii.gz",
        sidecars=[
            f"{OUT}/meta/contrast/meta-contrast_z_desc-group1GtGroup2Thresholded.json",
            f"{OUT}/meta/contrast/meta-contrast_z_desc-group2GtGroup1Thresholded.json",
        ],
        maps=expand(
            f"{OUT}/meta/contrast/meta-contrast_{{map}}.nii.gz", map=CONTRAST_MAPS
        ),
    log:
        f"{OUT}/logs/meta_contrast/meta-contrast.log",
    benchmark:
        f"{OUT}/logs/meta_contrast/meta-contrast.bench.tsv"
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    params:
        categories=list(config["meta"]["categories"]),
        voxel_thresh=config["meta"]["contrast"]["voxel_p"],
        n_iters=config["meta"]["contrast"]["n_iters"],
        seed=config["meta"]["contrast"]["seed"],
    script:
        "../workflow/scripts/meta_contrast.py"
