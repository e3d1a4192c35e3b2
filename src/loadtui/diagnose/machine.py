"""Rules about the machine and its processes: another program on the cores, a full machine, a saturated load
generator, workers at the limit of one core, and uneven workers.
"""

from __future__ import annotations

from loadtui.diagnose.thresholds import THRESHOLDS
from loadtui.diagnose.window import Window, once
from loadtui.model import Finding
from loadtui.units import ms

OUTSIDE_SHOWN_CORES = 0.05
"""Other programs' share of the cores from which a full machine's evidence names it apart from PostgreSQL's."""


@once
def measurement_disturbed(w: Window) -> Finding | None:
    """Another program uses a share of the cores (or a hypervisor gives them to other guests): the figures measure
    the app under that competition, and will not compare with a run without it.

    Counts processes outside loadtui's tree (not the app, the load generator, PostgreSQL or loadtui; kernel threads
    excluded) and the machine's steal time, on average over the window.
    """
    cores = w.last.cpu_count
    usage = w.outside_cpu()
    outside = sum(cpu for _, cpu in usage.values()) / 100
    steal = w.mean(lambda t: t.steal_percent) or 0.0
    if outside < THRESHOLDS.disturbed_cores * cores and steal < THRESHOLDS.disturbed_steal:
        return None
    busiest = sorted(usage.items(), key=lambda kv: -kv[1][1])[:3]
    who = ", ".join(f"{name} (pid {pid}) {cpu:.0f}% of a core" for pid, (name, cpu) in busiest)
    parts = [f"outside loadtui's processes: {who}; {outside:.1f} of {cores} cores in all"] if busiest else []
    if steal >= THRESHOLDS.disturbed_steal:
        parts.append(f"steal time {steal:.0f}% (the hypervisor gave the cores to other guests)")
    return Finding(
        id="measurement-disturbed",
        severity="warning",
        title="The measurement is disturbed: another program competes for the cores",
        evidence="; ".join(parts),
        advice="These figures measure the app beside that load, and will not compare with a run without it (loadtui "
        "compare says so). Stop the other program, or measure on a quiet machine.",
        signals=["process"],
    )


@once
def machine_saturated(w: Window) -> Finding | None:
    """Every core of the machine is busy: the app, the load generator and PostgreSQL compete for them.

    On a laptop-sized machine they share the cores, and then every other figure is capped by the machine: more
    workers or a bigger pool cannot help. Says who uses the cores (app workers, load generator, the rest).
    """
    use = w.cores_used
    if use is None or use.total < THRESHOLDS.machine_busy or w.rps < THRESHOLDS.min_rps:
        return None
    total, cores, app, loadgen, other, outside = use.total, use.cores, use.app, use.loadgen, use.other, use.outside
    who = f"all {cores} cores {total:.0f}% busy: app workers {app:.1f} cores, load generator {loadgen:.1f}, "
    if outside >= OUTSIDE_SHOWN_CORES:
        who += f"PostgreSQL and loadtui {other - outside:.1f}, other programs {outside:.1f}"
    else:
        who += f"the rest (PostgreSQL, other processes) {other:.1f}"
    if outside > max(app, loadgen, other - outside):
        # The figures show whose cores they are: not the run's.
        return Finding(
            id="machine-saturated",
            severity="warning",
            title="The machine is out of CPU: other programs take most of its cores",
            evidence=f"{who}, at {w.rps:.0f} req/s",
            advice="Every figure of this run is capped by programs that are not part of it (measurement-disturbed "
            "names them). Stop them, or measure on a quiet machine.",
            signals=["process"],
        )
    return Finding(
        id="machine-saturated",
        severity="warning",
        title="The machine is out of CPU: app, load generator and database share its cores",
        evidence=f"{who}, at {w.rps:.0f} req/s",
        advice="Every other figure is capped by the machine: more workers or a bigger pool cannot help here. Run the "
        "load generator elsewhere (--master-bind and remote workers) or the database (--dsn), or measure on a "
        "bigger machine.",
        signals=["process"],
    )


@once
def loadgen_saturated(w: Window) -> Finding | None:
    """The load generator's processes are near 100 % of their cores: the numbers measure it, not the app."""
    if w.last.loadgen is None:
        return None
    cores = max(1, w.last.loadgen.cores)
    cpu = w.mean(lambda t: t.loadgen_cpu_percent) or 0.0
    if cpu < THRESHOLDS.loadgen_saturated * cores:
        return None
    return Finding(
        id="loadgen-saturated",
        severity="critical",
        title="The load generator is saturated: these numbers measure Locust, not your app",
        evidence=f"load generator CPU {cpu:.0f}% of {cores * 100}% ({cores} process{'es' if cores > 1 else ''}) "
        f"at {w.rps:.0f} req/s",
        advice="Run more load-generator processes (--loadgen-processes auto) or fewer users; on a 2-core machine the app "
        "and Locust compete for the same cores.",
        signals=["load", "process"],
    )


@once
def too_few_workers(w: Window) -> Finding | None:
    """A worker is near 100 % of a core while other cores are idle: one process cannot use more than one core."""
    cpu = w.worker_cpu()
    if not cpu or w.rps < THRESHOLDS.min_rps:
        return None
    busiest = max(cpu.values())
    if min(cpu.values()) < THRESHOLDS.busy_worker_cpu:
        # Some worker has room: with few keep-alive connections the kernel may have given them all to one worker;
        # more workers would not help that.
        return None
    cores = w.last.cpu_count
    used = sum(cpu.values()) + (w.mean(lambda t: t.loadgen_cpu_percent) or 0.0)
    idle_cores = cores - used / 100
    if idle_cores < 0.5 and len(cpu) >= 1 and w.config.workers >= cores:
        return None
    return Finding(
        id="too-few-workers",
        severity="warning",
        title=f"Too few workers: {len(cpu)} worker{'s' if len(cpu) > 1 else ''} at the limit of one core each",
        evidence=f"busiest worker {busiest:.0f}% CPU (a process uses at most 100%), {len(cpu)} worker(s) on {cores} cores, "
        f"about {max(0.0, idle_cores):.1f} core(s) idle, p95 {ms(w.p95)} at {w.rps:.0f} req/s",
        advice="Add workers with + (uvicorn --workers N): each is a process with its own core.",
        signals=["process"],
    )


@once
def worker_imbalance(w: Window) -> Finding | None:
    """One worker pinned while another idles: keep-alive connections stay on the worker that accepted them."""
    cpu = w.worker_cpu()
    if len(cpu) < 2 or w.rps < THRESHOLDS.min_rps:
        return None
    busiest, idlest = max(cpu.values()), min(cpu.values())
    if busiest < THRESHOLDS.busy_worker_cpu or idlest > THRESHOLDS.idle_worker_cpu:
        return None
    return Finding(
        id="worker-imbalance",
        severity="info",
        title="The load is uneven: one worker is pinned while another idles",
        evidence=f"worker CPU {' / '.join(f'{v:.0f}%' for v in cpu.values())} at {w.rps:.0f} req/s with {w.last.users} users",
        advice="Each keep-alive connection stays on the worker that accepted it, and a worker added live gets only new "
        "connections. loadtui moves its own users' connections after a change (unless --no-rebalance); your real "
        "clients keep theirs until they reconnect: limit keep-alive time or requests per connection in front of the "
        "app, or balance in a proxy.",
        signals=["process"],
    )
