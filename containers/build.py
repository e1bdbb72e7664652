#!/usr/bin/env python3
"""Build mirrorflow's container images with podman: one OCI image per workflow stage.

    python3 containers/build.py                      # every stage
    python3 containers/build.py preproc meta         # some stages
    python3 containers/build.py --base debootstrap   # offline: no registry to pull from

Every stage comes from the one ``containers/Containerfile`` (build arguments ``STAGE``,
``VERSION`` and ``BASE``), the same file the release workflow
(``.github/workflows/containers.yaml``) builds and pushes. The images are named
``<registry>/mirrorflow-<stage>:<version>`` (``--registry``, default ``ghcr.io/mirrorflow``;
the version is pyproject.toml's), the names the config's ``containers:`` defaults pull, so a
local build stands in for the published images. An unchanged stage is a layer-cache hit,
and the stages share the layers of Python and Snakemake.

The base is the Containerfile's public Python image unless ``--base`` names another;
``--base debootstrap`` needs no registry: its operating system layer comes from
``debootstrap --variant=minbase bookworm`` imported with ``podman import``. Python
packages come from PyPI (the host's pip cache and CA bundle are mounted into the build).

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
CONTAINERFILE = HERE / "Containerfile"
STAGES = ("simulate", "preproc", "firstlevel", "group", "meta")
REGISTRY = "ghcr.io/mirrorflow"
#: The value of --base that builds the operating system layer here with debootstrap.
DEBOOTSTRAP = "debootstrap"
#: Debian packages of the debootstrap base: Python 3.11 (same minor version as the tested
#: environment), CA certificates, and OpenMP for numba.
OS_PACKAGES = ("python3", "python3-venv", "ca-certificates", "libgomp1")
OS_SUITE = "bookworm"
OS_MIRROR = os.environ.get("MIRRORFLOW_DEBIAN_MIRROR", "http://deb.debian.org/debian")
#: Host tools (Debian packages) that building and running the images needs.
HOST_PACKAGES = {"podman": "podman", "runc": "runc"}
#: ... and building the debootstrap base.
DEBOOTSTRAP_PACKAGES = {"debootstrap": "debootstrap"}
#: Where the host's pip cache is mounted in a build (not pip's default, which the
#: Containerfile empties after each install).
PIP_CACHE_MOUNT = "/root/.cache/pip-host"


def version() -> str:
    """The package version (pyproject.toml): every image's tag."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def image_name(stage: str, registry: str = REGISTRY) -> str:
    """``<registry>/mirrorflow-<stage>:<version>``."""
    return f"{registry.rstrip('/')}/mirrorflow-{stage}:{version()}"


def podman_env() -> dict[str, str]:
    """The environment for podman: the project's containers.conf unless the user set one
    (runc, and ulimits a container may set inside a restricted host)."""
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(HERE / "podman" / "containers.conf"))
    return env


def run(*cmd, **kwargs) -> subprocess.CompletedProcess:
    """Run a command in :func:`podman_env`; a failure ends the build."""
    return subprocess.run([str(c) for c in cmd], check=True, env=podman_env(), **kwargs)


def image_exists(name: str) -> bool:
    """Whether podman's storage holds the image ``name``."""
    exists = subprocess.run(["podman", "image", "exists", name], env=podman_env(), check=False)
    return exists.returncode == 0


def missing_host_packages(tools: dict[str, str]) -> list[str]:
    """The Debian packages of ``tools`` (command -> package) whose command is missing."""
    return [pkg for tool, pkg in tools.items() if not shutil.which(tool)]


def install_host_packages(tools: dict[str, str]) -> None:
    """apt-get install the host tools that are missing (Debian, as root)."""
    missing = missing_host_packages(tools)
    if missing:
        print(f"installing {' '.join(missing)} with apt-get", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env,
                       stdout=subprocess.DEVNULL)


def check_host(tools: dict[str, str]) -> None:
    """Exit with the apt-get command to run when a tool of ``tools`` is missing."""
    missing = missing_host_packages(tools)
    if missing:
        sys.exit(f"containers/build.py needs {', '.join(missing)}: apt-get install "
                 f"{' '.join(missing)} (or run with --install-host-packages as root)")


def debootstrap_image() -> str:
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
    lines = ["[global]", f"cache-dir = {PIP_CACHE_MOUNT}"]
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
    mounts += ["--volume", f"{cache}:{PIP_CACHE_MOUNT}"]
    return mounts


def build_args(stage: str, base: str | None) -> list[str]:
    """``--build-arg`` options of one stage (BASE only when it is not the Containerfile's)."""
    args = {"STAGE": stage, "VERSION": version()}
    if base:
        args["BASE"] = base
    return [f"--build-arg={key}={value}" for key, value in args.items()]


def build(stage: str, name: str, base: str | None, mounts: list[str]) -> float:
    """podman build one stage's image as ``name``; returns the seconds it took."""
    start = time.perf_counter()
    run("podman", "build", "--layers", "--network", "host", *mounts,
        *build_args(stage, base), "--tag", name, "--file", CONTAINERFILE, HERE)
    return time.perf_counter() - start


def image_size(name: str) -> int:
    """The uncompressed size of the image ``name`` in bytes."""
    out = subprocess.run(["podman", "image", "inspect", "--format", "{{.Size}}", name],
                         check=True, capture_output=True, text=True, env=podman_env())
    return int(out.stdout.strip())


def print_summary(timings: dict[str, float], names: dict[str, str]) -> None:
    """One line per image: build seconds and uncompressed size."""
    print("\nimage                                                build (s)   size (MB)")
    for stage, seconds in timings.items():
        if stage in names:
            label, size = names[stage], f"{image_size(names[stage]) / 1e6:10.0f}"
        else:
            label, size = "debian minbase (debootstrap)", ""
        print(f"{label:52s} {seconds:9.1f}  {size}")


def parse_args(argv=None) -> argparse.Namespace:
    """The command line: stages (all by default), --registry, --base, and the host tools."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stages", nargs="*",
                        help=f"stages to build (default: all of {', '.join(STAGES)})")
    parser.add_argument("--version", action="version", version=version(),
                        help="print the images' tag (the package version) and exit")
    parser.add_argument("--registry", default=REGISTRY,
                        help=f"image name prefix (default: {REGISTRY})")
    parser.add_argument("--base", metavar="IMAGE",
                        help="base image (default: the Containerfile's public Python image); "
                             f"'{DEBOOTSTRAP}' builds a Debian base here, without a registry")
    parser.add_argument("--install-host-packages", action="store_true",
                        help="apt-get install podman, runc (and debootstrap) when missing")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; choose from {', '.join(STAGES)}")
    return args


def main(argv=None) -> int:
    """Build the stages' images (and the debootstrap base, when asked) and print a summary."""
    args = parse_args(argv)
    tools = {**HOST_PACKAGES, **(DEBOOTSTRAP_PACKAGES if args.base == DEBOOTSTRAP else {})}
    if args.install_host_packages:
        install_host_packages(tools)
    check_host(tools)
    timings, names = {}, {}
    base = args.base
    if base == DEBOOTSTRAP:
        start = time.perf_counter()
        base = debootstrap_image()
        timings["os"] = time.perf_counter() - start
    with tempfile.TemporaryDirectory(prefix="mirrorflow-build-") as tmp:
        mounts = pip_build_mounts(Path(tmp))
        for stage in args.stages or STAGES:
            names[stage] = image_name(stage, args.registry)
            timings[stage] = build(stage, names[stage], base, mounts)
    print_summary(timings, names)
    return 0


if __name__ == "__main__":
    sys.exit(main())
