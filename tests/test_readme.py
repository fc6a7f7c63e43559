"""The README's command blocks run as written, in order (issue 14; in the spirit of
Datasette's documentation tests).

The blocks of "A five-minute tour" and "Publishing to WeChat" are taken from
README.md, each command (backslash continuations joined) is run by bash in a copy
of the bundled workspace, and its exit code is checked: 0, or the number after
"exit" in its comment. Some comments' claims are checked too (see CLAIMS). Three
things are adapted so that the test runs unattended, and the README says so:
``EDITOR`` is a script that appends a line, ``serve`` gets ``--port 0`` and is
stopped once it listens, the fake WeChat server gets a free port and ``kill %1``
stops it.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("## A five-minute tour", "### Publishing to WeChat", "### The web desk")

# command (as written, a prefix is enough) -> texts its output must contain
CLAIMS: dict[str, tuple[str, ...]] = {
    "pipeline submit examples/reports/*.toml": ("accepted  #1 ",),
    "pipeline submit examples/reports/bad/*": ("field 'unit'", "1 rejected"),
    "pipeline queue": ("#1 ",),
    "pipeline show 1": ("history:",),
    "EDITOR=": ("saved and re-rendered",),
    "pipeline push --dry-run": ("would publish",),
    "PIPELINE_NOW=2026-06-27T20:00+08:00 pipeline push": ("published 1. #1", "manifest:"),
    "ls published/2026-06-27/": ("manifest.json", "01-"),
    "pipeline units": ("麓谷街道",),
    "pipeline wechat check": ("credentials and IP whitelist OK",),
    "pipeline --now 2026-06-28T20:00+08:00 push": ("published 1. #4",),
    "pipeline show 4": ("media_id", "msg_id"),
}


def commands() -> list[tuple[str, int]]:
    """(command, expected exit code) for every command line of the README's blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found: list[tuple[str, int]] = []
    for title in SECTIONS:
        section = text.split(title, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
        for block in re.findall(r"```sh\n(.*?)```", section, re.DOTALL):
            for line in block.replace("\\\n", " ").splitlines():
                command, _, comment = line.partition(" #")
                if not command.strip() or command.lstrip().startswith("#"):
                    if "in config.toml:" in line:
                        found.append((line.strip(), 0))
                    continue
                code = re.search(r"\bexit (\d)", comment)
                found.append((" ".join(command.split()), int(code[1]) if code else 0))
    return found


def workspace_copy(tmp: Path) -> Path:
    ws = tmp / "repo"
    ws.mkdir()
    for name in ("config.toml", "templates", "examples", "tests"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, ws / name,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(source, ws / name)
    for name in ("drafts", "published"):
        (ws / name).mkdir()
    (ws / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return ws


def configure(ws: Path, line: str) -> None:
    """Apply "# in config.toml: [table] key = value, key = value" to the file."""
    table, assignments = re.match(r"# in config.toml: \[(\w+)\] (.*)", line).groups()  # type: ignore[union-attr]
    config = ws / "config.toml"
    lines = config.read_text(encoding="utf-8").splitlines()
    start = lines.index(f"[{table}]")
    for key, value in re.findall(r'(\w+) = ("[^"]*")', assignments):
        for i in range(start + 1, len(lines)):
            if lines[i].split("=")[0].strip() == key:
                lines[i] = f"{key} = {value}"
                break
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    ws = workspace_copy(tmp_path)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf '\\n编辑补充的一句。\\n' >> \"$1\"\n", encoding="utf-8")
    editor.chmod(0o755)
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "PIPELINE_NOW", "VISUAL", "EDITOR")}
    fake: subprocess.Popen[str] | None = None
    port = str(free_port())
    ran = []
    try:
        for command, expected in commands():
            ran.append(command)
            if command.startswith("# in config.toml:"):
                configure(ws, command.replace("8081", port))
                continue
            if command.startswith("alias "):
                continue
            if command.startswith(("export ", "unset ")):
                word, rest = command.split(" ", 1)
                if word == "export":
                    key, value = rest.split("=", 1)
                    env[key] = value
                else:
                    env.pop(rest, None)
                continue
            if "fakewechat.py" in command:
                argv = shlex.split(command.rstrip("&").replace("8081", port))
                fake = subprocess.Popen(argv, cwd=ws, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, text=True)
                assert fake.stdout is not None
                fake.stdout.readline()  # it prints its address once it listens
                continue
            if command.startswith("kill %1"):
                assert fake is not None
                fake.terminate()
                fake.wait(timeout=30)
                fake = None
                continue
            if command == "pipeline serve":
                check_serve(ws, env)
                continue
            shell = command.replace("pipeline ", ".venv/bin/pipeline ", 1)
            shell = re.sub(r"\bEDITOR=\S+", f"EDITOR={editor}", shell)
            done = subprocess.run(["bash", "-c", shell], cwd=ws, env=env, text=True,
                                  capture_output=True, timeout=300)
            assert done.returncode == expected, (command, done.stdout, done.stderr)
            assert "Traceback" not in done.stderr, (command, done.stderr)
            assert "article None" not in done.stdout, (command, done.stdout)
            # The longest matching prefix names the command ("pipeline push --dry-run" is
            # not "pipeline push").
            matching = [p for p in CLAIMS if command.startswith(p)]
            for claim in CLAIMS[max(matching, key=len)] if matching else ():
                assert claim in done.stdout + done.stderr, (command, claim, done.stdout)
    finally:
        if fake is not None:
            fake.kill()
            fake.wait()
    assert "pipeline serve" in ran and any("fakewechat" in c for c in ran)
    assert ran[-1] == "pipeline serve" and "kill %1" in ran


def check_serve(ws: Path, env: dict[str, str]) -> None:
    proc = subprocess.Popen([".venv/bin/pipeline", "serve", "--port", "0"], cwd=ws, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    try:
        first = proc.stderr.readline()
        for line in proc.stderr:
            if "Uvicorn running on" in line:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert "pipeline serve: http://127.0.0.1:" in out
    assert not first.startswith("warning:")  # the tour unset PIPELINE_NOW first
