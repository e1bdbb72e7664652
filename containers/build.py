#!/usr/bin/env python3
"""Build mirrorflow's container images with podman: one OCI image per workflow stage.

    python3 containers/build.py                  # every stage
    python3 containers/build.py preproc meta     # some stages (and the base they need)

No registry is needed: the operating system layer comes from ``debootstrap --variant=minbase
bookworm`` imported with ``podman import``; Python packages come from PyPI (the host's pip
cache and CA bundle are mounted into the build). Images are tagged
``localhost/mirrorflow-<stage>:<version>``; an unchanged stage is a layer-cache hit. For
Apptainer on a cluster, convert them with ``apptainer build <stage>.sif
docker-daemon://localhost/mirrorflow-<stage>:<version>`` (or push them to your registry) and
point ``containers`` in the config at the result.

Standard library only: it runs on a fresh machine before any virtual environment exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ("simulate", "preproc", "firstlevel", "group", "meta")
#: Debian packages of the OS layer: Python 3.11 (same minor version as the tested
#: environment), CA certificates, and OpenMP for ANTs/scikit-learn.
OS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")
OS_SUITE = "bookworm"
OS_MIRROR = os.environ.get("MIRRORFLOW_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: Host tools (Debian packages) that building and running the images needs.
HOST_PACKAGES = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}


def version() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def image_name(stage: str) -> str:
    return f"localhost/mirrorflow-{stage}:{version()}"


def podman_env() -> dict[str, str]:
    """The environment for podman: the project's containers.conf unless the user set one
    (runc, and ulimits a container may set inside a restricted host)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(HERE / "podman" / "containers.conf"))
    return env


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, env=podman_env(), **kwargs)


def image_exists(name: str) -> bool:
    return subprocess.run(
        ["podman", "image", "exists", name], env=podman_env()
    ).returncode == 0


def install_host_packages() -> None:
    """apt-get install the host tools that are missing (Debian, as root)."""
    missing = [pkg for tool, pkg in HOST_PACKAGES.items() if not shutil.which(tool)]
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def check_host() -> None:
    missing = [pkg for tool, pkg in HOST_PACKAGES.items() if not shutil.which(tool)]
    if missing:
        sys.exit(f"containers/build.py needs {', '.join(missing)}: apt-get install "
                 f"{' '.join(missing)} (or run with --install-host-packages as root)")


def os_image() -> str:
    """The Debian minbase image, imported from debootstrap once per package list."""
    recipe = " ".join([OS_SUITE, *OS_PACKAGES]).encode()
    name = f"localhost/mirrorflow-os:{OS_SUITE}-{hashlib.sha256(recipe).hexdigest()[:12]}"
    if image_exists(name):
        print(f"{name}: present", flush=True)
        return name
    with tempfile.TemporaryDirectory(prefix="mirrorflow-os-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        print(f"{name}: debootstrap {OS_SUITE} ({OS_MIRROR})", flush=True)
        run("debootstrap", "--variant=minbase", f"--include={','.join(OS_PACKAGES)}",
            OS_SUITE, rootfs, OS_MIRROR, stdout=subprocess.DEVNULL)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (rootfs / junk).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        run("podman", "import", "--change", 'CMD ["/bin/bash"]', "-", name,
            stdin=tar.stdout, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            sys.exit("tar of the debootstrap root failed")
    return name


def pip_build_mounts(tmp: Path) -> list[str]:
    """Volumes for RUN pip: the host CA bundle (TLS through this network's proxy), a pip
    config that uses it, and the host's pip cache (wheels already downloaded)."""
    ca = Path(os.environ.get("PIP_CERT", "/etc/ssl/certs/ca-certificates.crt"))
    conf = tmp / "pip.conf"
    lines = ["[global]"]
    if ca.exists():
        lines.append("cert = /etc/ssl/certs/host-ca-bundle.crt")
    if os.environ.get("PIP_INDEX_URL"):
        lines.append(f"index-url = {os.environ['PIP_INDEX_URL']}")
    conf.write_text("\n".join(lines) + "\n")
    mounts = ["--volume", f"{conf}:/etc/pip.conf:ro"]
    if ca.exists():
        mounts += ["--volume", f"{ca}:/etc/ssl/certs/host-ca-bundle.crt:ro"]
    cache = Path.home() / ".cache" / "pip"
    cache.mkdir(parents=True, exist_ok=True)
    mounts += ["--volume", f"{cache}:/root/.cache/pip"]
    return mounts


def build(stage: str, context: Path, build_args: dict[str, str], mounts: list[str]) -> float:
    start = time.perf_counter()
    args = [f"--build-arg={k}={v}" for k, v in build_args.items()]
    run("podman", "build", "--layers", "--network", "host", *mounts, *args,
        "--tag", image_name(stage), "--file", context / "Containerfile", context)
    return time.perf_counter() - start


def image_size(name: str) -> int:
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", name],
                         check=True, capture_output=True, text=True, env=podman_env())
    return int(out.stdout.strip())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="*",
                        help=f"stages to build (default: all of {', '.join(STAGES)})")
    parser.add_argument("--install-host-packages", action="store_true",
                        help="apt-get install podman, runc and debootstrap when missing")
    args = parser.parse_args(argv)
    if args.install_host_packages:
        install_host_packages()
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    check_host()
    stages = args.stages or list(STAGES)
    timings = {}
    with tempfile.TemporaryDirectory(prefix="mirrorflow-build-") as tmp:
        mounts = pip_build_mounts(Path(tmp))
        start = time.perf_counter()
        base_args = {"OS_IMAGE": os_image(), "VERSION": version()}
        timings["os"] = time.perf_counter() - start
        timings["base"] = build("base", HERE / "base", base_args, mounts)
        for stage in stages:
            stage_args = {"BASE_IMAGE": image_name("base"), "VERSION": version()}
            timings[stage] = build(stage, HERE / stage, stage_args, mounts)
    print("\nimage                                      build (s)   size (MB)")
    for stage, seconds in timings.items():
        size = "" if stage == "os" else f"{image_size(image_name(stage)) / 1e6:10.0f}"
        label = "debian minbase (debootstrap)" if stage == "os" else image_name(stage)
        print(f"{label:42s} {seconds:9.1f}  {size}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
