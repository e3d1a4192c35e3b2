"""The sample app says why the database refused it, in words loadtui can match."""

from __future__ import annotations


def test_the_sample_app_keeps_the_servers_reason_for_a_refused_connection() -> None:
    import psycopg
    from sample_app.db import _reason

    exc = psycopg.OperationalError(
        'connection failed: connection to server on socket "/tmp/loadtui-pg-abcdefgh/state/run/.s.PGSQL.5432" '
        "failed: FATAL:  sorry, too many clients already"
    )
    assert _reason(exc) == "FATAL: sorry, too many clients already"
    assert _reason(psycopg.OperationalError("server closed the connection unexpectedly")) == (
        "server closed the connection unexpectedly"
    )
    assert _reason(psycopg.OperationalError("")) == "OperationalError"
