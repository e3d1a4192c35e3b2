"""The diagnosis's accuracy on the labelled corpus of recorded sessions (tests/corpus), replayed offline in seconds.

Targets: no warning on a calm run; precision and recall of 95% or better for every finding. When the collectors or
the log change, record the corpus again (`python -m tests.corpus.record`) and check it against the live zoo tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.corpus.cases import CASES
from tests.corpus.score import Replayed, replay_all, score, table

README = Path(__file__).parents[2] / "README.md"
TARGET = 0.95


@pytest.fixture(scope="module")
def replayed() -> list[Replayed]:
    return replay_all()


def test_the_corpus_is_big_enough_and_every_run_is_recorded() -> None:
    assert len(CASES) >= 40 and sum(c.calm for c in CASES) >= 12
    assert len({c.name for c in CASES}) == len(CASES)
    missing = [c.name for c in CASES if not c.log.exists()]
    assert not missing, f"record them: python -m tests.corpus.record {' '.join(missing)}"


def test_a_calm_run_raises_no_warning(replayed: list[Replayed]) -> None:
    false = {r.case.name: sorted(r.named) for r in replayed if r.case.calm and r.named}
    assert not false, false


@pytest.mark.parametrize("measure", ["precision", "recall"])
def test_every_finding_is_named_where_it_is_true_and_only_there(replayed: list[Replayed], measure: str) -> None:
    below = {
        s.finding: (getattr(s, measure), s.runs)
        for s in score(replayed).values()
        if getattr(s, measure) is not None and getattr(s, measure) < TARGET
    }
    assert not below, below


def test_the_readme_shows_the_corpus_table_as_the_command_prints_it(replayed: list[Replayed]) -> None:
    assert table(replayed) in README.read_text(), "paste `python -m tests.corpus.score` into the README"
