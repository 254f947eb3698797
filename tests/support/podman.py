"""The project's image built and run with Debian's podman, on a machine that reaches no image
registry.

The Dockerfile's base, ``python:3.11-slim``, is made from Debian 12's own packages: ``mmdebstrap``
installs its Python 3.11 with a virtual environment at ``/opt/venv`` (so ``python`` and ``pip``
are on ``PATH``, as in the real base), and ``podman import`` stores it under the base's name. When
an image of that name is already stored (the real one, or an earlier run's), it is used as it is.
``podman build`` then builds the Dockerfile unchanged; ``--format docker`` keeps its HEALTHCHECK,
which the OCI format has no field for.

Debian packages come from the machine's own apt sources for the suite, and the machine's extra CA
certificates (``/usr/local/share/ca-certificates``) are installed in the base: where HTTPS is
intercepted, ``pip`` inside the build trusts what the machine trusts.

Podman runs with a configuration of its own (``CONTAINERS_CONF``): ``runc`` as the runtime (crun
fails on hybrid cgroup hierarchies) and default ulimits no higher than podman's own (where root
lacks CAP_SYS_RESOURCE, a container asking for more fails to start). Without systemd, podman
cannot schedule health checks; ``podman healthcheck run`` runs one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import resource
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import httpx

BASE_IMAGE = "docker.io/library/python:3.11-slim"
SUITE = "bookworm"
"""Debian 12, whose Python is the base's 3.11."""
TOOLS = ("podman", "mmdebstrap", "runc")
PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")
"""What the Dockerfile needs of its base: Python with ``venv`` (``pip``), HTTPS, ``useradd``."""
EXTRA_CERTIFICATES = Path("/usr/local/share/ca-certificates")
MMDEBSTRAP_HOOKS = Path("/usr/share/mmdebstrap/hooks")
SCRATCH = Path("/dev/shm")
SCRATCH_NEEDED = 3 * 2**30 // 2
"""What making the base needs free in ``SCRATCH`` (the chroot, and the tarball packed from it);
with less free there, the chroot is made in the test's own directory on disk."""
BASE_LOCK = Path(tempfile.gettempdir(), f"cms-mock-podman-base-{os.getuid()}.lock")
"""Held while the base is looked for and made: two runs on one machine would otherwise both find
none, both make it, and the second import would take the name from the first's image."""
BASE_CONFIG = (
    "ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "ENV LANG=C.UTF-8",
    'CMD ["python3"]',
    'LABEL description="python:3.11-slim made from Debian 12 packages"',
)
"""The base's configuration, as the real one's: ``python`` and ``pip`` first on ``PATH``."""


class PodmanError(RuntimeError):
    """A podman (or mmdebstrap) command failed; the message holds the command and its output."""


def apt_sources(suite: str = SUITE, apt_dir: Path = Path("/etc/apt")) -> list[str]:
    """``deb URI SUITE main`` for every source of ``suite`` (and its ``-updates``, ``-security``)
    this machine's apt reads, one-line and deb822 files alike; empty if there are none, and then
    mmdebstrap uses deb.debian.org."""
    entries: list[tuple[str, str]] = []
    for path in [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]:
        for line in path.read_text().splitlines() if path.is_file() else []:
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], words[2]))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes") != "no":
                entries += [(uri, name) for uri in fields.get("URIs", "").split() for name in fields.get("Suites", "").split()]
    ours = [(uri, name) for uri, name in entries if name == suite or name.startswith(f"{suite}-")]
    return [f"deb {uri} {name} main" for uri, name in dict.fromkeys(ours)]


