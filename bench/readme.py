"""Print the README's measured tables again, so that none can go stale: each is marked with the command that prints it.

    python bench/readme.py                 # run every marked command and rewrite its block in README.md
    python bench/readme.py --only corpus   # only the markers (or `$` commands) whose command contains "corpus"
    python bench/readme.py --list          # the marked blocks and their commands, nothing run

A marker is an HTML comment on the line before a block (invisible on GitHub):

- `<!-- printed by: COMMAND -->`: the block (a fenced block or a Markdown table) is COMMAND's standard output.
- `<!-- printed by the $ commands in it -->`: a fenced block of `$ command` lines, each followed by the step table
  and the verdict that command printed; each command is run again and its step table and verdict put back.

Commands are run as argument lists from the project's root (`python` is this interpreter, `loadtui` is
`python -m loadtui`); whole benchmarks take minutes each, so this is run by hand, not in CI. The fast test suite
checks that every measured table has its marker (`tests/unit/test_readme.py`).
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PRINTED_BY = re.compile(r"^<!-- printed by: (?P<command>.+?) -->$")
BY_ITS_COMMANDS = "<!-- printed by the $ commands in it -->"
KEEP_FROM = re.compile(r"^ ?#  step")
"""Where a sweep's step table starts in headless output; it is kept through the `Verdict:` line."""


@dataclass
class Block:
    """A marked block: the marker's line, and the block's first and last line (0-based, inclusive)."""

    marker: int
    first: int
    last: int
    command: str | None
    """The command that prints the whole block; None for a block of `$ command` lines."""


def blocks(lines: list[str]) -> list[Block]:
    """Every marked block of the README."""
    found = []
    for i, line in enumerate(lines):
        printed = PRINTED_BY.match(line.strip())
        if not printed and line.strip() != BY_ITS_COMMANDS:
            continue
        first = i + 1
        if lines[first].startswith("```"):
            last = next(j for j in range(first + 1, len(lines)) if lines[j].startswith("```"))
        else:  # a Markdown table: its rows
            last = first
            while last + 1 < len(lines) and lines[last + 1].startswith("|"):
                last += 1
        found.append(Block(i, first, last, printed.group("command") if printed else None))
    return found


def argv(command: str) -> list[str]:
    """A README command as an argument list for this interpreter."""
    words = shlex.split(command)
    if words[0] == "python":
        return [sys.executable, *words[1:]]
    if words[0] == "loadtui":
        return [sys.executable, "-m", "loadtui", *words[1:]]
    return words


def run(command: str) -> list[str]:
    """The lines `command` prints (its exit status is part of what it says: 3 and 4 are verdicts, not failures)."""
    print(f"readme: running {command}", file=sys.stderr)
    done = subprocess.run(argv(command), cwd=ROOT, capture_output=True, text=True, timeout=3600, check=False)
    if done.returncode not in (0, 3, 4):
        raise SystemExit(f"readme: {command} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout.rstrip("\n").splitlines()


def sweep_lines(command: str) -> list[str]:
    """A sweep's step table and verdict, as headless prints them."""
    out = run(command)
    start = next((i for i, line in enumerate(out) if KEEP_FROM.match(line)), None)
    end = next((i for i, line in enumerate(out) if line.startswith("Verdict:")), None)
    if start is None or end is None:
        raise SystemExit(f"readme: {command} printed no step table and verdict")
    return out[start : end + 1]


def commands_in(body: list[str]) -> list[tuple[str, list[str], list[str]]]:
    """The `$ command` lines of a block (continued with a trailing backslash): each command, its lines as shown (with
    their comments), and the lines printed under it."""
    found: list[tuple[str, list[str], list[str]]] = []
    i = 0
    while i < len(body):
        if body[i].startswith("$ "):
            shown = [body[i]]
            while shown[-1].rstrip().endswith("\\") and i + 1 < len(body):
                i += 1
                shown.append(body[i])
            text = " ".join(line.rstrip().removesuffix("\\").strip() for line in shown)[2:]
            found.append((text.partition("  #")[0].strip(), shown, []))
        elif found:
            found[-1][2].append(body[i])
        i += 1
    for _, _, printed in found:
        while printed and not printed[-1].strip():
            printed.pop()
    return found


def regenerate(lines: list[str], block: Block, only: str | None = None) -> list[str]:
    """The block's new lines (without the marker); of a block of `$` commands, only those containing `only`."""
    fenced = lines[block.first].startswith("```")
    if block.command is not None:
        out = run(block.command)
        return [lines[block.first], *out, lines[block.last]] if fenced else out
    body = lines[block.first + 1 : block.last]
    new = [lines[block.first]]
    for command, shown, printed in commands_in(body):
        if new[-1] != lines[block.first]:
            new.append("")
        new += shown
        new += sweep_lines(command) if only is None or only in command else printed
    return [*new, lines[block.last]]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default=None, help="only the markers whose command contains this text")
    p.add_argument("--list", action="store_true", help="list the marked blocks and their commands")
    args = p.parse_args()
    lines = README.read_text().splitlines()
    marked = blocks(lines)
    if args.list:
        for b in marked:
            print(f"README.md:{b.marker + 1}: {b.command or 'the $ commands in the block'}")
        return
    for b in reversed(marked):  # from the end, so earlier line numbers stay right
        shown = b.command or " ".join(c for c, _, _ in commands_in(lines[b.first + 1 : b.last]))
        if args.only and args.only not in shown:
            continue
        lines[b.first : b.last + 1] = regenerate(lines, b, args.only)
    README.write_text("\n".join(lines) + "\n")
    print("readme: README.md rewritten; review with git diff", file=sys.stderr)


if __name__ == "__main__":
    main()
