"""Replay the corpus through the diagnosis offline and score it: `python -m tests.corpus.score`.

Each log's seconds and events go through a fresh :class:`~loadtui.diagnose.Diagnoser` exactly as the session fed
them, so the score is that of the diagnosis in this checkout, not of the version that recorded the log. A finding
counts as named when it was shown with severity warning or critical at any second; information claims no problem.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from loadtui.config import RunConfig
from loadtui.diagnose import ORDER, Diagnoser
from loadtui.results.recorder import iter_log
from tests.corpus.cases import CASES, Case

WARNING = ("warning", "critical")


@dataclass(frozen=True)
class Replayed:
    """What the diagnosis named over one recorded run."""

    case: Case
    named: frozenset[str]
    """Ids shown as a warning or critical at some second."""
    info: frozenset[str]
    """Ids shown only as information."""

    @property
    def missed(self) -> frozenset[str]:
        return self.case.expect - self.named

    @property
    def false(self) -> frozenset[str]:
        """Warnings the labels do not allow."""
        return self.named - self.case.expect - self.case.permitted


def replay(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(ids named as warnings, ids shown only as information) when the log at `path` is diagnosed again."""
    diagnoser = Diagnoser()
    config = RunConfig()
    worst: dict[str, str] = {}
    for kind, value in iter_log(path):
        if kind == "header":
            config = RunConfig.from_dict(value.get("config") or {})
        elif kind == "event":
            diagnoser.note(value.kind, value.t, value.message, restarted=bool(value.data.get("restarted")))
            if value.kind in ("config", "applied", "workers") and isinstance(value.data.get("config"), dict):
                config = RunConfig.from_dict(value.data["config"])
        elif kind == "tick":
            shown, _, _ = diagnoser.update(value, config)
            for f in shown:
                if f.severity in WARNING or f.id not in worst:
                    worst[f.id] = f.severity
    named = frozenset(fid for fid, sev in worst.items() if sev in WARNING)
    return named, frozenset(worst) - named


def replay_all(cases: tuple[Case, ...] = CASES) -> list[Replayed]:
    """Every recorded case replayed (cases whose log is missing are left out)."""
    out = []
    for case in cases:
        if case.log.exists():
            named, info = replay(case.log)
            out.append(Replayed(case, named, info))
    return out


@dataclass
class Score:
    """One finding over the corpus."""

    finding: str
    expected: int = 0
    """Runs labelled with it."""
    hits: int = 0
    """...in which it was named."""
    false: int = 0
    """Runs in which it was named though the labels do not allow it."""
    named: int = 0
    runs: list[str] = field(default_factory=list)
    """The runs it was wrong on (missed or false)."""

    @property
    def precision(self) -> float | None:
        right = self.named - self.false
        return right / self.named if self.named else None

    @property
    def recall(self) -> float | None:
        return self.hits / self.expected if self.expected else None


def score(replayed: list[Replayed]) -> dict[str, Score]:
    """Precision and recall per finding id over the replayed runs."""
    scores: dict[str, Score] = {fid: Score(fid) for fid in ORDER}
    for r in replayed:
        for fid in r.case.expect:
            s = scores.setdefault(fid, Score(fid))
            s.expected += 1
            if fid in r.named:
                s.hits += 1
            else:
                s.runs.append(f"{r.case.name} (missed)")
        for fid in r.named:
            s = scores.setdefault(fid, Score(fid))
            s.named += 1
            if fid in r.false:
                s.false += 1
                s.runs.append(f"{r.case.name} (false)")
    return scores


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def table(replayed: list[Replayed]) -> str:
    """The corpus table the README shows."""
    scores = score(replayed)
    calm = [r for r in replayed if r.case.calm]
    false_calm = sum(len(r.named) for r in calm)
    rows = [
        "| finding | runs labelled with it | named in them | named in all | named wrongly | precision | recall |",
        "|---|---|---|---|---|---|---|",
    ]
    for fid in ORDER:
        s = scores[fid]
        if s.expected or s.named:
            rows.append(
                f"| `{fid}` | {s.expected} | {s.hits} | {s.named} | {s.false} | {_pct(s.precision)} | "
                f"{_pct(s.recall)} |"
            )
    total_named = sum(s.named for s in scores.values())
    total_false = sum(s.false for s in scores.values())
    total_expected = sum(s.expected for s in scores.values())
    total_hits = sum(s.hits for s in scores.values())
    rows.append(
        f"| **all** | {total_expected} | {total_hits} | {total_named} | {total_false} | "
        f"{_pct((total_named - total_false) / total_named if total_named else None)} | "
        f"{_pct(total_hits / total_expected if total_expected else None)} |"
    )
    rows.append("")
    rows.append(f"{len(replayed)} runs, {len(calm)} of them calm: {false_calm} false warning(s) on calm runs.")
    wrong = [
        f"{r.case.name}: missed {sorted(r.missed)}, false {sorted(r.false)}" for r in replayed if r.missed or r.false
    ]
    if wrong:
        rows.append("Wrong: " + "; ".join(wrong))
    return "\n".join(rows)


if __name__ == "__main__":
    print(table(replay_all()))
