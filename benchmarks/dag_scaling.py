#!/usr/bin/env python3
"""Dry-run scaling of mirrorflow on large raw BIDS trees, against a bare Snakemake DAG.

Requirement checked (the dataset is indexed once per invocation, not per rule or job):
a dry run over a generated tree of empty files takes at most 1.5x the time of a bare
Snakemake DAG with the same job count. pybids' BIDSLayout indexing time of the same tree
is printed for comparison.

For each subject count N this script

1. writes a raw BIDS tree: N subjects (sub-0001 ...), each with an empty anat T1w and
   ``--runs`` task-imitation runs (empty bold.nii.gz and events.tsv, a bold.json with
   RepetitionTime), dataset_description.json and a numeric participants.tsv;
2. dry-runs mirrorflow on it (``snakemake -n --quiet rules``, the repository's Snakefile
   and config/config.yaml plus an overlay config: study.source bids, study.bids_dir the
   tree, output_dir ``results`` in a fresh working directory, macm.reference_dir the
   repository's resources/neurosynth). The job count is the ``total`` row of Snakemake's
   "Job stats" table of that same timed run (``--quiet rules`` hides the per-job blocks
   but keeps that table, ``--quiet`` alone would hide it too);
3. writes and dry-runs a bare Snakefile with the same job count, rule by rule: each
   mirrorflow rule of the dry run becomes a bare rule with as many jobs (per-subject,
   per-run or aggregate, chained as in mirrorflow); shell rules, one output file per job,
   no input functions, no workflow profile (see write_bare_snakefile);
4. times ``bids.BIDSLayout(tree, validate=False)`` and ``bids.BIDSLayout(tree)`` (the
   default, validate=True) in fresh interpreters, import time reported apart.

Snakemake times are wall clock of the whole command (interpreter start, imports, parse,
DAG), best of ``--repeats`` runs, mirrorflow and bare runs interleaved. Stdlib only here;
the children need snakemake and (for step 4) pybids in the interpreter running this.

Usage: python benchmarks/dag_scaling.py [--subjects 100 1000 2000] [--runs 2]
       [--repeats 3] [--keep DIR] [--cprofile DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_RATIO = 1.5
TASK = "imitation"


# ----------------------------------------------------------------------------- data
def make_bids_tree(root: Path, n_subjects: int, n_runs: int) -> None:
    """Raw BIDS tree of empty images; reused when ``root`` already holds the same one."""
    marker = root / ".dag_scaling.json"
    spec = {"subjects": n_subjects, "runs": n_runs, "task": TASK}
    if marker.exists() and json.loads(marker.read_text()) == spec:
        return
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "dag_scaling", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
    )
    rows = ["participant_id\tage\tsex\teq\taccuracy"]
    sidecar = json.dumps({"RepetitionTime": 2.0, "TaskName": TASK})
    for i in range(1, n_subjects + 1):
        sub = f"{i:04d}"
        rows.append(f"sub-{sub}\t{20 + i % 30}\t{i % 2}\t{30 + i % 40}\t{(i % 100) / 100:.2f}")
        anat = root / f"sub-{sub}" / "anat"
        func = root / f"sub-{sub}" / "func"
        anat.mkdir(parents=True)
        func.mkdir()
        (anat / f"sub-{sub}_T1w.nii.gz").touch()
        for run in range(1, n_runs + 1):
            stem = func / f"sub-{sub}_task-{TASK}_run-{run}"
            Path(f"{stem}_bold.nii.gz").touch()
            Path(f"{stem}_events.tsv").touch()
            Path(f"{stem}_bold.json").write_text(sidecar)
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    marker.write_text(json.dumps(spec))


def write_bare_snakefile(
    path: Path, rule_counts: dict[str, int], n_subjects: int, n_runs: int
) -> str:
    """A Snakefile with mirrorflow's per-rule job counts (so the same total); returns its
    shape in words.

    Each mirrorflow rule becomes one bare rule with as many jobs: a rule with one job per
    run becomes a per-run rule (wildcards sub, run), one with one job per subject a
    per-subject rule (wildcard sub), any other an aggregate rule (wildcard a). Per-subject
    rules come first, per-run rules follow in a chain (the first reads its subject's
    per-subject outputs), the first aggregate job reads every output of the last per-run
    (or per-subject) rule and the other aggregates read that one file; ``all`` reads every
    output that nothing else reads. One output file per job, shell rules, no input
    functions, no profile.
    """
    n_run_jobs = n_subjects * n_runs
    counts = {name: c for name, c in rule_counts.items() if name != "all"}
    per_run = [n for n, c in counts.items() if c == n_run_jobs]
    per_sub = [n for n, c in counts.items() if c == n_subjects and n not in per_run]
    aggregates = [n for n in counts if n not in per_run and n not in per_sub]
    aggregates.sort(key=lambda n: counts[n] != 1)  # a one-job rule reads the fine outputs
    lines = [
        f"# Generated by benchmarks/dag_scaling.py: {sum(counts.values()) + 1} jobs, the "
        "per-rule job counts of a mirrorflow dry run.",
        f'SUBJECTS = [f"{{i:04d}}" for i in range(1, {n_subjects} + 1)]',
        f"RUNS = {[str(r) for r in range(1, n_runs + 1)]!r}",
        "",
    ]
    sub_out = "sub{i}/sub-{{sub}}.txt"
    run_out = "run{i}/sub-{{sub}}_run-{{run}}.txt"
    rules, leaves, last = [], [], None  # last: (kind, index) of the previous fine rule

    def rule(name, output, inputs=()):
        text = [f"rule {name}:"]
        if inputs:
            text += ["    input:", *(f"        {x}," for x in inputs)]
        text += ["    output:", f'        "{output}",', "    shell:", '        "touch {output}"']
        rules.append("\n".join(text))

    for i, _ in enumerate(per_sub):
        inputs = [f'"{sub_out.format(i=i - 1)}"'] if i else []
        rule(f"per_subject_{i}", sub_out.format(i=i), inputs)
        last = ("sub", i)
    for i, _ in enumerate(per_run):
        if i:
            inputs = [f'"{run_out.format(i=i - 1)}"']
        elif last:
            inputs = [f'"{sub_out.format(i=last[1])}"']
        else:
            inputs = []
        rule(f"per_run_{i}", run_out.format(i=i), inputs)
        last = ("run", i)
    if last is None:
        fine_all = None
    elif last[0] == "run":
        fine_all = f'expand("run{last[1]}/sub-{{sub}}_run-{{run}}.txt", sub=SUBJECTS, run=RUNS)'
    else:
        fine_all = f'expand("sub{last[1]}/sub-{{sub}}.txt", sub=SUBJECTS)'
    for i, name in enumerate(aggregates):
        if i == 0:
            inputs = [fine_all] if fine_all else []
        else:
            inputs = ['"agg0/agg-0.txt"']
        rule(f"aggregate_{i}", f"agg{i}/agg-{{a}}.txt", inputs)
        skip = 1 if i == 0 and len(aggregates) > 1 else 0  # agg-0 is read by the others
        if counts[name] > skip:
            leaves.append(f'expand("agg{i}/agg-{{a}}.txt", a=range({skip}, {counts[name]}))')
    if fine_all and not aggregates:
        leaves.append(fine_all)
    header = ["rule all:", "    input:", *(f"        {x}," for x in leaves)]
    path.write_text("\n".join(lines) + "\n" + "\n\n\n".join(["\n".join(header), *rules]) + "\n")
    agg_jobs = sum(counts[n] for n in aggregates)
    return (
        f"{len(per_sub)} per-subject rule(s) x {n_subjects} + {len(per_run)} per-run rule(s) "
        f"x {n_run_jobs} + {len(aggregates)} aggregate rule(s) ({agg_jobs} jobs) + all"
    )


# ----------------------------------------------------------------------------- runs
_TOTAL = re.compile(r"^total\s+(\d+)\s*$", re.MULTILINE)


def child_env() -> dict:
    """Environment of the children: this repository's src/ first on the path."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p)
    return env


