"""Workers' figures over UDP: the datagram format, its signature, and a receiver that never trusts what arrives."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from loadtui.appstats import Sender, WireError, decode, encode, parse_stats_url
from loadtui.errors import UsageError
from loadtui.remote import GONE_S, StatsListener, parse_listen


def record(pid: int = 41, host: Any = "web-1", **kw: Any) -> dict[str, Any]:
    base = {"pid": pid, "host": host, "time": time.time(), "in_flight": 2, "requests": 100, "loop_lag_max_ms": 1.5,
            "cpu_percent": 37.5, "rss_bytes": 60 * 2**20, "pool": {"pool_size": 4, "requests_waiting": 0}}  # fmt: skip
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
    ],
)
def test_bad_datagrams_are_refused(datagram: bytes, token: str | None, unauthenticated: bool) -> None:
    with pytest.raises(WireError) as info:
        decode(datagram, token)
    assert info.value.unauthenticated is unauthenticated


def test_stats_urls_and_listen_addresses_are_checked() -> None:
    assert parse_stats_url("udp://127.0.0.1:9999") == ("127.0.0.1", 9999)
    assert parse_stats_url("udp://[::1]:9999") == ("::1", 9999)
    for bad in ("127.0.0.1:9999", "udp://host", "udp://host:0", "tcp://host:1"):
        with pytest.raises(ValueError, match="udp://HOST:PORT"):
            parse_stats_url(bad)
    assert parse_listen("127.0.0.1:9999", None) == ("127.0.0.1", 9999)
    assert parse_listen("0.0.0.0:9999", "s3cret") == ("0.0.0.0", 9999)
    with pytest.raises(UsageError, match="set LOADTUI_STATS_TOKEN"):
        parse_listen("0.0.0.0:9999", None)
    with pytest.raises(UsageError, match="must be HOST:PORT"):
        parse_listen("9999", None)


def test_the_receiver_keeps_the_latest_record_per_worker_and_counts_what_it_drops() -> None:
    listener = StatsListener("127.0.0.1", 0, "s3cret")
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
        gone, _ = listener.sample(now + 1 + GONE_S + 0.5)
        assert gone == []  # ...then gone
    finally:
        listener.stop()


def test_a_sender_reaches_a_listener_with_its_own_cpu_and_memory() -> None:
    listener = StatsListener("127.0.0.1", 0, "s3cret")
    listener.start()
    try:
        host, port = listener.address
        sender = Sender(f"udp://{host}:{port}", "s3cret")
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
        sender.send({"pid": 99, "time": time.time(), "requests": 1, "in_flight": 0})
        deadline = time.monotonic() + 5
        while listener.received == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        rows, _ = listener.sample()
        assert len(rows) == 1 and rows[0].host == socket.gethostname() and rows[0].pid == 99
        assert rows[0].cpu_percent > 0 and rows[0].rss_bytes > 10 * 2**20
        sender.close()
    finally:
        listener.stop()
