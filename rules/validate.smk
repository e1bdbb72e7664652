# Input validation: one job checks every input file (BOLD series read to their last byte,
# TR against the header, events against the run, anatomy, participants' scores) before
# any heavy job, and writes a report with each file's checksum. A bad input stops the
# workflow here with one message per file.


rule validate_inputs:
    input:
        unpack(get_validation_inputs),
    output:
        VALIDATION,
    log:
        f"{OUT}/logs/validate_inputs/validate_inputs.log",
    benchmark:
        f"{OUT}/logs/validate_inputs/validate_inputs.bench.tsv"
    conda:
        "../envs/preproc.yaml"
    container:
        config["containers"]["preproc"]
    params:
        subjects=SUBJECTS,
        columns=PARTICIPANT_COLUMNS,
        conditions=config["firstlevel"]["conditions"],
    script:
        "../workflow/scripts/validate_inputs.py"
