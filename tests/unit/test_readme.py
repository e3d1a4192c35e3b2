"""Every `loadtui` command in the README is one a user can paste: it parses, and what it names exists."""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from loadtui.cli import build_headless_parser, build_parser, config_from_args, sweep_from_args

README = Path(__file__).parents[2] / "README.md"
USER_FILES = ("my_locustfile.py",)
"""Files the README asks users to bring: created empty so the command can be checked."""

PROSE = {"loadtui headless"}
"""Names of a mode in a sentence, not commands to paste."""


def commands() -> list[str]:
    """`loadtui …` from inline code and from shell blocks (`$ loadtui …`, with `\\` continuations joined)."""
    text = README.read_text()
    found = re.findall(r"`(loadtui [^`]+)`", text)
    joined = re.sub(r"\\\n\s*", "", text)
    for line in joined.splitlines():
        line = line.strip().removeprefix("$ ")
        if line.startswith("loadtui ") and "`" not in line:
            found.append(line.split("  #")[0].strip())
    skip = ("loadtui replay", "loadtui report", "loadtui compare")  # they need recorded files; tested elsewhere
    return [c for c in dict.fromkeys(found) if c not in PROSE and not c.startswith(skip)]


def test_the_readme_has_commands_to_check() -> None:
    assert len(commands()) >= 15


@pytest.mark.parametrize("command", commands())
def test_a_readme_command_parses_and_names_what_exists(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LOADTUI_STATS_TOKEN", "as-the-readme-exports")
    for name in USER_FILES:
        (tmp_path / name).write_text("")
    args = shlex.split(command)[1:]
    if args[:1] == ["headless"]:
        ns = build_headless_parser().parse_args(args[1:])
        assert ns.duration is not None or ns.vary, command
    else:
        ns = build_parser().parse_args(args)
    config = config_from_args(ns)
    sweep_from_args(ns, config)
    if config.app and config.app.startswith("python -m "):
        module = config.app.split()[2]
        assert importlib.util.find_spec(module) is not None, f"{command}: no module {module} after the quick start"


DOCUMENTATION_TABLES = (
    "| what you want to see | run, then press |",
    "| to scale | how | tested on this machine (loopback) by |",
    "| id | detected when | what to do |",
    "| finding | needs |",
    "| where | what belongs there |",
    "| what | command | result | target |",
)
"""Tables that document (commands, rules, layout; the benchmarks' summary names the command of each row): every
other table, and every block of output, is printed by the command in its marker (bench/readme.py reprints them)."""


def test_every_measured_table_and_output_names_the_command_that_prints_it() -> None:
    import importlib.util
    import re
    import shlex

    lines = README.read_text().splitlines()
    unmarked = []
    fence_open = False
    for i, line in enumerate(lines):
        starts_table = line.startswith("|") and not lines[i - 1].startswith("|")
        starts_output = line.startswith("```") and not fence_open and line.strip() in ("```", "```text")
        if line.startswith("```"):
            fence_open = not fence_open
        if not (starts_table or starts_output) or (starts_table and line.strip() in DOCUMENTATION_TABLES):
            continue
        marker = lines[i - 1].strip()
        printed = re.fullmatch(r"<!-- printed by: (.+) -->", marker)
        if printed:
            words = shlex.split(printed.group(1))
            if words[0] == "python" and words[1] == "-m":
                assert importlib.util.find_spec(words[2]) is not None, marker
            elif words[0] == "python":
                assert (README.parent / words[1]).is_file(), marker
            else:
                assert words[0] == "loadtui", marker
        elif marker != "<!-- printed by the $ commands in it -->":
            unmarked.append(f"README.md:{i + 1}: {line[:60]}")
    assert not unmarked, "mark each with the command that prints it (bench/readme.py):\n" + "\n".join(unmarked)