def timed(cmd: list[str], *, cwd: Path, timeout: float) -> tuple[float, str]:
    """Wall-clock seconds of ``cmd`` and its stdout+stderr; raises on failure."""
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=cwd,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-4000:]}")
    return elapsed, proc.stdout


def job_stats(output: str) -> tuple[int, dict[str, int]]:
    """Total and per-rule counts of the last "Job stats" table of a dry run.

    Checks that the rows add up to the total; (0, {}) for "Nothing to be done".
    """
    if "Nothing to be done" in output:
        return 0, {}
    table = output.split("Job stats:")[-1]
    totals = _TOTAL.findall(table)
    if not totals:
        sys.exit(f"no Job stats total in the dry-run output:\n{output[-4000:]}")
    counts = {}
    for line in table.splitlines()[3:]:  # after "Job stats:", the header and the dashes
        name, _, count = line.strip().rpartition(" ")
        if name.strip() == "total":
            break
        counts[name.strip()] = int(count)
    total = int(totals[0])
    if sum(counts.values()) != total:
        sys.exit(f"Job stats rows {counts} do not add up to total {total}")
    return total, counts


def job_count(output: str) -> int:
    return job_stats(output)[0]


def snakemake_cmd(snakefile: Path, workdir: Path, *configfiles: Path, cores: int) -> list[str]:
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "-n",
        "--quiet",
        "rules",
        "--snakefile",
        str(snakefile),
        "--directory",
        str(workdir),
        "--cores",
        str(cores),
    ]
    if configfiles:
        cmd += ["--configfile", *map(str, configfiles)]
    return cmd


