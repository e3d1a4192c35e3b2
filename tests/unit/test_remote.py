"""Workers' figures over UDP: the datagram format, its signature, and a receiver that never trusts what arrives."""

from __future__ import annotations

import itertools
import socket
import time
from typing import Any, cast

import pytest

from loadtui.appstats import WireError, decode, encode, parse_stats_url
from loadtui.errors import UsageError
from loadtui.measure.remote import StatsListener, parse_listen
from tests.helpers import refused

SEQ = itertools.count(1)
"""Each record a sender sends is numbered (signed with it, so a replay is refused)."""


class NoSocket:
    """The receiver's socket, never bound: these tests hand it datagrams themselves (the real one is in
    tests/integration/test_remote_stats.py)."""

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", 9999)

    def close(self) -> None:
        pass


def listening(token: str | None) -> StatsListener:
    return StatsListener("127.0.0.1", 9999, token, bind=lambda host, port: cast(socket.socket, NoSocket()))


def record(pid: int = 41, host: Any = "web-1", **kw: Any) -> dict[str, Any]:
    base = {"pid": pid, "host": host, "time": time.time(), "in_flight": 2, "requests": 100, "loop_lag_max_ms": 1.5,
            "cpu_percent": 37.5, "rss_bytes": 60 * 2**20, "pool": {"pool_size": 4, "requests_waiting": 0},
            "seq": next(SEQ)}  # fmt: skip
    return {**base, **kw}


def test_a_record_survives_the_wire_signed_or_not() -> None:
    assert decode(encode(record(), None), None)["pid"] == 41
    signed = encode(record(), "s3cret")
    assert decode(signed, "s3cret")["host"] == "web-1"
    assert decode(signed, None)["pid"] == 41  # a receiver without a token (loopback only) takes it


@pytest.mark.parametrize(
    ("datagram", "token", "unauthenticated"),
    [
        (encode(record(), None), "s3cret", True),  # unsigned, but a token is expected
        (encode(record(), "wrong"), "s3cret", True),
        (encode(record(), "s3cret").replace(b'"pid":41', b'"pid":42'), "s3cret", True),  # tampered body
        (b"LT1 - [1,2]", None, False),
        (b"LT1 - {not json", None, False),
        (b"GET / HTTP/1.1", None, False),
        (b"", None, False),
        (b'LT1 - {"pid": 1, "cpu_percent": 1e999}', None, False),  # infinity, spelled as a number
        (b'LT1 - {"pid": 1, "cpu_percent": NaN}', None, False),
        (b"LT1 - " + b'{"a":' * 100_000 + b"1" + b"}" * 100_000, None, False),  # deeper than any record
    ],
)
def test_bad_datagrams_are_refused(datagram: bytes, token: str | None, unauthenticated: bool) -> None:
    with pytest.raises(WireError) as info:
        decode(datagram, token)
    assert info.value.unauthenticated is unauthenticated


def test_stats_urls_and_listen_addresses_are_checked() -> None:
    assert parse_stats_url("udp://127.0.0.1:9999") == ("127.0.0.1", 9999)
    assert parse_stats_url("udp://[::1]:9999") == ("::1", 9999)
    for bad in ("127.0.0.1:9999", "udp://host", "udp://host:0", "tcp://host:1", "udp://host:9²"):
        with pytest.raises(ValueError, match="udp://HOST:PORT"):
            parse_stats_url(bad)
    assert parse_listen("127.0.0.1:9999", None) == ("127.0.0.1", 9999)
    assert parse_listen("0.0.0.0:9999", "s3cret") == ("0.0.0.0", 9999)
    with pytest.raises(UsageError, match="set LOADTUI_STATS_TOKEN"):
        parse_listen("0.0.0.0:9999", None)
    for bad in ("9999", "127.0.0.1:9²", "127.0.0.1:٩٩"):  # Unicode digits are digits to str.isdigit, not to int
        with pytest.raises(UsageError, match="must be HOST:PORT"):
            parse_listen(bad, None)


def test_the_receiver_keeps_the_latest_record_per_worker_and_counts_what_it_drops() -> None:
    listener = listening("s3cret")
    try:
        now = time.time()
        assert listener.receive(encode(record(requests=100), "s3cret"), now)
        assert listener.receive(encode(record(pid=7, host="web-2"), "s3cret"), now)
        assert not listener.receive(encode(record(), "wrong"), now)
        assert not listener.receive(encode(record(cpu_percent="lots"), "s3cret"), now)
        assert not listener.receive(encode(record(host=["x"]), "s3cret"), now)
        assert not listener.receive(encode(record(requests="many"), "s3cret"), now)
        assert not listener.receive(b"\x00" * 100, now)
        assert (listener.received, listener.unauthenticated, listener.malformed) == (2, 1, 4)
        rows, pools = listener.sample(now)
        assert [(w.name, w.cpu_percent, w.rss_bytes) for w in rows] == [("web-1:41", 37.5, 60 * 2**20),
                                                                          ("web-2:7", 37.5, 60 * 2**20)]  # fmt: skip
        assert len(pools) == 2
        listener.receive(encode(record(requests=160), "s3cret"), now + 1)
        rows, _ = listener.sample(now + 1)
        assert rows[0].requests_per_s == 60.0
        stale, _ = listener.sample(now + 5)
        assert [w.stale_s for w in stale] == [4.0, 5.0]  # silent: shown stale...
        gone, _ = listener.sample(now + 11.5)
        assert gone == []  # ...then gone
    finally:
        listener.stop()


