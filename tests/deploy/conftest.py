"""Fixtures for running the workflow on other executors and inside containers.

Every executor test runs the same small study (:data:`SMALL`: four participants of 34
volumes, few iterations, a 1,000-study slice of the shipped Neurosynth database as the
MACM reference) and compares its outputs with one shared bare local run of every rule:
the containers run every rule too; SLURM and S3 run the smallest targets that take them
through their whole path (:data:`CHAIN_TARGETS`).
"""

from __future__ import annotations

import gzip
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from ..conftest import once_per_session, session_root
from ..workflow.conftest import REDUCED, REPO, snakemake


def _load_build_script():
    """containers/build.py as a module: the stages, image names and build options that the
    images are made with (a script, not a package, so loaded from its path)."""
    spec = importlib.util.spec_from_file_location(
        "mirrorflow_containers_build", REPO / "containers" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BUILD = _load_build_script()
STAGES = BUILD.STAGES
#: The base image of the test builds: no registry can be pulled from on the test machines,
#: so containers/build.py builds a Debian base with debootstrap (a value of the
#: Containerfile's BASE build argument; the release workflow uses its public default).
TEST_BASE = BUILD.DEBOOTSTRAP
#: The podman-backed ``apptainer`` of the container tests (a test device, not shipped).
APPTAINER_SHIM = Path(__file__).resolve().parent / "apptainer-podman"

NEUROSYNTH = REPO / "resources" / "neurosynth"
COORDS = "data-neurosynth_version-7_coordinates.tsv.gz"
META = "data-neurosynth_version-7_metadata.tsv.gz"


def fail_system(need: str) -> None:
    """Fail the test at once with one line: what it needs, and the marker that deselects it."""
    pytest.fail(f"needs {need}: deselect with -m 'not system'", pytrace=False)


def _missing_packages(packages) -> list[str]:
    """Those of ``packages`` that dpkg does not list as installed."""
    return [
        pkg for pkg in packages
        if shutil.which("dpkg") is None
        or subprocess.run(["dpkg", "-s", pkg], capture_output=True).returncode != 0
    ]


def ensure_debian_packages(*packages: str) -> None:
    """apt-get install the Debian packages that are missing: this changes the machine (the
    ``system`` tests' fixtures say so; README "Tests"). Where they are missing and cannot
    be installed (not root, or no apt-get), the test fails at once (:func:`fail_system`).
    One apt-get at a time on the machine (xdist workers wait for each other: a lock file
    in /run/lock)."""
    missing = _missing_packages(packages)
    if not missing:
        return
    cannot = [why for why, bad in (("not root", os.geteuid() != 0),
                                   ("no apt-get", shutil.which("apt-get") is None)) if bad]
    if cannot:
        fail_system(f"the Debian packages {', '.join(missing)}, which cannot be installed "
                    f"here ({', '.join(cannot)})")
    with FileLock("/run/lock/mirrorflow-tests-apt-get.lock"):
        missing = _missing_packages(missing)  # another worker may have installed them
        if missing:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
            subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True,
                           env=env, capture_output=True)


def write_reference_slice(folder: Path, n_studies: int = 1000) -> Path:
    """The first ``n_studies`` Neurosynth studies (by id), in the shipped file format."""
    folder.mkdir(parents=True, exist_ok=True)
    coords = pd.read_csv(NEUROSYNTH / COORDS, sep="\t", dtype={"id": str})
    meta = pd.read_csv(NEUROSYNTH / META, sep="\t", dtype={"id": str})
    keep = sorted(meta["id"])[:n_studies]
    for table, name in ((coords, COORDS), (meta, META)):
        with gzip.open(folder / name, "wt") as handle:
            table[table["id"].isin(keep)].to_csv(handle, sep="\t", index=False)
    return folder


#: The small study of the executor tests, over the reduced config: what the executors
#: compare, made as cheap as it can be while every rule still runs: four participants (the
#: simulator's least) with one imitate and one mismatch block each (34 volumes), an affine
#: T1w-to-template registration, eight experiments per category, few Monte Carlo
#: iterations (the ALE and MACM nulls still in two shard jobs of 100 iterations), and a
#: MACM of two spheres (its own chain, not waiting for the conjunction) on a 1,000-study
#: slice of Neurosynth. The science of each step is tested elsewhere, at the reduced
#: config's settings. The reference folder is relative to the repository
#: (``.pytest-reference/``: the same path on every executor and a key prefix in the S3
#: bucket).
SMALL = """\
simulation: {{n_subjects: 4, n_blocks: 2}}
preproc: {{t1w_to_template: Affine}}
group: {{inference: {{n_perm: 100, shards: 1}}}}
meta:
  simulate: {{n_experiments: 8}}
  ale: {{n_iters: 200, shards: 2}}
  contrast: {{n_iters: 50, shards: 1}}
macm:
  reference_dir: {reference}
  seeds:
    kind: spheres
    spheres:
      - {{label: cingulate, xyz: [0, 10, 40], radius: 10}}
      - {{label: leftInsula, xyz: [-38, 4, 2], radius: 10}}
  n_iters: 200
  shards: 2
"""


