"""Side by side with the peers: the same API-shaped workload through this project, `django-webhook`
+ Celery and `django-rest-hooks` + Celery, in alternating rounds on this machine.

Each peer gets its own virtualenv made by this script (bench/.peers/, git-ignored, cached by the
hash of its pinned requirements: bench/peers-<name>.txt) and a minimal Django project written by
this script: an app `crm` with a `Lead` model (the fields of this project's lead), the library set
up as its documentation shows, Celery on the Redis broker as Celery's Django guide shows, and its
own PostgreSQL database (`<BENCH_DB>_<peer>`, recreated each run). django-rest-hooks delivers
through the Celery task its README gives (`HOOK_DELIVERER`; retried on connection errors only).
All three keep their database connections (CONN_MAX_AGE 600, as this project's default), run the
same number of worker processes (`--workers`: Q_WORKERS, Celery's --concurrency) and send to the
same receiver (bench/receiver.py, which finds the saved lead's `bmk<hex>` name in each body).
What is published is always a model save, one per transaction, as an API call commits it
(bench/peer_agent.py runs the saves inside each system's virtualenv).

Figures, for each system:
- end to end: `--events` saves from `--publishers` processes as fast as they can, with 1 and with
  20 hooks per save; deliveries/s from the first save to the last delivery received;
- backlog: the same saves made while no worker runs, then drained (first to last receipt);
- latency: saves at a fixed rate for `--open-seconds`, 1 hook, at a light rate (`--light-rate`, 20
  saves/s, as latency.py) and at `--rate` (25 % of the raw ceiling measured at the start);
  p50/p95/p99 from the start of the save's transaction to the receipt. Not from the commit:
  django-webhook and django-rest-hooks send to Celery inside the transaction, so their hook often
  arrives before the commit (commit->receipt is recorded too, `commit_latency_ms`). The rate
  achieved is recorded beside it (`publish_per_s`): when the publishers fall behind the schedule,
  the load offered was lower;
- publish cost: a save's latency (its transaction, commit included) with 20 hooks minus without,
  at p50, no worker running (alternating blocks);
- loss: the receiver answers 500 for `--fail-seconds` while `--loss-events` saves are made, then
  recovers; and `--loss-events` saves are made while the workers are killed with SIGKILL once a
  third is received, then restarted. Counted: deliveries never received within `--recovery-seconds`.
The round figures are the median over `--rounds`; the loss scenarios run once per system, after them.
Ratios are "times ahead" for this project: its rate / the peer's, the peer's latency or cost / its.
Targets (from the product side): ahead of both on every figure, >= 3x django-webhook, ~2x
django-rest-hooks; and nothing lost.

Run: .venv/bin/python bench/peers.py [--events 2000] [--workers 2] [--rounds 2] [--smoke]"""

import json
import os
import signal
import statistics
import time

import harness
from peer_systems import LABELS, SYSTEMS, DjangoRestHooks, DjangoWebhook, Saves, System, ThisProject, agent_result
from throughput import ceiling


def options(parser) -> None:
    parser.set_defaults(max_seconds=7200)  # the full sizes take long on 2 cores
    parser.add_argument("--events", type=int, help="saves per throughput phase: 2000, or 40 with --smoke")
    parser.add_argument("--workers", type=int, default=2, help="worker processes of every system")
    parser.add_argument("--publishers", type=int, default=4, help="publishing processes (a web tier's)")
    parser.add_argument("--rounds", type=int, help="alternating rounds: 2, or 1 with --smoke")
    parser.add_argument("--rate", type=float, help="saves/s of the latency phase: 25 %% of the ceiling (<= 50, smoke)")
    parser.add_argument("--open-seconds", type=float, help="seconds of the latency phase: 10, or 1 with --smoke")
    parser.add_argument("--light-rate", type=float, default=20.0, help="saves/s of the light-load latency phase")
    parser.add_argument("--cost-saves", type=int, help="saves per case of the publish cost: 200, or 20")
    parser.add_argument("--fail-seconds", type=float, help="how long the receiver answers 500: 20, or 2")
    parser.add_argument("--loss-events", type=int, help="saves per loss scenario: 200, or 30 with --smoke")
    parser.add_argument("--recovery-seconds", type=float, help="wait for late deliveries: 150, or 10 with --smoke")
    parser.add_argument("--systems", default=",".join(SYSTEMS))


