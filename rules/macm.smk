# Meta-analytic connectivity modelling: the conjunction clusters as seed, the
# Neurosynth v7 database (converted once to a NiMARE Dataset) as reference.


rule macm_reference:
    input:
        coordinates=f"{config['macm']['reference_dir']}/data-neurosynth_version-7_coordinates.tsv.gz",
        metadata=f"{config['macm']['reference_dir']}/data-neurosynth_version-7_metadata.tsv.gz",
    output:
        dataset=f"{OUT}/macm/reference/data-neurosynth_version-7_dataset.pkl",
    log:
        f"{OUT}/logs/macm_reference/macm_reference.log",
    benchmark:
        f"{OUT}/logs/macm_reference/macm_reference.bench.tsv"
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    script:
        "../workflow/scripts/macm_reference.py"


rule macm_ale:
    input:
        seed=f"{OUT}/meta/conjunction/meta-conjunction_desc-seed_mask.nii.gz",
        reference=f"{OUT}/macm/reference/data-neurosynth_version-7_dataset.pkl",
    output:
        maps=expand(f"{OUT}/macm/meta-macm_{{map}}.nii.gz", map=MACM_MAPS),
        thresholded=f"{OUT}/macm/meta-macm_z_desc-thresholded.nii.gz",
        sidecar=f"{OUT}/macm/meta-macm_z_desc-thresholded.json",
        experiments=f"{OUT}/macm/meta-macm_experiments.tsv",
    log:
        f"{OUT}/logs/macm_ale/meta-macm.log",
    benchmark:
        f"{OUT}/logs/macm_ale/meta-macm.bench.tsv"
    conda:
        "../envs/meta.yaml"
    container:
        config["containers"]["meta"]
    params:
        assumed_sample_size=config["macm"]["assumed_sample_size"],
        alpha=config["macm"]["alpha"],
        n_iters=config["macm"]["n_iters"],
        seed=config["macm"]["seed"],
    script:
        "../workflow/scripts/macm_ale.py"
