"""Mutants of what mutmut leaves out: constants at module and class level, and the bodies of properties.

mutmut 3 mutates the bodies of plain functions only: no module constant, no class attribute (every `Thresholds`
field, every dataclass default) and no `@property` (the Little's-law figures, a segment's derived numbers). This
script applies mutmut's own operators (`mutmut.mutation.mutators`) to exactly those, in the modules `[tool.mutmut]
only_mutate` names, and runs the unit tests against each mutant in a copy of the tree, two at a time (the tests
of the mutated package first, then the rest; the first failure kills the mutant).

Strings are left alone (messages and labels: the tests match the words that matter, not whole sentences). In a
constant, its values and operators are mutated (a number + 1, True ↔ False, `<` ↔ `<=`); in a property, everything
mutmut mutates in a function.

    python bench/mutation_outside.py            # every module; a table of killed and surviving, then the survivors
    python bench/mutation_outside.py --list     # the mutants only, nothing run
    python bench/mutation_outside.py diagnose   # modules whose path contains one of the words
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path

import libcst as cst
from libcst.metadata import MetadataWrapper, PositionProvider
from mutmut.mutation.mutators import mutation_operators

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("src", "tests", "sample_app", "bench", "docs", "README.md", "pyproject.toml")
PROPERTY_DECORATORS = {"property", "cached_property"}
CONSTANT_KINDS = (cst.BaseNumber, cst.Name, cst.CSTNode, cst.UnaryOperation)
"""In a constant, the values and operators are mutated (a number + 1, True ↔ False, `<` ↔ `<=`...), not the calls
that build it (an argument dropped from a `Scenario(...)` or a compiled pattern only fails to import)."""
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "not fuzz and not slow", "--no-header"]
UNIT_IGNORED = ("test_lint.py", "test_import_hygiene.py", "test_compose.py")  # the tree's own checks, as mutmut


@dataclasses.dataclass(frozen=True)
class Mutant:
    path: str
    """Relative to the root."""
    line: int
    where: str
    """The constant's or the property's name."""
    before: str
    after: str
    source: str
    """The whole mutated module."""

    @property
    def name(self) -> str:
        return f"{self.path}:{self.line} {self.where}: {self.before} → {self.after}"


def targets() -> list[Path]:
    """The modules mutmut mutates (pyproject's `[tool.mutmut] only_mutate`)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    found: list[Path] = []
    for pattern in config["only_mutate"]:
        found += [Path(p) for p in sorted(glob.glob(str(ROOT / pattern))) if p.endswith(".py")]
    return [p for p in dict.fromkeys(found) if p.name != "__init__.py" or p.stat().st_size > 0]


def _is_property(node: cst.FunctionDef) -> bool:
    for dec in node.decorators:
        d = dec.decorator
        name = d.attr.value if isinstance(d, cst.Attribute) else d.value if isinstance(d, cst.Name) else None
        if name in PROPERTY_DECORATORS:
            return True
    return False


def _regions(body: Sequence[cst.CSTNode]) -> Iterator[tuple[str, cst.CSTNode, bool]]:
    """What mutmut skips: constant assignments at this level, the properties, and the same inside classes; the flag
    is True for a constant."""
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign | cst.AnnAssign) and small.value is not None:
                    target = small.target if isinstance(small, cst.AnnAssign) else small.targets[0].target
                    name = cst.Module([]).code_for_node(target)
                    if name != "__all__":
                        yield name, small.value, True
        elif isinstance(stmt, cst.ClassDef):
            for name, node, constant in _regions(stmt.body.body):
                yield f"{stmt.name.value}.{name}", node, constant
        elif isinstance(stmt, cst.FunctionDef) and _is_property(stmt):
            yield stmt.name.value, stmt.body, False


def _descendants(node: cst.CSTNode) -> Iterator[cst.CSTNode]:
    yield node
    for child in node.children:
        if not isinstance(child, cst.Annotation):
            yield from _descendants(child)


def unmutated_lines(text: str) -> set[int]:
    """Lines mutmut is told to leave alone: `# pragma: no mutate`, and from `... start` to `... end`."""
    lines, inside = set(), False
    for n, line in enumerate(text.splitlines(), 1):
        if "# pragma: no mutate" in line:
            inside = "no mutate start" in line or (inside and "no mutate end" not in line)
            lines.add(n)
        elif inside:
            lines.add(n)
    return lines


