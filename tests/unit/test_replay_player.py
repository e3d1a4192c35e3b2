"""The replay player without a terminal: playing, stepping, seeking, speed, and the configuration at each second."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadtui.results.recorder import read_log
from loadtui.tui.replay import ReplayPlayer
from tests.helpers import write_session_log


@pytest.fixture
def player(tmp_path: Path) -> ReplayPlayer:
    # Two segments of 10 s: 2 workers, then 3 (the config event sits at 10.5 s).
    return ReplayPlayer(read_log(write_session_log(tmp_path / "s.jsonl", segments=2, seconds=10)))


def test_playing_shows_one_second_per_second_times_the_speed(player: ReplayPlayer) -> None:
    assert player.advance(0.5) == []
    assert player.advance(0.5) == [0]
    player.scale(4)
    assert player.advance(0.5) == [1, 2]
    player.toggle()
    assert player.advance(10) == [] and not player.playing
    player.toggle()
    player.scale(64)
    shown = player.advance(1.0)
    assert shown == list(range(3, 20)) and player.at_end
    assert player.advance(1.0) == []


def test_speed_stays_within_its_bounds(player: ReplayPlayer) -> None:
    for _ in range(20):
        player.scale(2)
    assert player.speed == 64.0
    for _ in range(20):
        player.scale(0.5)
    assert player.speed == 0.25


def test_step_pauses_and_stays_inside_the_log(player: ReplayPlayer) -> None:
    assert player.step(-1) == 0 and not player.playing
    assert player.step(5) == 5
    assert player.step(100) == 19
    assert player.seek(0) == 0
    assert player.seek(-1) == 19


def test_after_a_jump_the_configuration_is_the_one_in_force_then(player: ReplayPlayer) -> None:
    assert player.config_at(0).workers == 2
    assert player.config_at(9).workers == 2  # t = 10.0, the change came at 10.5
    end = player.seek(-1)
    assert end is not None and player.config_at(end).workers == 3  # End shows the last configuration
    assert player.config_at(player.seek(0) or 0).workers == 2


def test_events_come_with_the_second_they_happened_in(player: ReplayPlayer) -> None:
    kinds = {i: [e.kind for e in player.events_for(i)] for i in range(20)}
    assert kinds[4] == ["finding-started"] and kinds[6] == []
    assert kinds[7] == ["mark"]  # at 7.2 s: shown with the second that ends at 8 s (index 7)
    assert kinds[10] == ["config"]
    assert sum(len(k) for k in kinds.values()) == len(player.log.events)


def test_an_empty_log_cannot_be_stepped(tmp_path: Path) -> None:
    log = read_log(write_session_log(tmp_path / "s.jsonl", segments=1, seconds=1))
    log.ticks.clear()
    empty = ReplayPlayer(log)
    assert empty.step(1) is None and empty.seek(-1) is None and empty.advance(5) == [] and empty.at_end
