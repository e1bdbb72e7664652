# nipype preprocessing of each BOLD run (motion, registration to MNI, smoothing, confounds).


rule preproc_bold:
    input:
        bold=BOLD,
        t1w=T1W,
    output:
        **PREPROC,
    params:
        fwhm=config["preproc"]["fwhm"],
        resolution=config["preproc"]["resolution"],
        realign_loops=config["preproc"]["realign_loops"],
        t1w_to_template=config["preproc"]["t1w_to_template"],
        seed=config["preproc"]["seed"],
        work_dir=f"{OUT}/work/preproc/sub-{{sub}}_run-{{run}}",
    threads: 1
    resources:
        mem_mb=3000,
    log:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.log",
    benchmark:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.bench.tsv"
    conda:
        "../envs/preproc.yaml"
    script:
        "../workflow/scripts/preproc_bold.py"


rule derivatives_description:
    output:
        f"{OUT}/{{stage}}/dataset_description.json",
    params:
        source=BIDS_DIR,
    wildcard_constraints:
        stage="preproc|firstlevel|group|meta|macm",
    log:
        f"{OUT}/logs/derivatives_description/{{stage}}.log",
    conda:
        "../envs/nilearn.yaml"
    script:
        "../workflow/scripts/derivatives_description.py"
