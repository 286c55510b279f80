"""Turn bench/results/*.json into the table of bench/README.md and one PNG plot per series.

The table goes between the `<!-- results:start -->` and `<!-- results:end -->` markers of the
README; the plots are bench/results/<name>.png. Needs matplotlib (bench/requirements.txt).

Run: .venv/bin/python bench/report.py"""

import argparse
import json
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
README = BENCH / "README.md"


def _load(folder: Path, name: str) -> dict | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _verdict(ok: bool) -> str:
    return "met" if ok else "**not met**"


def table(results: dict[str, dict]) -> str:
    lines = ["| benchmark | figure | target | verdict |", "|---|---|---|---|"]
    if t := results.get("throughput"):
        for row in t["rows"]:
            h, c = row["hooks"], row["ceiling"]
            drain = ""
            if "backlog" in row:
                drain = f"; a backlog drains at {row['backlog']['per_s']:.0f}/s = {row['backlog_ratio']:.0%}"
            lines.append(
                f"| throughput, {row['workers']} worker(s), {t['events']} events | hooks {h['per_s']:.0f}/s vs raw "
                f"{c['per_s']:.0f}/s = **{row['ratio']:.0%}** (commit->receipt p50 {h['latency_ms']['p50']:.0f} ms"
                f"{drain}) | >= 50 % | {_verdict(row['ratio'] >= 0.5)} |"
            )
    if tr := results.get("traffic"):
        lines += traffic_rows(tr)
    if lat := results.get("latency"):
        for row in lat["rows"]:
            s = row["latency_ms"]
            target = "p50 < 50, p99 < 250 ms" if row["broker"] == "redis" else "(reported)"
            ok = s["p50"] < 50 and s["p99"] < 250
            lines.append(
                f"| latency, {row['broker']} broker, {lat['rate']:.0f} events/s | p50 {s['p50']} / p95 {s['p95']} / "
                f"p99 {s['p99']} ms | {target} | {_verdict(ok) if row['broker'] == 'redis' else '-'} |"
            )
    if p := results.get("publishing"):
        zero, many = p["rows"][0]["latency_ms"], p["rows"][1]["latency_ms"]
        lines.append(
            f"| publishing, POST requests/ ({p['server']}) | p50 {zero['p50']} ms with 0, {many['p50']} ms with "
            f"{p['rows'][1]['matching_subscriptions']} subscriptions: **+{p['added_p50_ms']} ms** "
            f"| < 5 ms added at p50 | {_verdict(p['added_p50_ms'] < 5)} |"
        )
    if i := results.get("isolation"):
        b, s = i["baseline"]["fast_latency_ms"], i["slow"]["fast_latency_ms"]
        lines.append(
            f"| isolation, 1 slow + {i['fast_subscriptions']} fast targets, {i['workers']} workers | fast p99 "
            f"{b['p99']} ms -> {s['p99']} ms = **{i['p99_ratio']}x** | <= 2x | {_verdict(i['p99_ratio'] <= 2)} |"
        )
    if g := results.get("logs_scale"):
        for q in g["queries"]:
            s = q["latency_ms"]
            main = q["shape"] == "subscription+outcome+1 day"
            lines.append(
                f"| logs API over {g['rows']:,} rows, {q['shape']} | p50 {s['p50']} / p99 {s['p99']} ms "
                f"| {'p99 < 100 ms' if main else '(reported)'} | {_verdict(s['p99'] < 100) if main else '-'} |"
            )
        pg = g["purge"]
        d = pg["live_latency_during_ms"]
        ok = pg["seconds"] < 60 and pg["live_delivered"] == pg["live_published"]
        lines.append(
            f"| purge of {pg['removed']:,} rows | {pg['seconds']} s in {pg['batches']} batches; live deliveries "
            f"{pg['live_delivered']}/{pg['live_published']}, p99 {d.get('p99')} ms during it "
            f"| < 60 s, deliveries go on | {_verdict(ok)} |"
        )
    if a := results.get("automations"):
        lines.append(
            f"| automation endpoint (set + response) vs plain view, {a['server']} | flow {a['flow']['rps']:.0f} "
            f"req/s vs plain {a['plain']['rps']:.0f} req/s = **{a['ratio_rps']:.0%}** (p50 {a['flow']['p50_ms']} vs "
            f"{a['plain']['p50_ms']} ms) | >= 50 % | {_verdict(a['ratio_rps'] >= 0.5)} |"
        )
    if pe := results.get("peers"):
        lines += peers_rows(pe)
    stamps = sorted(r["measured_at"] for r in results.values())
    commits = sorted({r["machine"]["commit"] for r in results.values()})
    loads = sorted(r["machine"]["loadavg_1m"] for r in results.values())
    cpus = {r["machine"]["cpus"] for r in results.values()}
    lines.append("")
    lines.append(
        f"Measured {stamps[0]} .. {stamps[-1]} at commit {', '.join(commits)} on {', '.join(map(str, cpus))} CPUs; "
        f"load average (1 min) at the start of each script: {loads[0]} .. {loads[-1]}."
    )
    return "\n".join(lines)


