# nipype preprocessing of each BOLD run (motion, registration to MNI, smoothing, confounds).


rule preproc_bold:
    input:
        bold=BOLD,
        t1w=T1W,
    output:
        **PREPROC,
    log:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.log",
    benchmark:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.bench.tsv"
    conda:
        "../envs/preproc.yaml"
    threads: 1
    resources:
        mem_mb=3000,
    params:
        fwhm=config["preproc"]["fwhm"],
        resolution=config["preproc"]["resolution"],
        realign_loops=config["preproc"]["realign_loops"],
        t1w_to_template=config["preproc"]["t1w_to_template"],
        skull_strip=config["preproc"]["skull_strip"],
        seed=config["preproc"]["seed"],
        work_dir=f"{OUT}/work/preproc/sub-{{sub}}_run-{{run}}",
    script:
        "../workflow/scripts/preproc_bold.py"


rule derivatives_description:
    output:
        f"{OUT}/{{stage}}/dataset_description.json",
    log:
        f"{OUT}/logs/derivatives_description/{{stage}}.log",
    wildcard_constraints:
        stage="preproc|firstlevel|group|meta|macm",
    conda:
        "../envs/nilearn.yaml"
    params:
        source=BIDS_DIR,
    script:
        "../workflow/scripts/derivatives_description.py"
