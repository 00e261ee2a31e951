"""Stand-ins for the official images, built from Debian's packages where no image registry
can be reached (tests/stack/images/).

`python -m tests.stack.standin_images` builds whatever is missing and prints the variables
that point docker-compose.yml at them. A Debian bookworm root file system is made with
debootstrap from the machine's own apt mirror (read from its apt sources here, at run time,
never written into the repository) and imported as the base image; the Dockerfiles then
install python3, postgresql, redis-server, nginx, etcd and haproxy on it with the same
sources, passed as a build secret so no image keeps them.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

IMAGES_DIR = Path(__file__).resolve().parent / "images"
BASE_IMAGE = "tasks-standin/debian:bookworm"
SUITE = "bookworm"
# The variables of docker-compose.yml (and its build argument) and of
# docker-compose.pg-ha.yml that name the images.
IMAGE_VARIABLES = {
    "PYTHON_IMAGE": "tasks-standin/python:bookworm",
    "POSTGRES_IMAGE": "tasks-standin/postgres:bookworm",
    "REDIS_IMAGE": "tasks-standin/redis:bookworm",
    "PROXY_IMAGE": "tasks-standin/nginx:bookworm",
    "ETCD_IMAGE": "tasks-standin/etcd:bookworm",
    "HAPROXY_IMAGE": "tasks-standin/haproxy:bookworm",
}
APT_DIR = Path("/etc/apt")
# What official Debian images put in place: no service starts inside a build, and apt
# keeps no downloaded packages.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"
DOCKER_CLEAN = 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb || true"; };\n'


def apt_sources(apt_dir: Path = APT_DIR) -> list[tuple[str, str]]:
    """(URI, suite) of every `deb` source for this Debian release, one-line and deb822 files."""
    found: list[tuple[str, str]] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                found.append((words[1], words[2]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, _, value = line.partition(":")
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                found.extend(
                    (uri, suite)
                    for uri in fields.get("uris", "").split()
                    for suite in fields.get("suites", "").split()
                )
    return [(uri, suite) for uri, suite in found if suite.split("-")[0] == SUITE]


def sources_list(sources: list[tuple[str, str]]) -> str:
    return "".join(f"deb {uri} {suite} main\n" for uri, suite in sources)


def main_mirror(sources: list[tuple[str, str]]) -> str:
    for uri, suite in sources:
        if suite == SUITE:
            return uri
    raise SystemExit(f"no '{SUITE}' source in {APT_DIR}: cannot debootstrap the stand-ins")


def image_exists(name: str) -> bool:
    result = subprocess.run(
        ["docker", "image", "inspect", name], capture_output=True, timeout=60, check=False
    )
    return result.returncode == 0


def build_base_image(mirror: str, workdir: Path) -> None:
    for tool in ("debootstrap", "tar"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is not installed (apt-get install -y debootstrap)")
    rootfs = workdir / "rootfs"
    subprocess.run(
        ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
        check=True,
        stdout=subprocess.DEVNULL,
        timeout=1800,
    )
    # The image is given the sources per build instead (a secret), so it keeps no mirror.
    (rootfs / "etc" / "apt" / "sources.list").unlink(missing_ok=True)
    (rootfs / "usr" / "sbin" / "policy-rc.d").write_text(POLICY_RC_D)
    (rootfs / "usr" / "sbin" / "policy-rc.d").chmod(0o755)
    (rootfs / "etc" / "apt" / "apt.conf.d" / "docker-clean").write_text(DOCKER_CLEAN)
    shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    subprocess.run(["docker", "import", "-", BASE_IMAGE], stdin=tar.stdout, check=True, timeout=600)
    if tar.wait(timeout=60) != 0:
        raise SystemExit("tar of the stand-in root file system failed")


def build_standins() -> dict[str, str]:
    """Build the missing stand-ins (each is cached by the engine); return the variables."""
    sources = apt_sources()
    with tempfile.TemporaryDirectory(prefix="tasks-standins-") as temporary:
        workdir = Path(temporary)
        if not image_exists(BASE_IMAGE):
            build_base_image(main_mirror(sources), workdir)
        secret = workdir / "sources.list"
        secret.write_text(sources_list(sources))
        subprocess.run(
            ["docker", "compose", "-f", str(IMAGES_DIR / "compose.yml"), "build", "--quiet"],
            env={**os.environ, "APT_SOURCES_FILE": str(secret)},
            check=True,
            timeout=1800,
        )
    return dict(IMAGE_VARIABLES)


if __name__ == "__main__":
    for variable, image in build_standins().items():
        print(f"{variable}={image}")
    sys.exit(0)
