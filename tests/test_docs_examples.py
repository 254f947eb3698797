"""Every example in README.md and docs/ runs against live servers and prints what its page says.

A page cannot drift from the code when its examples are executed as written. The convention
every author follows:

- ```` ```bash ```` blocks run; a page's ``bash`` and ``console`` blocks run in order in one
  ``bash -eo pipefail`` session, so a variable set in one block is there in the next.
- ```` ```console ```` blocks hold ``$ command`` lines (a line ending in ``\\`` continues), each
  followed by the output the page promises, compared line by line: a line ``...`` matches any
  number of lines, ``...`` inside a line any text (doctest's ELLIPSIS).
- ```` ```python ```` blocks run with the venv's python and must exit 0; one that defines
  ``test_`` functions is a consumer's test file and runs under a real ``pytest`` in a directory
  of its own (the plugin starts its own servers).
- A ``bash`` block of start commands (``cms-mock``, ``python -m cms_mock``, ``uvicorn``, one a
  line) starts each in the background on free ports (its port flags rewritten, or added where it
  names none), in a directory of its own, until ``/health`` answers on each; then stops it with
  ``SIGINT``, as ``Ctrl-C`` would, and it must exit 0.
- A block preceded by ``<!-- not run: reason -->`` is skipped: it needs Docker, installs
  packages, or runs the project's own suite (which runs this file).

Each page gets a fresh CMS and profile service over a data directory of its own (``data/`` in
the page's working directory, so ``jq . data/customers.json`` reads the CMS's file);
``localhost:3001`` and ``localhost:8000`` are rewritten to their ports, in the commands and in
the expected output alike. ``CMS_URL``/``PROFILE_URL`` hold their URLs, the venv's ``bin`` is
first on ``PATH`` (``.venv/bin/cms-mock`` works too), and a page that says ``$DATABASE_URL``
gets a new database of the tests' throwaway PostgreSQL cluster, which its servers use as well.
A page that runs ``curl``, ``jq`` or ``psql`` needs it installed: with ``CI=true`` a missing
one fails the run. A consumer's test file may import only the standard library and what
``cms-mock[pytest]`` installs.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cms_mock.pytest_plugin import ServerProcess
from tests.support import ROOT
from tests.support.ports import free_port
from tests.support.servers import LiveServer
from tests.support.tools import require

pytestmark = pytest.mark.live

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
RUNNABLE = ("bash", "console", "python")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
NOT_RUN = re.compile(r"^\s*<!--\s*not run:.*-->\s*$")
BLOCK_TIMEOUT = 60
PYTEST_TIMEOUT = 180
START_TIMEOUT = 60
# A line that starts a server and keeps running: cms-mock (but not its export, import or check), as a
# module, or under uvicorn; environment assignments may precede it.
START = re.compile(r"^(?:\w+=\S*\s+)*(?:(?:\.venv/bin/)?cms-mock(?!\s+(?:export|import|check)\b)|python3? -m cms_mock|uvicorn)\b")
COMMENT = re.compile(r"(?:^|\s+)#.*$")
SERVE_ALL = re.compile(r"\bserve all\b")
# The Debian package that has each tool the examples run.
TOOLS = {"curl": "curl", "jq": "jq", "psql": "postgresql"}


@dataclass(frozen=True)
class Block:
    """A fenced block: its language, the line of its opening fence, its text without the fence's indentation."""

    lang: str
    line: int
    text: str
    skipped: bool


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        body = "\n".join(line[indent:] if not line[:indent].strip() else line for line in lines[index + 1 : end])
        found.append(Block(opening["lang"], index + 1, body, bool(NOT_RUN.match(previous))))
        index = end + 1
    return found


def runnable(page: Path) -> list[Block]:
    return [block for block in blocks(page) if block.lang in RUNNABLE and not block.skipped]


def start_commands(block: Block) -> list[str]:
    """A ``bash`` block's commands when each starts a server (comments dropped); else none."""
    lines = [COMMENT.sub("", line).strip() for line in block.text.splitlines()] if block.lang == "bash" else []
    lines = [line for line in lines if line]
    return lines if lines and all(START.match(line) for line in lines) else []


def on_free_ports(command: str) -> tuple[str, list[int]]:
    """The command listening on free ports: each port flag it takes rewritten, or added."""
    ports: list[int] = []
    for flag in ("--cms-port", "--profile-port") if SERVE_ALL.search(command) else ("--port",):
        ports.append(free_port())
        given = re.compile(rf"(?<![\w-]){flag}[= ]\d+")
        command = given.sub(f"{flag} {ports[-1]}", command) if given.search(command) else f"{command} {flag} {ports[-1]}"
    return command, ports