@pytest.fixture(scope="session")
def small_config(tmp_path_factory):
    """Command-line options of the small study (:data:`SMALL` over the reduced config).
    The reference slice is written once per session (every xdist worker reads it)."""
    reference = REPO / ".pytest-reference" / "neurosynth"
    once_per_session(tmp_path_factory, "reference-slice",
                     lambda: write_reference_slice(reference))
    path = tmp_path_factory.mktemp("config") / "small.yaml"
    path.write_text(SMALL.format(reference=reference.relative_to(REPO)))
    return ["--configfile", REDUCED, path]


#: The smallest targets that take an executor through its whole path, relative to the
#: output folder: each participant's chain to its first-level maps (the QC checkpoint
#: waits for every participant; grouped jobs on a cluster), one ALE with its null shards
#: and merge, and the MACM with its shards and the reference conversion. Not the group
#: stage, the subtraction or the report (the container run, every rule, covers them).
CHAIN_TARGETS = (
    *(f"firstlevel/sub-{sub}/sub-{sub}_task-imitation_space-MNI152NLin2009aSym_res-4"
      "_contrast-mismatchGtImitate_stat-z_statmap.nii.gz" for sub in ("01", "02", "03", "04")),
    "meta/ale/meta-mimicry_z_desc-thresholded.nii.gz",
    "macm/meta-macm_z_desc-thresholded.nii.gz",
)


def chain_targets(out) -> list[str]:
    """:data:`CHAIN_TARGETS` under the output folder ``out``."""
    return [f"{out}/{target}" for target in CHAIN_TARGETS]


@pytest.fixture(scope="session")
def bare_run(tmp_path_factory, small_config):
    """The small study run locally without containers, every rule: the reference for
    every executor (of its whole output, or of the outputs of :data:`CHAIN_TARGETS`).
    Made once per session, by the first xdist worker that needs it."""
    out = session_root(tmp_path_factory) / "bare" / "results"
    once_per_session(tmp_path_factory, "bare-run", lambda: snakemake(
        "--cores", "2", *small_config, "--config", f"output_dir={out}"))
    return out


def build_images(timeout: float) -> subprocess.CompletedProcess:
    """Run containers/build.py for every stage on the test base (:data:`TEST_BASE`), with
    its default names: those of the config's ``containers`` defaults."""
    return subprocess.run(
        [sys.executable, REPO / "containers" / "build.py", "--base", TEST_BASE],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture(scope="session")
def images():
    """Every stage image, built with podman into root's podman storage under its published
    name (``ghcr.io/mirrorflow/mirrorflow-<stage>:<version>``), so the config's defaults
    run them; installs podman, runc and debootstrap with apt-get on a fresh machine; later
    builds are layer-cache hits. Returns the build log."""
    ensure_debian_packages("podman", "runc", "debootstrap")
    if os.geteuid() != 0:
        fail_system("root (debootstrap and the images in root's podman storage)")
    result = build_images(timeout=3000)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


#: Outputs that legitimately differ between runs: logs, timings (and the report's tables
#: of them), caches, scratch.
VOLATILE = ("logs/", "work/", "report/desc-runtimes_")


def result_files(root: Path) -> dict[str, Path]:
    """Relative path -> file for the comparable outputs under ``root``."""
    return {
        str(p.relative_to(root)): p
        for p in root.rglob("*")
        if p.is_file() and not str(p.relative_to(root)).startswith(VOLATILE)
    }


def assert_same_results(expected: Path, actual: Path, rtol: float = 1e-5, atol: float = 1e-6,
                        *, targets: tuple[str, ...] = ()):
    """The same files with equal images (data and affine) and equal tables, to float
    tolerance; returns the number of images compared. With ``targets`` (relative paths),
    ``actual`` holds those and some of ``expected``'s other files."""
    got, want = result_files(actual), result_files(expected)
    if targets:
        assert set(targets) <= set(got), sorted(set(targets) - set(got))
        assert set(got) <= set(want), sorted(set(got) - set(want))
    else:
        assert sorted(want) == sorted(got)
    n_images = 0
    for rel in got:
        path = want[rel]
        if rel.endswith((".nii", ".nii.gz")):
            a, b = nib.load(path), nib.load(got[rel])
            np.testing.assert_allclose(a.affine, b.affine, err_msg=rel)
            np.testing.assert_allclose(
                np.asarray(a.dataobj, dtype=float), np.asarray(b.dataobj, dtype=float),
                rtol=rtol, atol=atol, err_msg=rel,
            )
            n_images += 1
        elif rel.endswith(".tsv"):
            a = pd.read_csv(path, sep="\t")
            b = pd.read_csv(got[rel], sep="\t")
            pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=rtol, atol=atol,
                                          obj=rel)
    return n_images