# --- measuring -----------------------------------------------------------------------------------
def flush_broker() -> None:
    import redis

    redis.Redis.from_url(harness.REDIS_URL).flushdb()


def reset(system: System) -> None:
    flush_broker()
    system.agent("reset")


def kill9(child: harness.Child) -> None:
    """SIGKILL to the whole process group (a qcluster and its workers, a Celery worker and its pool)."""
    os.killpg(child.proc.pid, signal.SIGKILL)
    child.proc.wait(10)
    child.stop()


def arrivals(receiver: harness.Receiver, committed: dict[str, float]) -> tuple[dict, int]:
    """({(path, token): first receipt} of these saves, all receipts of them, repeats included)."""
    first: dict[tuple[str, str], float] = {}
    total = 0
    for t, path, mark in receiver.dump():
        if mark in committed:
            total += 1
            first.setdefault((path, mark), t)
    return first, total


def wait_arrivals(receiver, committed: dict[str, float], hooks: int, timeout: float) -> tuple[dict, int]:
    expected = len(committed) * hooks
    end = time.monotonic() + timeout
    while True:
        if receiver.count() >= expected or time.monotonic() >= end:
            first, total = arrivals(receiver, committed)
            if len(first) >= expected or time.monotonic() >= end:
                return first, total
        time.sleep(0.25)


def targets(receiver: harness.Receiver, hooks: int) -> list[str]:
    return [receiver.url(f"/fast/peers/{i}") for i in range(hooks)]


def warm_up(system: System, cluster: harness.Child, receiver: harness.Receiver, workers: int, hooks: int) -> None:
    receiver.reset()
    committed = system.agent("publish", events=2 * workers)
    first, _ = wait_arrivals(receiver, committed, hooks, 60)
    if not first:
        raise RuntimeError(f"{system.name}: the workers delivered none of the warm-up saves; see {cluster.log_path}")


def rate_figures(saves: "Saves", first: dict, hooks: int) -> dict:
    start = min(saves.values())
    last = max(first.values()) if first else float("nan")
    return {
        "saves": len(saves),
        "deliveries": len(saves) * hooks,
        "received": len(first),
        "publish_per_s": round(len(saves) / max(1e-9, max(saves.values()) - start), 1),
        "seconds": round(last - start, 3),
        "per_s": round(len(first) / (last - start), 1),
        "latency_ms": harness.summary([(t - saves[mark]) * 1000 for (_, mark), t in first.items()]),
        "commit_latency_ms": harness.summary([(t - saves.committed[mark]) * 1000 for (_, mark), t in first.items()]),
    }


def live(system: System, receiver, hooks: int, saves: int, args, rate: float = 0.0) -> dict:
    """Saves while the workers run: as fast as the publishers can, or at `rate` saves/s."""
    reset(system)
    cluster = system.start_workers(args.workers, f"{hooks}h")
    try:
        warm_up(system, cluster, receiver, args.workers, hooks)
        receiver.reset()
        committed = system.agent("publish", events=saves, publishers=args.publishers, rate=rate or None)
        first, _ = wait_arrivals(receiver, committed, hooks, max(60, saves * hooks / 10))
    finally:
        cluster.stop(timeout=10)
    return rate_figures(committed, first, hooks)