def mutants(path: Path) -> list[Mutant]:
    """Every mutant mutmut's operators make of the regions mutmut skips, one change each."""
    text = path.read_text()
    skipped = unmutated_lines(text)
    module = cst.parse_module(text)
    wrapper = MetadataWrapper(module)
    positions = wrapper.resolve(PositionProvider)
    module = wrapper.module
    rel = str(path.relative_to(ROOT))
    made: list[Mutant] = []
    for where, region, constant in _regions(module.body):
        for node in _descendants(region):
            if isinstance(node, cst.BaseString | cst.BaseFormattedStringContent):
                continue
            if positions[node].start.line in skipped:
                continue
            for kind, operator in mutation_operators:
                if kind is cst.BaseString or not isinstance(node, kind):
                    continue
                if constant and kind not in CONSTANT_KINDS:
                    continue
                for new in operator(node):
                    if new.deep_equals(node):
                        continue
                    before, after = module.code_for_node(node), module.code_for_node(new)
                    mutated = module.deep_replace(node, new)
                    made.append(
                        Mutant(rel, positions[node].start.line, where, _short(before), _short(after), mutated.code)  # type: ignore[attr-defined]
                    )
    return made


def _short(code: str) -> str:
    code = " ".join(code.split())
    return code if len(code) <= 60 else code[:57] + "..."


def unit_tests(path: str, root: Path) -> list[str]:
    """Every unit test file, those naming the mutated module's package first (a break there shows soonest)."""
    parts = Path(path).with_suffix("").parts[1:]  # ("loadtui", "diagnose", "thresholds")
    package = ".".join(parts[:2]) if len(parts) > 2 else ".".join(parts)
    near: list[str] = []
    far: list[str] = []
    for test in sorted((root / "tests" / "unit").glob("test_*.py")):
        if test.name in UNIT_IGNORED:
            continue
        text = test.read_text()
        named = package in text or f"from {parts[0]} import {parts[1]}" in text
        (near if named else far).append(str(test.relative_to(root)))
    return near + far


def _write(target: Path, source: str) -> None:
    """Write a module and drop its cached bytecode: a mutant of the same size written within the same second would
    otherwise be taken for the last one."""
    target.write_text(source)
    Path(importlib.util.cache_from_source(str(target))).unlink(missing_ok=True)


def run(mutant: Mutant, root: Path) -> bool:
    """True when the unit tests fail on the mutant (killed); they stop at the first failure."""
    target = root / mutant.path
    original = target.read_text()
    _write(target, mutant.source)
    try:
        env = {**os.environ, "PYTHONPATH": str(root / "src")}
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *PYTEST, *unit_tests(mutant.path, root)],
            cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120, check=False,
        )  # fmt: skip
        return done.returncode != 0
    except subprocess.TimeoutExpired:
        return True
    finally:
        _write(target, original)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("only", nargs="*", help="modules whose path contains one of these words")
    parser.add_argument("--list", action="store_true", help="print the mutants, run nothing")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    paths = [p for p in targets() if not args.only or any(w in str(p) for w in args.only)]
    every = [m for p in paths for m in mutants(p)]
    if args.list:
        for m in every:
            print(m.name)
        print(f"{len(every)} mutants in {len(paths)} modules")
        return 0
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="loadtui-mutants-") as tmp:
        roots = []
        for i in range(args.jobs):
            root = Path(tmp) / str(i)
            for name in COPIED:
                src = ROOT / name
                if src.is_dir():
                    shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__", "mutants"))
                else:
                    root.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, root / name)
            roots.append(root)
        free = list(roots)

        def one(m: Mutant) -> tuple[Mutant, bool]:
            root = free.pop()
            try:
                return m, run(m, root)
            finally:
                free.append(root)

        results: dict[str, list[tuple[Mutant, bool]]] = {}
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            for n, (m, killed) in enumerate(pool.map(one, every), 1):
                results.setdefault(m.path, []).append((m, killed))
                print(f"\r{n}/{len(every)} mutants run", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    total = killed_all = 0
    print("| module | mutants | killed | survived | score |\n|---|---|---|---|---|")
    for path, rows in results.items():
        dead = sum(k for _, k in rows)
        total, killed_all = total + len(rows), killed_all + dead
        print(f"| {path} | {len(rows)} | {dead} | {len(rows) - dead} | {dead / len(rows):.0%} |")
    if total:
        print(f"| **all** | {total} | {killed_all} | {total - killed_all} | **{killed_all / total:.1%}** |")
    print(f"\n{time.monotonic() - started:.0f} s. Survivors:")
    for rows in results.values():
        for m, killed in rows:
            if not killed:
                print(f"- {m.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