def shim_path(tmp_path: Path) -> str:
    """PATH with the podman-backed ``apptainer`` first."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    link = bindir / "apptainer"
    if not link.exists():
        link.symlink_to(APPTAINER_SHIM)
    return f"{bindir}{os.pathsep}{os.environ['PATH']}"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed"
    return path


SLURM_MARKER = "# mirrorflow test cluster (tests/deploy/conftest.py)"
SLURM_CONF = SLURM_MARKER + """
ClusterName=mirrorflow
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={root}/munge/munge.socket
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
NodeName=localhost CPUs=2 RealMemory=16000 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A real single-node SLURM cluster on localhost (Debian's slurm-wlm and munge, with a
    private munge socket), torn down after the session. Yields the environment to run
    its clients with (SLURM_CONF).

    The configuration goes to /etc/slurm/slurm.conf, where the executor plugin's job
    steps look (they drop SLURM_CONF from the environment of their nested srun); a
    slurm.conf that this fixture did not write is never replaced, and the one it wrote is
    removed at teardown: left behind, it points every later ``scontrol`` at a dead
    controller, and the SLURM executor plugin runs ``scontrol show config`` (10 s timeout)
    in every Snakemake invocation, even local ones.

    Changes the machine: apt-get installs slurm-wlm and munge when missing, writes
    /etc/slurm/slurm.conf for the session (removed at teardown) and starts munged,
    slurmctld and slurmd (stopped at teardown)."""
    ensure_debian_packages("slurm-wlm", "munge")
    if os.geteuid() != 0:
        fail_system("root (writes /etc/slurm/slurm.conf, starts slurmctld and slurmd)")
    root = tmp_path_factory.mktemp("slurm")
    for sub in ("state", "spool", "munge"):
        (root / sub).mkdir()
    (root / "munge").chmod(0o700)
    conf = Path("/etc/slurm/slurm.conf")
    if conf.exists() and not conf.read_text().startswith(SLURM_MARKER):
        raise AssertionError(f"{conf} belongs to another SLURM installation; not replacing it")
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(SLURM_CONF.format(root=root))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    munge = root / "munge"
    subprocess.run(
        [tool("munged"), "--force", "--num-threads=10", f"--socket={munge}/munge.socket",
         "--key-file=/etc/munge/munge.key", f"--log-file={munge}/munged.log",
         f"--pid-file={munge}/munged.pid", f"--seed-file={munge}/munged.seed"],
        check=True, env=env,
    )
    subprocess.run([tool("slurmctld")], check=True, env=env)
    subprocess.run([tool("slurmd"), "-N", "localhost"], check=True, env=env)
    try:
        for _ in range(60):
            state = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True,
                                   text=True, env=env).stdout.strip()
            if state == "idle":
                break
            time.sleep(1)
        else:
            raise AssertionError(f"slurmd never became idle: {state!r}\n"
                                 + (root / "slurmctld.log").read_text()[-2000:])
        yield {"SLURM_CONF": str(conf)}
    finally:
        for pidfile in (root / "slurmd.pid", root / "slurmctld.pid", munge / "munged.pid"):
            if pidfile.exists():
                try:
                    os.kill(int(pidfile.read_text()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        conf.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server():
    """A local S3-compatible server (moto) on a free loopback port, for the session."""
    import socket
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # its imports take seconds on a busy machine
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                assert proc.poll() is None, "moto server exited"
                assert time.monotonic() < deadline, "moto server did not start in 120 s"
                time.sleep(0.2)
        yield {"endpoint": endpoint, "key": "mirrorflow-test", "secret": "mirrorflow-test"}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def s3_client(server):
    import boto3

    return boto3.client(
        "s3", endpoint_url=server["endpoint"], region_name="us-east-1",
        aws_access_key_id=server["key"], aws_secret_access_key=server["secret"],
    )


def s3_args(server, prefix: str) -> list[str]:
    """Snakemake options that put every input and output under ``prefix`` in the bucket."""
    return [
        "--default-storage-provider", "s3", "--default-storage-prefix", prefix,
        "--storage-s3-endpoint-url", server["endpoint"],
        "--storage-s3-access-key", server["key"], "--storage-s3-secret-key", server["secret"],
    ]