def backlog(system: System, receiver, hooks: int, saves: int, args) -> dict:
    """The delivery side alone: saved while no worker runs, then drained (first to last receipt)."""
    reset(system)
    committed = system.agent("publish", events=saves, publishers=args.publishers)
    receiver.reset()
    cluster = system.start_workers(args.workers, f"{hooks}h-backlog")
    try:
        first, _ = wait_arrivals(receiver, committed, hooks, max(60, saves * hooks / 10))
    finally:
        cluster.stop(timeout=10)
    times = sorted(first.values())
    seconds = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {"deliveries": saves * hooks, "received": len(times), "seconds": round(seconds, 3),
            "per_s": round(len(times) / seconds, 1)}  # fmt: skip


def publish_cost(system: System, args) -> dict:
    reset(system)
    samples = system.agent("cost", saves=args.cost_saves)
    reset(system)
    hooked, plain = harness.summary(samples["hooks"]), harness.summary(samples["none"])
    return {"with_20": hooked, "without": plain, "added_p50_ms": round(hooked["p50"] - plain["p50"], 2)}


def round_of(system: System, receiver, args) -> dict:
    twenty = max(1, args.events // 20)
    figures = {}
    system.agent("setup", *targets(receiver, 1))
    figures["end_to_end_1"] = live(system, receiver, 1, args.events, args)
    figures["backlog_1"] = backlog(system, receiver, 1, args.events, args)
    latency_saves = max(1, int(args.rate * args.open_seconds))
    figures["latency"] = live(system, receiver, 1, latency_saves, args, rate=args.rate)
    light_saves = max(1, int(args.light_rate * args.open_seconds))
    figures["latency_light"] = live(system, receiver, 1, light_saves, args, rate=args.light_rate)
    system.agent("setup", *targets(receiver, 20))
    figures["end_to_end_20"] = live(system, receiver, 20, twenty, args)
    figures["backlog_20"] = backlog(system, receiver, 20, twenty, args)
    figures["publish_cost"] = publish_cost(system, args)
    return figures


def loss_when_down(system: System, receiver, args) -> dict:
    """The receiver answers 500 for `fail_seconds` while the saves are made (spread over its first
    three quarters), then recovers; deliveries not received `recovery_seconds` after it recovered."""
    system.agent("setup", *targets(receiver, 1))
    reset(system)
    cluster = system.start_workers(args.workers, "loss-500")
    try:
        warm_up(system, cluster, receiver, args.workers, 1)
        receiver.reset()
        receiver.fail_for(args.fail_seconds)
        recovered_at = time.monotonic() + args.fail_seconds
        rate = args.loss_events / (0.75 * args.fail_seconds)
        committed = system.agent("publish", events=args.loss_events, publishers=1, rate=rate)
        timeout = recovered_at + args.recovery_seconds - time.monotonic()
        first, total = wait_arrivals(receiver, committed, 1, timeout)
        failed = receiver.failed()
    finally:
        cluster.stop(timeout=10)
    return {"deliveries": len(committed), "received": len(first), "lost": len(committed) - len(first),
            "answered_500": failed, "repeats": total - len(first)}  # fmt: skip


def loss_when_killed(system: System, receiver, args) -> dict:
    """SIGKILL to every worker process once a third of the saves' deliveries arrived, mid-run, then
    a new set of workers; deliveries not received `recovery_seconds` after the restart."""
    system.agent("setup", *targets(receiver, 1))
    reset(system)
    cluster = system.start_workers(args.workers, "kill")
    restarted = None
    try:
        warm_up(system, cluster, receiver, args.workers, 1)
        receiver.reset()
        publishing = system.agent("publish", background=True, events=args.loss_events, publishers=args.publishers)
        harness.wait_until(lambda: receiver.count() >= args.loss_events // 3, 120, interval=0.02)
        received_before = receiver.count()
        kill9(cluster)
        restarted = system.start_workers(args.workers, "after-kill")
        committed = agent_result(publishing, "publish")
        first, total = wait_arrivals(receiver, committed, 1, args.recovery_seconds)
        held = unacked_messages()
    finally:
        cluster.stop(timeout=1)
        if restarted:
            restarted.stop(timeout=10)
    return {"deliveries": len(committed), "received_before_kill": received_before, "received": len(first),
            "lost": len(committed) - len(first), "repeats": total - len(first),
            "broker_unacked_after": held}  # fmt: skip


def unacked_messages() -> int:
    """Messages Celery's Redis transport holds as taken by a worker (given back only after its
    visibility timeout, 1 h by default); 0 for django-q2, which keeps no such set."""
    import redis

    client = redis.Redis.from_url(harness.REDIS_URL)
    return int(client.hlen("unacked")) if client.type("unacked") == b"hash" else 0


# --- the report ----------------------------------------------------------------------------------
FIGURES = [
    # (key, label, how to read it from a system's summary, higher is better)
    ("end_to_end_1", "end to end, 1 hook (deliveries/s)", lambda s: s["end_to_end_1"]["per_s"], True),
    ("backlog_1", "backlog drain, 1 hook (deliveries/s)", lambda s: s["backlog_1"]["per_s"], True),
    ("end_to_end_20", "end to end, 20 hooks (deliveries/s)", lambda s: s["end_to_end_20"]["per_s"], True),
    ("backlog_20", "backlog drain, 20 hooks (deliveries/s)", lambda s: s["backlog_20"]["per_s"], True),
    ("light_p50", "latency p50 at the light rate (ms)", lambda s: s["latency_light"]["latency_ms"]["p50"], False),
    ("light_p99", "latency p99 at the light rate (ms)", lambda s: s["latency_light"]["latency_ms"]["p99"], False),
    ("latency_p50", "latency p50 at 25 % of the ceiling (ms)", lambda s: s["latency"]["latency_ms"]["p50"], False),
    ("latency_p99", "latency p99 at 25 % of the ceiling (ms)", lambda s: s["latency"]["latency_ms"]["p99"], False),
    ("publish_cost", "publish cost, 20 hooks (+ms at p50)", lambda s: s["publish_cost"]["added_p50_ms"], False),
]


def percentiles(phase: dict) -> str:
    return "/".join(str(phase["latency_ms"].get(p)) for p in ("p50", "p95", "p99"))


def median_round(rounds: list[dict]) -> dict:
    """Per figure, the median over the rounds (kept in the round's shape)."""
    summary = json.loads(json.dumps(rounds[0]))
    places = {
        "latency_p50": ("latency", "p50"),
        "latency_p99": ("latency", "p99"),
        "light_p50": ("latency_light", "p50"),
        "light_p99": ("latency_light", "p99"),
    }
    for key, _, read, _ in FIGURES:
        value = round(statistics.median(read(r) for r in rounds), 2)
        if key in places:
            phase, percentile = places[key]
            summary[phase]["latency_ms"][percentile] = value
        elif key == "publish_cost":
            summary["publish_cost"]["added_p50_ms"] = value
        else:
            summary[key]["per_s"] = value
    return summary


def ahead(mine: float, theirs: float, higher_better: bool) -> float | None:
    """How many times ahead this project is (> 1: ahead)."""
    try:
        ratio = mine / theirs if higher_better else theirs / mine
    except ZeroDivisionError:
        return None
    return round(ratio, 2) if ratio > 0 else None


def ratios(summaries: dict[str, dict]) -> dict[str, dict]:
    mine = summaries.get("self")
    if not mine:
        return {}
    return {
        peer: {key: ahead(read(mine), read(s), higher) for key, _, read, higher in FIGURES}
        for peer, s in summaries.items()
        if peer != "self"
    }


def table(summaries: dict[str, dict], losses: dict[str, dict], times_ahead: dict[str, dict]) -> str:
    names = list(summaries)
    peers = [n for n in names if n != "self"] if "self" in names else []
    lines = [
        "| figure | " + " | ".join([LABELS[n] for n in names] + [f"x {LABELS[p]}" for p in peers]) + " |",
        "|" + "---|" * (1 + len(names) + len(peers)),
    ]
    for key, label, read, _ in FIGURES:
        cells = [str(read(summaries[n])) for n in names] + [f"{times_ahead[p][key]}x" for p in peers]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in (("down", "lost, receiver 500 then back"), ("killed", "lost, workers killed -9")):
        if all(key in losses.get(n, {}) for n in names):
            cells = [f"{losses[n][key]['lost']}/{losses[n][key]['deliveries']}" for n in names] + ["-" for _ in peers]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    args = harness.arguments(__doc__, options)
    args.events = args.events or (40 if args.smoke else 2000)
    args.rounds = args.rounds or (1 if args.smoke else 2)
    args.open_seconds = args.open_seconds or (1 if args.smoke else 10)
    args.cost_saves = args.cost_saves or (20 if args.smoke else 200)
    args.fail_seconds = args.fail_seconds or (2 if args.smoke else 20)
    args.loss_events = args.loss_events or (30 if args.smoke else 200)
    args.recovery_seconds = args.recovery_seconds or (10 if args.smoke else 150)
    chosen = {"self": ThisProject, "django-webhook": DjangoWebhook, "django-rest-hooks": DjangoRestHooks}
    systems = [chosen[name]() for name in args.systems.split(",")]
    for system in systems:
        system.prepare()
    receiver = harness.Receiver(key="mark")

    # The raw ceiling at the same concurrency, for the latency phase's rate and for reference.
    body = json.dumps({"lead": {"fullname": "bmk0000000000000000", "padding": "x" * 900}}).encode()
    raw = ceiling(receiver, receiver.url("/fast/peers/ceiling"), body, {"Content-Type": "application/json"},
                  max(200, args.events), args.workers)  # fmt: skip
    args.rate = args.rate or round(min(50, 0.25 * raw["per_s"]) if args.smoke else 0.25 * raw["per_s"], 1)
    print(f"raw ceiling at {args.workers} concurrent: {raw['per_s']:.0f} requests/s; latency phase at "
          f"{args.rate} saves/s", flush=True)  # fmt: skip

    rounds: dict[str, list[dict]] = {s.name: [] for s in systems}
    for r in range(args.rounds):
        order = systems[r % len(systems) :] + systems[: r % len(systems)]
        for system in order:
            figures = round_of(system, receiver, args)
            rounds[system.name].append(figures)
            print(
                f"round {r + 1} {LABELS[system.name]}: end to end {figures['end_to_end_1']['per_s']}/s (1 hook), "
                f"{figures['end_to_end_20']['per_s']}/s (20); backlog {figures['backlog_1']['per_s']}/s, "
                f"{figures['backlog_20']['per_s']}/s; latency p50/p95/p99 {percentiles(figures['latency_light'])} "
                f"ms at {figures['latency_light']['publish_per_s']} saves/s, {percentiles(figures['latency'])} ms at "
                f"{figures['latency']['publish_per_s']} saves/s; "
                f"publish cost +{figures['publish_cost']['added_p50_ms']} ms",
                flush=True,
            )
    losses: dict[str, dict] = {}
    for system in systems:
        losses[system.name] = {
            "down": loss_when_down(system, receiver, args),
            "killed": loss_when_killed(system, receiver, args),
        }
        print(f"{LABELS[system.name]}: loss {json.dumps(losses[system.name])}", flush=True)
    summaries = {name: median_round(rs) for name, rs in rounds.items()}
    times_ahead = ratios(summaries)
    print(table(summaries, losses, times_ahead))
    harness.write_result(
        "peers",
        {"workers": args.workers, "events": args.events, "publishers": args.publishers, "rounds": args.rounds,
         "rate": args.rate, "light_rate": args.light_rate, "open_seconds": args.open_seconds,
         "fail_seconds": args.fail_seconds, "loss_events": args.loss_events,
         "recovery_seconds": args.recovery_seconds, "ceiling": raw,
         "systems": {s.name: {"versions": s.versions(), "rounds": rounds[s.name], "summary": summaries[s.name],
                              "loss": losses[s.name]} for s in systems},
         "times_ahead": times_ahead},
        args,
    )  # fmt: skip


if __name__ == "__main__":
    main()