def traffic_rows(t: dict) -> list[str]:
    """bench/traffic.py: one event per transaction; per worker count and shape."""
    names = {"one": "1 subscription", "twenty": "20 subscriptions", "slow": "20 subscriptions, 1 slow (fast ones)"}
    lines = []
    for row in t["rows"]:
        for name, s in row["shapes"].items():
            e, b = s["end_to_end"], s["backlog"]
            p99 = {o["fraction"]: o["latency_ms"].get("p99", float("nan")) for o in s["open_loop"]}
            latency = ", ".join(f"at {f:.0%} p99 {v} ms" for f, v in p99.items())
            ok = e["ratio"] >= 0.5 and b["ratio"] >= 0.8 and all(v < 250 for v in p99.values())
            lines.append(
                f"| traffic, 1 event/transaction, {names.get(name, name)}, {row['workers']} workers, "
                f"{t['deliveries']} deliveries, {t['publishers']} publishers | end to end {e['per_s']:.0f}/s vs raw "
                f"{row['ceiling']['per_s']:.0f}/s = **{e['ratio']:.0%}**; backlog {b['per_s']:.0f}/s = "
                f"**{b['ratio']:.0%}**; open loop {latency} | >= 50 %, backlog >= 80 %, p99 < 250 ms at 25 and 50 % "
                f"| {_verdict(ok)} |"
            )
    return lines


def peers_rows(p: dict) -> list[str]:
    """bench/peers.py: this project against each peer, figure by figure (median of the rounds)."""
    systems, ahead = p["systems"], p.get("times_ahead", {})
    light = p.get("light_rate", 0)
    labels = {"self": "this project", "django-webhook": "django-webhook", "django-rest-hooks": "django-rest-hooks"}
    figures = [
        ("end_to_end_1", "end to end, 1 hook, deliveries/s", lambda s: s["end_to_end_1"]["per_s"]),
        ("backlog_1", "backlog drain, 1 hook, deliveries/s", lambda s: s["backlog_1"]["per_s"]),
        ("end_to_end_20", "end to end, 20 hooks, deliveries/s", lambda s: s["end_to_end_20"]["per_s"]),
        ("backlog_20", "backlog drain, 20 hooks, deliveries/s", lambda s: s["backlog_20"]["per_s"]),
        ("light_p50", f"latency p50 at {light:.0f} saves/s, ms", lambda s: s["latency_light"]["latency_ms"]["p50"]),
        ("light_p99", f"latency p99 at {light:.0f} saves/s, ms", lambda s: s["latency_light"]["latency_ms"]["p99"]),
        ("latency_p50", f"latency p50 at {p['rate']:.0f} saves/s, ms", lambda s: s["latency"]["latency_ms"]["p50"]),
        ("latency_p99", f"latency p99 at {p['rate']:.0f} saves/s, ms", lambda s: s["latency"]["latency_ms"]["p99"]),
        ("publish_cost", "publish cost of a save with 20 hooks, +ms p50", lambda s: s["publish_cost"]["added_p50_ms"]),
    ]
    lines = []
    if "self" not in systems:
        return lines
    for key, label, read in figures:
        if key not in ahead.get(next(iter(ahead), ""), {}):
            continue  # a figure this result file does not have
        parts = [f"this project {read(systems['self']['summary'])}"]
        ratios = {}
        for peer, data in systems.items():
            if peer != "self":
                ratios[peer] = ahead.get(peer, {}).get(key) or 0
                parts.append(f"{labels[peer]} {read(data['summary'])} (**{ratios[peer]}x**)")
        ok = all(r > 1 for r in ratios.values()) and ratios.get("django-webhook", 3) >= 3
        ok = ok and ratios.get("django-rest-hooks", 2) >= 1.8
        lines.append(
            f"| peers, {label}, {p['workers']} workers | {'; '.join(parts)} | ahead of both, >= 3x django-webhook, "
            f"~2x django-rest-hooks | {_verdict(ok)} |"
        )
    for key, label in (
        ("down", f"receiver answers 500 for {p['fail_seconds']:.0f} s"),
        ("killed", "workers are killed -9"),
    ):
        counts = "; ".join(
            f"{labels[name]} {data['loss'][key]['lost']}/{data['loss'][key]['deliveries']}"
            for name, data in systems.items()
        )
        lost = systems["self"]["loss"][key]["lost"]
        lines.append(
            f"| peers, lost when the {label} (not received {p['recovery_seconds']:.0f} s after) | {counts} "
            f"| nothing lost | {_verdict(lost == 0)} |"
        )
    return lines


