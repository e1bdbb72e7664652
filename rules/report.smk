# The study report: per-rule runtimes from the benchmark files, and the methods section
# with the regions found beside those of the model studies. `snakemake --report` gathers
# these and every output marked report() in the other rule files into one HTML file.


rule report_runtimes:
    input:
        get_benchmarks,
    output:
        jobs=report(
            RUNTIMES,
            caption="../report/runtimes.rst",
            category="7. Runtimes",
            labels={"runtimes": "per job"},
        ),
        jobs_sidecar=sidecar(RUNTIMES),
        rules=report(
            RUNTIMES_SUMMARY,
            caption="../report/runtimes.rst",
            category="7. Runtimes",
            labels={"runtimes": "per rule"},
        ),
        rules_sidecar=sidecar(RUNTIMES_SUMMARY),
        figure=report(
            RUNTIMES_FIGURE,
            caption="../report/runtimes.rst",
            category="7. Runtimes",
            labels={"runtimes": "per rule, figure"},
        ),
    log:
        log_file("report_runtimes"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    script:
        "../workflow/scripts/report_runtimes.py"


rule report_methods:
    input:
        unpack(get_methods_inputs),
    output:
        methods=report(
            METHODS,
            caption="../report/methods.rst",
            category="1. Methods",
            labels={"document": "methods"},
        ),
        regions=report(
            REGIONS,
            caption="../report/regions.rst",
            category="1. Methods",
            labels={"document": "regions against the model studies"},
        ),
        regions_sidecar=sidecar(REGIONS),
    log:
        log_file("report_methods"),
    conda:
        "../envs/group.yaml"
    container:
        config["containers"]["group"]
    params:
        group_names=[f"{c}/{m}" for c, m in GROUP_MODELS],
        categories=META_CATEGORIES,
        directions=CONTRAST_DIRECTIONS,
    script:
        "../workflow/scripts/report_methods.py"
