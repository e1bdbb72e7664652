# nipype preprocessing of each BOLD run (motion, registration to MNI, smoothing, confounds).


rule preproc_bold:
    input:
        bold=BOLD,
        t1w=T1W,
    output:
        **PREPROC,
        **PREPROC_SIDECARS,
    log:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.log",
    benchmark:
        f"{OUT}/logs/preproc_bold/sub-{{sub}}_run-{{run}}.bench.tsv"
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    params:
        fwhm=config["preproc"]["fwhm"],
        resolution=config["preproc"]["resolution"],
        realign_loops=config["preproc"]["realign_loops"],
        t1w_to_template=config["preproc"]["t1w_to_template"],
        skull_strip=config["preproc"]["skull_strip"],
        seed=config["preproc"]["seed"],
        work_dir=get_preproc_workdir,
    script:
        "../workflow/scripts/preproc_bold.py"


# JSON only: the small group environment serves every stage.
rule derivatives_description:
    output:
        f"{OUT}/{{stage}}/dataset_description.json",
    log:
        f"{OUT}/logs/derivatives_description/{{stage}}.log",
    wildcard_constraints:
        stage="preproc|firstlevel|group|meta|macm",
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    params:
        source=BIDS_DIR,
    script:
        "../workflow/scripts/derivatives_description.py"