def plots(results: dict[str, dict], folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []

    def save(fig, name: str) -> None:
        path = folder / f"{name}.png"
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        made.append(path)

    if t := results.get("throughput"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        workers = [r["workers"] for r in t["rows"]]
        x = range(len(workers))
        ax.bar([i - 0.2 for i in x], [r["ceiling"]["per_s"] for r in t["rows"]], 0.4, label="raw requests.Session")
        bars = ax.bar([i + 0.2 for i in x], [r["hooks"]["per_s"] for r in t["rows"]], 0.4, label="webhooks")
        for bar, row in zip(bars, t["rows"], strict=True):
            ax.annotate(f"{row['ratio']:.0%}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                        va="bottom")  # fmt: skip
        ax.set_xticks(list(x), [f"{w} worker(s)" for w in workers])
        ax.set_ylabel("deliveries / s")
        ax.set_title(f"Throughput, {t['events']} events, {t['broker']} broker")
        ax.legend()
        save(fig, "throughput")
    if lat := results.get("latency"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for row in lat["rows"]:
            values = sorted(row["series_ms"])
            ax.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=f"{row['broker']} broker")
        ax.set_xscale("log")
        ax.set_xlabel("commit -> receipt, ms (log scale)")
        ax.set_ylabel("fraction of events")
        ax.set_title(f"Latency at {lat['rate']:.0f} events/s")
        ax.legend()
        save(fig, "latency")

    def percentile_bars(name: str, title: str, groups: list[tuple[str, dict]], ylabel: str = "ms") -> None:
        fig, ax = plt.subplots(figsize=(6, 3.5))
        keys = ["p50", "p95", "p99"]
        width = 0.8 / len(groups)
        for g, (label, stats) in enumerate(groups):
            ax.bar([k + g * width for k in range(3)], [stats.get(key, 0) for key in keys], width, label=label)
        ax.set_xticks([k + width * (len(groups) - 1) / 2 for k in range(3)], keys)
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
        save(fig, name)

    if p := results.get("publishing"):
        percentile_bars(
            "publishing",
            "POST requests/ latency",
            [(f"{r['matching_subscriptions']} matching subscriptions", r["latency_ms"]) for r in p["rows"]],
        )
    if i := results.get("isolation"):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        for key, label in (("baseline", "baseline"), ("slow", "one slow target")):
            timeline = i[key].get("timeline", [])
            ax.plot([r["second"] for r in timeline], [max(r["fast_max_ms"], 0.1) for r in timeline], label=label)
        ax.axvline(i["warmup"], color="gray", linestyle=":", label="measured from here")
        ax.set_yscale("log")
        ax.set_xlabel("second of the phase (by commit time)")
        ax.set_ylabel("fast targets' worst latency, ms")
        ax.set_title(f"Isolation: {i['fast_subscriptions']} fast targets, 1 slow, {i['workers']} workers")
        ax.legend(fontsize=8)
        save(fig, "isolation")
    if g := results.get("logs_scale"):
        percentile_bars(
            "logs_scale", f"Logs API over {g['rows']:,} attempts", [(q["shape"], q["latency_ms"]) for q in g["queries"]]
        )
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the JSON files and plots")
    parser.add_argument("--readme", type=Path, default=README)
    args = parser.parse_args()
    names = ["throughput", "traffic", "latency", "publishing", "isolation", "logs_scale", "automations", "peers"]
    results = {name: data for name in names if (data := _load(args.results, name))}
    if not results:
        sys.exit(f"no results in {args.results}")
    text = args.readme.read_text()
    block = f"<!-- results:start -->\n{table(results)}\n<!-- results:end -->"
    text = re.sub(r"<!-- results:start -->.*<!-- results:end -->", lambda _: block, text, flags=re.S)
    args.readme.write_text(text)
    print(f"updated {args.readme}")
    try:
        for path in plots(results, args.results):
            print(f"wrote {path}")
    except ImportError:
        print("matplotlib is not installed (pip install -r bench/requirements.txt): no plots")


if __name__ == "__main__":
    main()