class Started(ServerProcess):
    """A documented start command, run as written but on free ports (it binds them itself), in ``cwd``."""

    def __init__(self, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.text, ports = on_free_ports(command)
        merged = {**os.environ, "LOG_LEVEL": "warning", **env}
        super().__init__(["bash", "-c", f"cd {shlex.quote(str(cwd))} && {self.text}"], cwd / f"server-{ports[0]}.log", merged, ports=ports)


def run_starts(starts: list[str], work: Path, env: dict[str, str]) -> None:
    """Each command started, healthy on each of its ports, then stopped as ``Ctrl-C`` stops it;
    in a directory of its own (its data apart from the page's services'), where the files the
    page made so far (a spec to serve) are at hand."""
    cwd = work / "started"
    if not cwd.exists():
        cwd.mkdir()
        (cwd / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for made in work.iterdir():
        if made.is_file() and not (cwd / made.name).exists():
            (cwd / made.name).symlink_to(made)
    for command in starts:
        with Started(command, cwd, env).start(wait=False) as server:
            try:
                server.wait_ready(START_TIMEOUT)
            except RuntimeError as exc:
                server.stop(signal.SIGKILL)
                raise ExampleFailed(f"$ {server.text}\n{exc}") from None
            status = server.stop(signal.SIGINT)
        if status != 0:
            raise ExampleFailed(f"$ {server.text}\nexited with status {status} on SIGINT:\n{server.output()}")


def require_tools(examples: list[Block], env: dict[str, str]) -> None:
    """Each tool the page's shell blocks run, installed (``require``: in CI a missing one fails)."""
    shell = "\n".join(block.text for block in examples if block.lang != "python")
    for tool, package in TOOLS.items():
        if re.search(rf"(?<![\w/.-]){tool}\b", shell) and shutil.which(tool, path=env["PATH"]) is None:
            require(tool, f"the examples run it; .ci/run installs Debian's {package} package")


def extra_imports() -> set[str]:
    """What ``cms-mock[pytest]`` lets a consumer's test import: the standard library, cms_mock, the extra."""
    with open(ROOT / "pyproject.toml", "rb") as handle:
        extra = tomllib.load(handle)["project"]["optional-dependencies"]["pytest"]
    named = {re.split(r"[^\w.-]", requirement, maxsplit=1)[0].lower().replace("-", "_") for requirement in extra}
    return {*sys.stdlib_module_names, "cms_mock", *named}


def imports(source: str) -> set[str]:
    """The top-level modules a Python file imports."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def commands(console: str) -> list[tuple[str, list[str]]]:
    """A console block's ``$ command`` lines, each with the output lines that follow it."""
    parsed: list[tuple[str, list[str]]] = []
    continued = False
    for line in console.splitlines():
        if continued:
            parsed[-1] = (parsed[-1][0] + "\n" + line, [])
        elif line.startswith("$ "):
            parsed.append((line[2:], []))
        elif parsed:
            parsed[-1][1].append(line)
        else:
            raise AssertionError(f"console output before any '$ command': {line!r}")
        continued = line.endswith("\\")
    return parsed


def matches(expected: list[str], output: str) -> bool:
    """doctest's ELLIPSIS, line by line: ``...`` alone matches any lines, within a line any text."""
    pattern = ""
    for line in expected:
        stripped = line.rstrip()
        if stripped == "...":
            pattern += r"(?:[^\n]*\n)*?"
        else:
            pattern += ".*?".join(re.escape(part) for part in stripped.split("...")) + r"\n"
    actual = "".join(line.rstrip() + "\n" for line in output.replace("\r", "").splitlines())
    return re.fullmatch(pattern, actual) is not None


class ExampleFailed(AssertionError):
    pass


class Shell:
    """One ``bash -eo pipefail`` per page; a block is sent whole and read back up to a marker."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            bufsize=0,
            start_new_session=True,
        )

    def run(self, script: str) -> str:
        """What ``script`` printed (standard output and error, as a terminal shows them)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        marker = f"__example_done_{uuid.uuid4().hex}__"
        # Standard input is /dev/null: a command reading it must not eat the blocks that follow.
        self.process.stdin.write(f"{{\n{script}\n}} < /dev/null\nprintf '\\n%s\\n' {marker}\n".encode())
        self.process.stdin.flush()
        output = bytearray()
        ending = f"\n{marker}\n".encode()
        deadline = time.monotonic() + BLOCK_TIMEOUT
        while not output.endswith(ending):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ExampleFailed(f"still running after {BLOCK_TIMEOUT} s:\n{output.decode(errors='replace')}")
            if select.select([self.process.stdout], [], [], remaining)[0]:
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    status = self.process.wait()
                    raise ExampleFailed(f"exited with status {status}:\n{output.decode(errors='replace')}")
                output += chunk
        return output[: -len(ending)].decode(errors="replace")

    def close(self) -> None:
        """The shell and whatever an example left running in its process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def is_test_file(block: Block) -> bool:
    return block.lang == "python" and re.search(r"^def test_", block.text, re.MULTILINE) is not None


def run_python(block: Block, work: Path, env: dict[str, str]) -> None:
    script = work / f"example_{block.line}.py"
    script.write_text(block.text + "\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=env, capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    if done.returncode != 0:
        raise ExampleFailed(f"exited with status {done.returncode}:\n{done.stdout}{done.stderr}")


def run_pytest(block: Block, work: Path, env: dict[str, str]) -> None:
    """A consumer's test file, as its first-line comment names it, in a project of its own."""
    uninstalled = imports(block.text) - extra_imports()
    if uninstalled:
        raise ExampleFailed(f"imports {', '.join(sorted(uninstalled))}, which pip install 'cms-mock[pytest]' does not install")
    named = re.match(r"#\s*(test_\w+\.py)", block.text)
    project = work / f"project_{block.line}"
    project.mkdir()
    (project / (named[1] if named else "test_example.py")).write_text(block.text + "\n", encoding="utf-8")
    # Only cms-mock's plugin, loaded by its entry point's name: a consumer's environment with
    # cms-mock[pytest] has none of the test extra's plugins (schemathesis, hypothesis).
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "cms_mock"],
        cwd=project,
        env={**env, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT,
    )
    if done.returncode != 0:
        raise ExampleFailed(f"pytest exited with status {done.returncode}:\n{done.stdout}{done.stderr}")


@contextlib.contextmanager
def servers(work: Path, env: dict[str, str]) -> Iterator[tuple[LiveServer, LiveServer]]:
    """A CMS and a profile service over ``work/data``, started side by side."""
    with LiveServer(work / "data", env=env) as cms, LiveServer(work / "data", "serve", "profile", env=env) as profile:
        for server in (cms.start(wait=False), profile.start(wait=False)):
            server.wait_ready()
        yield cms, profile


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def at_ports(block: Block, cms: LiveServer, profile: LiveServer) -> Block:
    """The block with the documented addresses rewritten to the servers' real ones."""
    text = block.text.replace("localhost:3001", f"127.0.0.1:{cms.port}").replace("localhost:8000", f"127.0.0.1:{profile.port}")
    return Block(block.lang, block.line, text, block.skipped)


def run_in_session(block: Block, shell: Shell, work: Path, env: dict[str, str]) -> None:
    if block.lang == "python":
        run_python(block, work, env)
    elif starts := start_commands(block):
        run_starts(starts, work, env)
    elif block.lang == "bash":
        shell.run(block.text)
    else:
        for command, expected in commands(block.text):
            output = shell.run(command)
            if not matches(expected, output):
                raise ExampleFailed(f"$ {command}\nexpected:\n" + "\n".join(expected) + f"\ngot:\n{output}")


def check(page: Path, block: Block, run: Callable[[Block], None]) -> None:
    """Run ``block``; a failure is reported with its page and line, without this file's traceback."""
    try:
        run(block)
    except ExampleFailed as failure:
        message = f"{page_id(page)}:{block.line}: the {block.lang} block: {failure}"
    else:
        return
    pytest.fail(message, pytrace=False)


def page_param(page: Path) -> object:
    """The page, skipped with its reason when it has no example to run."""
    if runnable(page):
        return pytest.param(page, id=page_id(page))
    return pytest.param(page, id=page_id(page), marks=pytest.mark.skip(reason="no example to run: no bash, console or python block that is not marked not run"))


@pytest.mark.parametrize("page", [page_param(page) for page in PAGES])
def test_the_page_s_examples_run_as_written(page: Path, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    examples = runnable(page)
    env = {name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    require_tools(examples, env)
    if any("$DATABASE_URL" in block.text for block in examples):
        env["DATABASE_URL"] = request.getfixturevalue("postgres").database()
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    for test_file in filter(is_test_file, examples):  # a consumer's suite: its servers are the plugin's
        check(page, test_file, lambda block: run_pytest(block, tmp_path, env))
    in_session = [block for block in examples if not is_test_file(block)]
    if not in_session:
        return
    with servers(tmp_path, env) as (cms, profile):
        env |= {"CMS_URL": cms.url, "PROFILE_URL": profile.url}
        shell = Shell(tmp_path, env)
        try:
            for block in in_session:
                check(page, at_ports(block, cms, profile), lambda block: run_in_session(block, shell, tmp_path, env))
        finally:
            shell.close()