def test_a_signed_datagram_counts_once_and_only_while_it_is_fresh() -> None:
    listener = listening("s3cret")
    try:
        now = time.time()
        datagram = encode(record(time=now), "s3cret")
        assert listener.receive(datagram, now)
        assert not listener.receive(datagram, now + 1)  # the same datagram again: a replay
        assert not listener.receive(encode(record(time=now - 61), "s3cret"), now)  # too old
        assert not listener.receive(encode(record(time=now, seq=None), "s3cret"), now)  # unnumbered
        assert listener.receive(encode(record(time=now + 1), "s3cret"), now + 1)
        assert (listener.received, listener.replayed) == (2, 3)
        # Gone and forgotten, its numbers are kept for the window: the first datagram is still refused.
        listener.sample(now + 15)
        assert not listener.receive(datagram, now + 15)
    finally:
        listener.stop()


def test_hostile_hosts_cannot_reach_the_terminal_nor_hold_memory() -> None:
    listener = listening(None)
    try:
        now = time.time()
        assert not listener.receive(encode(record(host="web\x1b[2J"), None), now)  # an escape sequence
        assert not listener.receive(encode(record(host="web 1"), None), now)
        for pid in range(1024 + 5):
            listener.receive(encode(record(pid=pid, host=f"h{pid}"), None), now)
        assert listener.overflow == 5 and listener.malformed == 2
        assert len(listener.sample(now)[0]) == 1024  # at most 1,024 workers tracked
        assert listener.sample(now + 11)[0] == [] and listener._joiners == {}
        assert listener.dropped == 7
    finally:
        listener.stop()


@pytest.mark.parametrize(
    ("text", "token", "address"),
    [
        ("127.0.0.1:1", None, ("127.0.0.1", 1)),
        ("127.0.0.1:65535", None, ("127.0.0.1", 65535)),
        ("[::1]:9999", None, ("::1", 9999)),
        ("::1:9999", None, ("::1", 9999)),  # the port is after the last colon
        ("localhost:9999", None, ("localhost", 9999)),
        ("example.com:9999", "s3cret", ("example.com", 9999)),
    ],
)
def test_listen_addresses_at_their_edges(text: str, token: str | None, address: tuple[str, int]) -> None:
    assert parse_listen(text, token) == address


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("127.0.0.1:0", "--stats-listen must be HOST:PORT, e.g. 127.0.0.1:9999 (got '127.0.0.1:0')"),
        ("127.0.0.1:65536", "--stats-listen must be HOST:PORT, e.g. 127.0.0.1:9999 (got '127.0.0.1:65536')"),
        ("[]:9999", "--stats-listen must be HOST:PORT, e.g. 127.0.0.1:9999 (got '[]:9999')"),
        ("LOCALHOST:9999", "--stats-listen LOCALHOST:9999 accepts datagrams from other hosts: set LOADTUI_STATS_TOKEN "
         "(here and in the app) so only signed ones count, or listen on 127.0.0.1"),
        ("10.0.0.1:9999", "--stats-listen 10.0.0.1:9999 accepts datagrams from other hosts: set LOADTUI_STATS_TOKEN "
         "(here and in the app) so only signed ones count, or listen on 127.0.0.1"),
    ],
)  # fmt: skip
def test_a_bad_listen_address_is_one_exact_line(text: str, line: str) -> None:
    assert refused(lambda: parse_listen(text, None)) == line


@pytest.mark.parametrize(
    ("figures", "taken"),
    [
        ({"cpu_percent": 0, "rss_bytes": 0}, True),
        ({"rss_bytes": None}, True),  # memory not measured: shown as 0
        ({"cpu_percent": None}, False),
        ({"cpu_percent": True}, False),
        ({"rss_bytes": -1}, False),
        ({"cpu_percent": -0.5}, False),
    ],
)
def test_a_record_s_cpu_and_memory_must_be_numbers_not_below_zero(figures: dict[str, Any], taken: bool) -> None:
    listener = listening(None)
    try:
        now = time.time()
        assert listener.receive(encode(record(**figures), None), now) is taken
        assert listener.malformed == (0 if taken else 1)
        rows, _ = listener.sample(now)
        if taken:
            assert (rows[0].pid, rows[0].rss_bytes) == (41, figures.get("rss_bytes") or 0)
    finally:
        listener.stop()


def test_signed_records_at_the_edges_of_the_window_and_of_the_sequence() -> None:
    listener = listening("s3cret")
    try:
        now = 1_000_000.0
        assert listener.receive(encode(record(time=now - 60.0, seq=1), "s3cret"), now)  # the first: 1
        assert not listener.receive(encode(record(time=now, seq=1), "s3cret"), now)
        assert not listener.receive(encode(record(time=now, seq=True), "s3cret"), now)
        assert not listener.receive(encode(record(time="now", seq=5), "s3cret"), now)  # a time not a number: malformed
        assert listener.receive(encode(record(time=now + 60.0, seq=2), "s3cret"), now)
        assert not listener.receive(encode(record(), None), now)
        assert not listener.receive(encode(record(), "other"), now)
        assert (listener.received, listener.replayed, listener.malformed, listener.unauthenticated) == (2, 2, 1, 2)
        assert listener.dropped == 5
        assert [w.pid for w in listener.sample(now + 10.0)[0]] == [41]  # silent for exactly 10 s: still shown
        assert listener._seq == {("web-1", 41): (2, now)}
        listener.sample(now + 60.0)
        assert listener._seq == {("web-1", 41): (2, now)}  # kept for exactly the window
        listener.sample(now + 60.1)
        assert listener._seq == {}
    finally:
        listener.stop()


def test_an_unsigned_receiver_keeps_no_sequence_numbers() -> None:
    listener = listening(None)
    try:
        assert listener.receive(encode(record(seq=3), None), time.time())
        assert listener.receive(encode(record(seq=3), None), time.time())  # loopback only: nothing to replay
        assert listener._seq == {} and listener.received == 2
    finally:
        listener.stop()