def ulimits() -> list[str]:
    """``nofile`` at this process's hard limit, and ``nproc`` at its hard limit or
    ``kernel.pid_max``, whichever is lower (podman lowers its own to that)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    if nproc == resource.RLIM_INFINITY or nproc > pid_max:
        nproc = pid_max
    return [f"nofile={nofile}:{nofile}", f"nproc={nproc}:{nproc}"]


class Podman:
    """Runs podman with the configuration this machine needs, written into ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        conf = workdir / "containers.conf"
        listed = ", ".join(f'"{limit}"' for limit in ulimits())
        conf.write_text(f'[containers]\ndefault_ulimits = [{listed}]\n\n[engine]\nruntime = "runc"\n')
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(self, *args: str, timeout: float = 120, check: bool = True, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
        command = ["podman", *args]
        done = subprocess.run(command, env=self.env, stdin=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise PodmanError(f"{' '.join(command)} exited with {done.returncode}:\n{tail(done.stdout)}\n{tail(done.stderr)}")
        return done

    def has_image(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def make_base(self) -> None:
        """Make and import the base image unless one of its name is stored."""
        with open(BASE_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self.has_image(BASE_IMAGE):
                self._import_base()

    def _import_base(self) -> None:
        hooks = [f"--hook-dir={MMDEBSTRAP_HOOKS / name}" for name in ("merged-usr", "eatmydata")]
        certificates = sorted(str(path) for path in EXTRA_CERTIFICATES.glob("*.crt"))
        customize = [f"copy-in {' '.join(certificates)} {EXTRA_CERTIFICATES}"] if certificates else []
        customize += ['chroot "$1" update-ca-certificates', 'chroot "$1" python3 -m venv /opt/venv']
        command = [
            "mmdebstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            *hooks,
            *(f"--dpkgopt=path-exclude=/usr/share/{path}/*" for path in ("doc", "man", "locale")),
            '--aptopt=Acquire::Retries "3"',
            *(f"--customize-hook={hook}" for hook in customize),
            SUITE,
            "-",
            *apt_sources(),
        ]
        log = self.workdir / "mmdebstrap.log"
        # mmdebstrap makes the chroot in TMPDIR: in memory where a tmpfs has room for it, else on disk.
        roomy = SCRATCH.is_dir() and shutil.disk_usage(SCRATCH).free > SCRATCH_NEEDED
        env = {**os.environ, "TMPDIR": str(SCRATCH if roomy else self.workdir)}
        with open(log, "w") as errors, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, env=env) as tarball:
            assert tarball.stdout is not None
            try:
                changes = (f"--change={change}" for change in BASE_CONFIG)
                imported = self("import", *changes, "-", BASE_IMAGE, stdin=tarball.stdout.fileno(), timeout=900, check=False)
            except subprocess.TimeoutExpired:
                tarball.kill()
                raise
            finally:
                tarball.stdout.close()
                tarball.wait(timeout=900)
        if tarball.returncode != 0:
            self("rmi", "--force", BASE_IMAGE, check=False)
            raise PodmanError(f"{' '.join(command)} exited with {tarball.returncode}:\n{tail(log.read_text(errors='replace'))}")
        if imported.returncode != 0:
            raise PodmanError(f"podman import exited with {imported.returncode}:\n{tail(imported.stderr)}")

    def build(self, context: Path, tag: str) -> None:
        """``podman build`` of ``context``'s Dockerfile, from the stored base only."""
        self("build", "--format", "docker", "--pull=never", "--network", "host", "--tag", tag, str(context), timeout=900)

    def remove_image(self, tag: str) -> None:
        """Remove ``tag``, and with it the intermediate images its build left that no other
        image is made from (podman keeps those an image of another build still needs)."""
        self("rmi", tag, timeout=300)


class Container:
    """One container of an image, under a name of its own, with ``volume`` at ``/app/data`` and
    its port 3001 published on ``port`` of the loopback interface."""

    def __init__(self, podman: Podman, image: str, volume: str, port: int) -> None:
        self.podman = podman
        self.image = image
        self.volume = volume
        self.name = f"cms-mock-test-{uuid.uuid4().hex[:12]}"
        self.url = f"http://127.0.0.1:{port}"
        self.port = port

    def start(self) -> None:
        """Run it, detached."""
        self.podman("run", "--detach", "--name", self.name, "--volume", f"{self.volume}:/app/data", "--publish", f"127.0.0.1:{self.port}:3001", self.image)

    def inspect(self, field: str) -> str:
        return self.podman("inspect", "--format", f"{{{{{field}}}}}", self.name).stdout.strip()

    def logs(self) -> str:
        done = self.podman("logs", self.name, check=False)
        return tail(done.stdout + done.stderr)

    def wait_healthy(self, timeout: float = 60) -> None:
        """Until ``/health`` answers 200 from outside; fails at once if the container stops."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.inspect(".State.Running") != "true":
                raise PodmanError(f"the container stopped ({self.inspect('.State.Status')}, exit code {self.inspect('.State.ExitCode')}):\n{self.logs()}")
            time.sleep(0.2)
        raise PodmanError(f"{self.url}/health did not answer 200 in {timeout} s:\n{self.logs()}")

    def stop(self) -> int:
        """Stop it (SIGTERM, then SIGKILL after 10 s) and return its exit code."""
        self.podman("stop", "--time", "10", self.name, timeout=60)
        return int(self.inspect(".State.ExitCode"))

    def remove(self) -> None:
        """Remove it, and end any ``conmon`` monitor of it that outlives it."""
        container_id = self.podman("inspect", "--format", "{{.Id}}", self.name, check=False).stdout.strip()
        self.podman("rm", "--force", "--time", "5", self.name, check=False, timeout=60)
        for pid in monitors(container_id) if container_id else []:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def monitors(container_id: str) -> list[int]:
    """The ``conmon`` processes still watching a container (or an exec session in it)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if words[0].endswith(b"conmon") and container_id.encode() in words:
            found.append(int(cmdline.parent.name))
    return found


def tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.splitlines()[-lines:])