PYBIDS_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import bids
t1 = time.perf_counter()
layout = bids.BIDSLayout(sys.argv[1], validate=sys.argv[2] == "1")
t2 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "index_s": t2 - t1,
                  "subjects": len(layout.get_subjects()), "version": bids.__version__}))
"""


def time_pybids(tree: Path, *, validate: bool, timeout: float) -> dict | None:
    """Import and BIDSLayout index seconds in a fresh interpreter (None without pybids)."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", PYBIDS_CHILD, str(tree), "1" if validate else "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"index_s": float("inf"), "import_s": float("nan"), "timeout": True}
    if proc.returncode != 0:
        if "No module named 'bids'" in proc.stderr:
            return None
        sys.exit(f"pybids failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def print_top_cumulative(prof: Path, limit: int = 25) -> None:
    import io
    import pstats

    buf = io.StringIO()
    pstats.Stats(str(prof), stream=buf).sort_stats("cumulative").print_stats(limit)
    print(buf.getvalue())


# ----------------------------------------------------------------------------- main
def machine_lines(pybids_version: str | None) -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    smk = (
        subprocess.run(
            [sys.executable, "-m", "snakemake", "--version"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=child_env(),
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    return [
        f"machine : {platform.node()} {platform.system()} {platform.release()}; {cpu}; "
        f"{os.cpu_count()} CPUs ({usable} usable)",
        f"python  : {platform.python_version()} ({sys.executable})",
        f"snakemake {smk}; pybids {pybids_version or 'not installed'}",
        f"workflow: {REPO}",
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subjects", type=int, nargs="+", default=[100, 1000, 2000])
    parser.add_argument("--runs", type=int, default=2, help="BOLD runs per subject (2)")
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed dry runs of each DAG; the best is reported (3)",
    )
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="write trees and working directories here and keep them "
        "(a tree of the same size already there is reused)",
    )
    parser.add_argument(
        "--no-validate", action="store_true", help="skip the BIDSLayout(validate=True) timing"
    )
    parser.add_argument(
        "--cprofile",
        type=Path,
        metavar="DIR",
        help="also run one mirrorflow dry run per N under cProfile, write "
        "DIR/mirrorflow-N.prof and print its top functions by "
        "cumulative time",
    )
    parser.add_argument("--timeout", type=float, default=900, help="per command, s")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.runs < 1 or min(args.subjects) < 1:
        parser.error("--repeats, --runs and --subjects must be positive")
    if max(args.subjects) > 9999:
        parser.error("at most 9999 subjects (labels sub-0001 ...)")

    script_start = time.perf_counter()
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="dag_scaling-"))
    base.mkdir(parents=True, exist_ok=True)
    snakefile = REPO / "Snakefile"
    config = REPO / "config" / "config.yaml"
    reference = REPO / "resources" / "neurosynth"
    rows = []
    pybids_version = None
    try:
        for n in args.subjects:
            tree = base / f"bids-{n}sub-{args.runs}run"
            t = time.perf_counter()
            make_bids_tree(tree, n, args.runs)
            gen_s = time.perf_counter() - t

            # Fresh working directories: no .snakemake metadata or outputs from before.
            mf_dir = base / f"mirrorflow-{n}"
            bare_dir = base / f"bare-{n}"
            for d in (mf_dir, bare_dir):
                shutil.rmtree(d, ignore_errors=True)
                d.mkdir()
            overlay = mf_dir / "overlay.yaml"  # JSON is YAML
            overlay.write_text(
                json.dumps(
                    {
                        "output_dir": "results",
                        "study": {"source": "bids", "bids_dir": str(tree)},
                        "macm": {"reference_dir": str(reference)},
                    },
                    indent=2,
                )
            )
            mf_cmd = snakemake_cmd(snakefile, mf_dir, config, overlay, cores=args.cores)

            # The first mirrorflow run gives the job count that the bare DAG must match.
            mf_times, bare_times = [], []
            elapsed, out = timed(mf_cmd, cwd=mf_dir, timeout=args.timeout)
            mf_times.append(elapsed)
            jobs, rule_counts = job_stats(out)
            if jobs == 0:
                sys.exit(f"mirrorflow planned no jobs for {n} subjects:\n{out[-4000:]}")
            shape = write_bare_snakefile(bare_dir / "Snakefile", rule_counts, n, args.runs)
            bare_cmd = snakemake_cmd(bare_dir / "Snakefile", bare_dir, cores=args.cores)
            for i in range(args.repeats):
                elapsed, out = timed(bare_cmd, cwd=bare_dir, timeout=args.timeout)
                bare_times.append(elapsed)
                bare_jobs = job_count(out)
                if bare_jobs != jobs:
                    sys.exit(f"bare DAG has {bare_jobs} jobs, mirrorflow {jobs}")
                if i + 1 < args.repeats:
                    elapsed, out = timed(mf_cmd, cwd=mf_dir, timeout=args.timeout)
                    mf_times.append(elapsed)
                    if job_count(out) != jobs:
                        sys.exit("mirrorflow job count changed between runs")

            pb = time_pybids(tree, validate=False, timeout=args.timeout)
            pbv = None
            if pb is not None:
                pybids_version = pb.get("version", pybids_version)
                if not args.no_validate:
                    pbv = time_pybids(tree, validate=True, timeout=args.timeout)

            prof_note = ""
            if args.cprofile:
                args.cprofile.mkdir(parents=True, exist_ok=True)
                prof = args.cprofile.resolve() / f"mirrorflow-{n}.prof"
                cmd = [sys.executable, "-m", "cProfile", "-o", str(prof), *mf_cmd[1:]]
                elapsed, _ = timed(cmd, cwd=mf_dir, timeout=args.timeout)
                prof_note = f"; cProfile run {elapsed:.2f} s -> {prof}"

            row = dict(
                subjects=n,
                runs=n * args.runs,
                jobs=jobs,
                mf=min(mf_times),
                bare=min(bare_times),
                mf_all=mf_times,
                bare_all=bare_times,
                pybids=pb,
                pybids_validate=pbv,
                shape=shape,
            )
            rows.append(row)
            print(
                f"[N={n}] tree {gen_s:.1f} s; bare shape: {shape}; mirrorflow runs "
                f"{', '.join(f'{x:.2f}' for x in mf_times)} s; bare runs "
                f"{', '.join(f'{x:.2f}' for x in bare_times)} s{prof_note}",
                flush=True,
            )
            if args.cprofile:
                print_top_cumulative(prof)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)

    print()
    for line in machine_lines(pybids_version):
        print(line)
    print(
        f"mirrorflow / bare: wall clock of `snakemake -n --quiet rules --cores {args.cores}`, "
        f"best of {args.repeats}; jobs from Snakemake's Job stats total.\n"
        "pybids: BIDSLayout(tree, validate=False) index time in a fresh interpreter, "
        "import excluded (shown apart); 'valid.' is the default validate=True; one run each."
    )
    header = (
        f"{'subjects':>8} {'runs':>6} {'jobs':>6} {'mirrorflow s':>12} {'bare DAG s':>10} "
        f"{'ratio':>6} {'pybids s':>9} {'valid. s':>9} {'import s':>8}  ratio<={MAX_RATIO}"
    )
    print(header)
    print("-" * len(header))
    failed = False
    for r in rows:
        ratio = r["mf"] / r["bare"]
        ok = ratio <= MAX_RATIO
        failed |= not ok
        pb, pbv = r["pybids"], r["pybids_validate"]
        pb_s = f"{pb['index_s']:9.2f}" if pb else f"{'n/a':>9}"
        pbv_s = f"{pbv['index_s']:9.2f}" if pbv else f"{'-':>9}"
        imp_s = f"{pb['import_s']:8.2f}" if pb else f"{'-':>8}"
        print(
            f"{r['subjects']:>8} {r['runs']:>6} {r['jobs']:>6} {r['mf']:>12.2f} "
            f"{r['bare']:>10.2f} {ratio:>6.2f} {pb_s} {pbv_s} {imp_s}  "
            f"{'PASS' if ok else 'FAIL'}"
        )
    print(f"total benchmark time: {time.perf_counter() - script_start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
