"""Which finding follows from which, and the one order findings are shown in: a typed table, applied once a
second (:func:`relate`), read by the dashboard, the log, headless mode and the report alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from loadtui.diagnose.window import Window
from loadtui.model import Finding, FindingId

ORDER: tuple[FindingId, ...] = (
    "measurement-disturbed",
    "machine-saturated",
    "loadgen-saturated",
    "db-connection-limit",
    "event-loop-blocked",
    "threadpool-saturated",
    "lock-contention",
    "pool-exhausted",
    "app-concurrency-limit",
    "db-bound",
    "too-few-workers",
    "worker-imbalance",
    "nodelay-delay",
    "queueing",
    "backlog",
)

RANK: dict[str, int] = {fid: i for i, fid in enumerate(ORDER)}
"""The one order findings are shown in (a consequence after every cause): the dashboard, the log and headless."""


@dataclass(frozen=True)
class Relation:
    """While `cause` holds, each of `consequences` is what it looks like from inside the app: it is marked
    `consequence_of` the cause, listed after it, and not shown without it."""

    cause: FindingId
    consequences: tuple[FindingId, ...]
    first: str
    """What to do first, as the consequence's advice begins: "A consequence of {first}."""
    when: Callable[[Window], bool] | None = None
    """An extra condition on the window (None: whenever both hold)."""
    demote: bool = False
    """The consequence is shown as information only (its cause is the problem)."""

    @property
    def cause_text(self) -> str:
        """The cause in words, without what to do: "the workers' full cores (too-few-workers)"."""
        return self.first.split(":")[0]


def _queries_fill_cores(w: Window) -> bool:
    """PostgreSQL (most of "the rest") uses more of the cores than the app and the load generator together."""
    use = w.cores_used
    return use is not None and use.other > use.app + use.loadgen


CAUSES_OF_QUEUEING: tuple[FindingId, ...] = (
    "event-loop-blocked",
    "threadpool-saturated",
    "pool-exhausted",
    "app-concurrency-limit",
    "db-bound",
    "db-connection-limit",
)

RELATIONS: tuple[Relation, ...] = (
    # Checked in this order; a finding follows from the first relation whose cause holds.
    Relation(
        "loadgen-saturated",
        ("backlog",),
        "the load generator being out of CPU (loadgen-saturated): it starts the arrivals late, add --loadgen-processes",
    ),
    Relation(
        "db-bound",
        ("machine-saturated",),
        "the queries themselves (db-bound): PostgreSQL uses most of the cores",
        when=_queries_fill_cores,
        demote=True,
    ),
    Relation(
        "machine-saturated",
        (
            "pool-exhausted",
            "threadpool-saturated",
            "queueing",
            "backlog",
            "db-bound",
            "lock-contention",
            "app-concurrency-limit",
        ),
        "the machine being out of CPU (machine-saturated): fix that first",
    ),
    Relation(
        "too-few-workers",
        ("pool-exhausted", "queueing", "backlog"),
        "the workers' full cores (too-few-workers): add workers first",
    ),
    Relation(
        "lock-contention",
        ("db-bound", "pool-exhausted", "app-concurrency-limit", "queueing", "backlog"),
        "requests waiting on the same rows (lock-contention): fix that first",
    ),
    *(Relation(cause, ("queueing", "backlog"), f"{cause}, which caps the throughput") for cause in CAUSES_OF_QUEUEING),
)
"""Which finding follows from which: one table, read by the diagnosis, the front ends and the report alike."""

EXCLUDED_BY: dict[FindingId, tuple[FindingId, ...]] = {
    # What is left once the threadpool, the app's database pool and the database are ruled out is the app's own limit.
    "app-concurrency-limit": ("threadpool-saturated", "pool-exhausted", "db-bound"),
}
"""A finding that does not stand while another holds: the other names the same wait more precisely."""


def exclude(found: list[Finding]) -> list[Finding]:
    """`found` without the findings that another one in it rules out (:data:`EXCLUDED_BY`)."""
    ids = {f.id for f in found}
    return [f for f in found if not any(other in ids for other in EXCLUDED_BY.get(f.id, ()))]


CONSEQUENCE = "A consequence of "
"""How the advice of a finding that follows from another begins."""


def relate(found: list[Finding], held: set[str], w: Window | None) -> list[Finding]:
    """`found` with each finding that follows from a cause in `held` marked (`consequence_of`, advice), in order.

    `held`: the ids that hold now (for the diagnoser: active, or seen in its last seconds, so the marks do not flip
    from second to second). A relation with a condition needs the window `w`. Relations are taken in table order;
    a finding follows from one cause at most, and never from its own consequence.
    """
    ids = {f.id for f in found}
    cause_of: dict[str, Relation] = {}
    for r in RELATIONS:
        if r.cause not in held or (r.when is not None and (w is None or not r.when(w))):
            continue
        for fid in r.consequences:
            if fid in ids and fid not in cause_of and fid != r.cause:
                mutual = cause_of.get(r.cause)
                if mutual is None or mutual.cause != fid:
                    cause_of[fid] = r
    out = [
        dataclasses.replace(
            f,
            consequence_of=rel.cause,
            advice=f"{CONSEQUENCE}{rel.first}. {f.advice}",
            severity="info" if rel.demote else f.severity,
        )
        if (rel := cause_of.get(f.id)) is not None
        else f
        for f in found
    ]
    return sorted(out, key=order)


def order(f: Finding) -> tuple[bool, int]:
    """Where a finding is listed: root causes before their consequences, then in :data:`ORDER`."""
    return f.consequence_of is not None, RANK.get(f.id, len(RANK))


def cause_text(consequence: str, cause: str) -> str:
    """ "a consequence of the workers' full cores (too-few-workers)", in the words of the relations table."""
    rel = next((r for r in RELATIONS if r.cause == cause and consequence in r.consequences), None)
    return f"a consequence of {rel.cause_text if rel else cause}"
