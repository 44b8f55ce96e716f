"""report.json, report.md and the plots of one on-sale run.

Every figure says where it comes from: `http` (the real HTTP + SSE clients of the sample),
`bulk` (the users driven at the Kafka / actor boundary), `durable` (the joins topic, the
admission log and the booking ledger read after the run) or `monitor` (Redis sampled every
0.25 s during the run).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import lat_summary_ms
from benchmarks.onsale import recovery


def per_second(times_s: list[float], weights: list[float] | None = None,
               bin_s: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Events per second in bins of bin_s: (bin starts, rate)."""
    if not times_s:
        return np.zeros(0), np.zeros(0)
    t = np.asarray(times_s, dtype=float)
    lo, hi = math.floor(t.min()), math.ceil(t.max()) + bin_s
    edges = np.arange(lo, hi + bin_s / 2, bin_s)
    counts, _ = np.histogram(t, edges, weights=weights)
    return edges[:-1], counts / bin_s


def peak(times_s: list[float], weights: list[float] | None = None) -> float:
    _, rate = per_second(times_s, weights)
    return float(rate.max()) if len(rate) else 0.0


def position_lags(clients: list[dict[str, Any]], admitted_at_by_seq: dict[int, int]) -> list[float]:
    """Seconds from the room moving its head to h (the admission that made it h, from the log)
    to a client receiving the `position` event with id h; only events whose id moved past the
    connection's previous one (the first event of a connection is sent on connect, and a
    `sold_out` -> waiting change repeats the head)."""
    lags = []
    for c in clients:
        previous = 0
        for recv, head, _position, first in c.get("positions", []):
            moved = head > previous and not first  # not a state change (e.g. sold_out -> waiting)
            previous = head
            at = admitted_at_by_seq.get(head - 1)
            if moved and at is not None:
                lags.append(recv - at / 1000)
    return lags


def recovery_series(result: dict[str, Any]) -> tuple[dict[str, list[recovery.Success]],
                                                     dict[int, list[recovery.Success]]]:
    """The run's successes per source (seconds after on-sale) and the bulk holds per block."""
    on = result["onsale_at"]
    bulk, clients = result["bulk"], result["http"]["clients"]
    by_block: dict[int, list[recovery.Success]] = {}
    for start, end, block in getattr(bulk, "hold_ok", []):
        by_block.setdefault(int(block), []).append((start - on, end - on))
    series: dict[str, list[recovery.Success]] = {
        "hold_bulk": [(a - on, b - on) for a, b, _ in getattr(bulk, "hold_ok", [])],
        "checkout_bulk": [(a - on, b - on) for a, b in getattr(bulk, "checkout_ok", [])],
        "join_bulk": [(a - on, b - on) for a, b in recovery.binned_acks(
            result["producer"].get("ack_bins", []))]}
    for kind in ("hold", "join", "checkout"):
        series[f"{kind}_http"] = [(a - on, b - on) for c in clients
                                  for k, a, b in c.get("ok", []) if k == kind]
    series["admit_durable"] = [(t / 1000 - on, t / 1000 - on)
                               for t in result["audit"]["admitted_at_ms"]]
    return series, by_block


def summarize(args: Any, info: dict[str, Any], result: dict[str, Any], own_stack: bool,
              wall_s: float) -> dict[str, Any]:
    event, onsale_at = result["event"], result["onsale_at"]
    a, bulk, clients = result["audit"], result["bulk"], result["http"]["clients"]
    led, q = a["ledger"], a["queue"]
    seats = event.venue.seats_total
    sale_times = a["sale_times"]
    sellout = (sale_times[-1] - onsale_at) if led["seats_sold"] >= seats and sale_times else None
    http_lat = {k: [x for c in clients for x in c["lat"][k]] for k in ("join", "status", "hold",
                                                                       "checkout")}
    lags = position_lags(clients, {int(k): v for k, v in a["admitted_at_by_seq"].items()})
    latency = {f"{k}_http": lat_summary_ms(v) for k, v in http_lat.items()}
    latency["hold_bulk_actor"] = lat_summary_ms(bulk.latencies["hold"])
    latency["checkout_bulk_actor"] = lat_summary_ms(bulk.latencies["checkout"])
    latency["position_update_lag_http"] = lat_summary_ms(lags)
    joins_s = [t / 1000 - onsale_at for t in a["joins_at_ms"]]
    hold_t = [t - onsale_at for t, _ in bulk.hold_events]
    hold_w = [float(n) for _, n in bulk.hold_events]
    sale_t = [t - onsale_at for t, _ in bulk.sale_events]
    http_states: dict[str, int] = {}
    http_outcomes: dict[str, int] = {}
    http_errors: dict[str, int] = {}
    for c in clients:
        http_states[c["state"]] = http_states.get(c["state"], 0) + 1
        if c["outcome"]:
            http_outcomes[c["outcome"]] = http_outcomes.get(c["outcome"], 0) + 1
        for k, v in c["errors"].items():
            http_errors[k] = http_errors.get(k, 0) + v
    b = result.get("baselines", {})
    naive = b.get("naive_set_nx", {})
    redis_ceiling = b.get("redis_set_nx_ceiling", {})
    kafka = b.get("kafka_ceiling", {})
    peak_joins = peak(joins_s)
    peak_holds = peak(hold_t, hold_w)
    peak_checkouts = peak(sale_t)

    def ratio(x: float | None, y: float | None) -> float | None:
        return round(x / y, 4) if x and y else None

    summary: dict[str, Any] = {
        "event_id": event.event_id, "users": args.users, "seats": seats,
        "sold": led["seats_sold"], "bookings": led["bookings"],
        "sellout_s": round(sellout, 2) if sellout is not None else None,
        "all_told_s": result["told_sold_out_at_s"],
        "finished": bool(result["finished"]),
        "peak_joins_per_s": round(peak_joins), "joined_users": q["joined"],
        "admitted": q["admitted"], "told_sold_out": q["told_sold_out"],
        "fairness_inversion_share": a["fairness"]["share"],
        "oversold": led["oversold"],
        # a run stopped early has users still waiting (or still in Kafka): not told yet, not lost
        "lost_users": q["lost_users"] if result["finished"] else None,
        "not_admitted_or_told_when_stopped": 0 if result["finished"] else q["lost_users"],
        "admitted_twice": q["admitted_twice"], "unsold_while_demand": a["unsold_while_demand"],
        "confirmed_not_in_ledger": led["confirmed_not_in_ledger"],
        "http_sample_clients": len(clients),
        "latency_ms": latency,
        "peak_seat_holds_per_s_bulk": round(peak_holds),
        "peak_checkouts_per_s_bulk": round(peak_checkouts),
        "peak_memory_mb_by_process": result["memory_mb"],
        "chaos": [],
        "baselines": {
            "naive_set_nx": {k: v for k, v in naive.items()},
            "redis_set_nx_per_s": redis_ceiling.get("set_nx_per_s"),
            "kafka_produce_per_s": kafka.get("produce_per_s"),
            "kafka_consume_per_s": kafka.get("consume_per_s"),
            "kafka_acked_produce_per_s": kafka.get("acked_produce_per_s")},
        "ratios": {
            "sellout_s_ours_over_naive": ratio(sellout, naive.get("sellout_s")),
            "peak_joins_over_kafka_produce_ceiling": ratio(peak_joins, kafka.get("produce_per_s")),
            "peak_seat_holds_over_redis_set_nx_ceiling": ratio(peak_holds,
                                                              redis_ceiling.get("set_nx_per_s")),
            "peak_checkouts_over_kafka_acked_produce": ratio(peak_checkouts,
                                                            kafka.get("acked_produce_per_s"))},
        "http": {"states": http_states, "outcomes": http_outcomes, "errors": http_errors,
                 "reconnects": sum(c["reconnects"] for c in clients),
                 "peak_rss_mb": result["http"].get("peak_rss_mb")},
        "bulk": {"outcomes": dict(bulk.outcomes), "errors": dict(bulk.errors),
                 "holds": bulk.holds, "seats_held": bulk.seats_held, "checkouts": bulk.checkouts,
                 "seats_bought": bulk.seats_bought},
        "audit": {"ledger": led, "queue": q, "fairness": a["fairness"],
                  "joins_records": a["joins_records"], "audit_s": a["audit_s"]},
        "producer": {k: v for k, v in result["producer"].items() if k != "ack_bins"},
        "sources": {
            "sold, bookings, oversold, sellout_s": "durable: the booking ledger (Kafka), read "
            "with an independent consumer",
            "joined_users, peak_joins_per_s, lost_users, admitted_twice": "durable: the joins "
            "topic (independent consumer) vs the admission log and places in Redis",
            "latency_ms.*_http, position_update_lag_http": "http: the real HTTP + SSE clients",
            "latency_ms.*_bulk_actor, peak_*_bulk": "bulk: seat-block handle calls (actor "
            "boundary), holds batched per block",
            "timeline": "monitor: Redis sampled every 0.25 s"},
        "parameters": {k: v for k, v in vars(args).items()},
        "crowd": {"shape": result["shape"], "behaviour": result["behaviour"]},
        "own_stack": own_stack, "wall_s": round(wall_s, 1), "machine": info,
    }
    summary["stuck"] = recovery.stuck_users(summary["not_admitted_or_told_when_stopped"],
                                            http_states)
    series, by_block = recovery_series(result)
    summary["chaos"] = recovery.chaos_recovery(result["marks"], series, by_block, summary)
    summary["sources"]["chaos[].rto_*"] = recovery.HOW
    return summary


def write(out: Path, args: Any, info: dict[str, Any], result: dict[str, Any], own_stack: bool,
          wall_s: float) -> dict[str, Any]:
    summary = summarize(args, info, result, own_stack, wall_s)
    timeline = result["timeline"]
    (out / "report.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (out / "timeline.json").write_text(json.dumps(
        [{k: v for k, v in row.items() if k != "http_states"} for row in timeline[::2]]))
    plots(out, result, summary)
    (out / "report.md").write_text(markdown(summary))
    for name in ("http_config.json", "producer_config.json", "http_results.json"):
        path = out / name
        if (path.exists() and path.stat().st_size > 2_000_000) or name == "http_config.json":
            path.unlink(missing_ok=True)  # tokens, or too large to keep in git
    return summary


def headline_rows(s: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    b, r = s["baselines"], s["ratios"]
    naive = b.get("naive_set_nx") or {}
    lat = s["latency_ms"]

    def ms(key: str) -> str:
        v = lat.get(key) or {}
        return f"{v.get('p50_ms', 0):,.0f} / {v.get('p99_ms', 0):,.0f} (n={v.get('n', 0):,})"

    def num(v: Any) -> str:
        return "—" if v is None else (f"{v:,}" if isinstance(v, int) else f"{v:,.3g}")

    return [
        ("sold / seats", f"{s['sold']:,} / {s['seats']:,}",
         f"{naive.get('sold_distinct', 0):,} distinct, {naive.get('sales', 0):,} sales", ""),
        ("sell-out (s after on-sale)", num(s["sellout_s"]), num(naive.get("sellout_s")),
         num(r["sellout_s_ours_over_naive"])),
        ("oversold seats", num(s["oversold"]), num(naive.get("oversold")), ""),
        ("users lost / admitted twice", (f"{s['lost_users']} / {s['admitted_twice']}"
                                         if s["lost_users"] is not None else
                                         f"stopped early: {s['not_admitted_or_told_when_stopped']:,}"
                                         f" not yet admitted or told / {s['admitted_twice']}"),
         "nobody is told anything", ""),
        ("unsold while demand", num(s["unsold_while_demand"]), num(naive.get("unsold_at_end")), ""),
        ("fairness inversion share", f"{s['fairness_inversion_share']:.2e}", "no order kept", ""),
        ("peak joins/s (durable)", num(s["peak_joins_per_s"]),
         f"Kafka produce ceiling {num(b.get('kafka_produce_per_s'))}",
         num(r["peak_joins_over_kafka_produce_ceiling"])),
        ("peak seat holds/s (bulk)", num(s["peak_seat_holds_per_s_bulk"]),
         f"Redis SET NX ceiling {num(b.get('redis_set_nx_per_s'))}",
         num(r["peak_seat_holds_over_redis_set_nx_ceiling"])),
        ("peak checkouts/s (bulk)", num(s["peak_checkouts_per_s_bulk"]),
         f"acked Kafka produces/s {num(b.get('kafka_acked_produce_per_s'))}",
         num(r["peak_checkouts_over_kafka_acked_produce"])),
        ("join p50 / p99 ms (http)", ms("join_http"), "", ""),
        ("status p50 / p99 ms (http)", ms("status_http"), "", ""),
        ("hold p50 / p99 ms (http / bulk)", ms("hold_http"), ms("hold_bulk_actor"), ""),
        ("checkout p50 / p99 ms (http / bulk)", ms("checkout_http"), ms("checkout_bulk_actor"), ""),
        ("position-update lag p50 / p99 ms (http)", ms("position_update_lag_http"), "", ""),
    ]


def headline_text(s: dict[str, Any]) -> str:
    lines = [f"on-sale {s['event_id']}: {s['users']:,} users, {s['seats']:,} seats, "
             f"finished={s['finished']}"]
    for name, ours, base, ratio in headline_rows(s):
        lines.append(f"  {name:42s} {ours:28s} {base:36s} {ratio}")
    return "\n".join(lines)


def markdown(s: dict[str, Any]) -> str:
    m = s["machine"]
    p = s["parameters"]
    rows = "\n".join(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in headline_rows(s))
    chaos = "\n".join(recovery.line(c) for c in s["chaos"]) or "- none"
    mem = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(s["peak_memory_mb_by_process"].items(),
                                                      key=lambda kv: -kv[1]))
    f = s["audit"]["fairness"]
    naive = s["baselines"]["naive_set_nx"]
    cmd = f"python -m benchmarks.onsale --users {p['users']} --seats {p['seats']}" + "".join(
        f" --chaos {c}" for c in p["chaos"])
    return f"""# On-sale report: {s['users']:,} users, {s['seats']:,} seats

`{cmd}` ({'own stack' if s['own_stack'] else 'against ' + str(p['base_url'])}), commit
{m.get('git_commit')}, {m.get('cpus')} cores, load average {m.get('loadavg_at_start')} at the
start and {m.get('loadavg_at_end')} at the end; wall time {s['wall_s']} s. Finished (sold out and
everyone told): **{s['finished']}**.

| | ours | baseline (same run) | ratio |
|---|---|---|---|
{rows}

Where the figures come from: **durable** = the joins topic, admission log and booking ledger
read after the run (independent Kafka consumers); **bulk** = the {s['users'] - s['http_sample_clients']:,}
users driven at the Kafka boundary (join records produced into the joins topic on the crowd's
schedule) and the actor boundary (holds in batches per seat block, checkouts gathered per
block the same way); **http** = the {s['http_sample_clients']:,} real HTTP + SSE
clients (real sockets, real user tokens); **monitor** = Redis sampled every 0.25 s.

Invariants (durable): oversold {s['oversold']}, lost users {s['lost_users']}, admitted twice
{s['admitted_twice']}, stuck {s['stuck']}, unsold while demand {s['unsold_while_demand']}, confirmed bookings
missing from the ledger {s['confirmed_not_in_ledger']}; joined {s['joined_users']:,},
admitted {s['admitted']:,}, told sold out {s['told_sold_out']:,}; fairness: {f['inverted_pairs']:,}
inverted of {f['ordered_pairs']:,} ordered pairs ({f['users_compared']:,} users after on-sale;
the {f['prequeue_users_left_out']:,} pre-queue users are ordered by the lottery on purpose).

Chaos (RTO: from the fault to the first success of a request started once it was in place;
per source: `bulk` actor/Kafka boundary, `http` sample, `durable` admission log; the slowest
source is the headline; the invariants are the whole run's):
{chaos}

Peak memory per process (MiB, VmHWM): {mem}.

HTTP sample: states {s['http']['states']}, outcomes {s['http']['outcomes']}, errors
{s['http']['errors']}, stream reconnects {s['http']['reconnects']}.
Bulk: outcomes {s['bulk']['outcomes']}, errors {s['bulk']['errors']}.

Naive baseline (`SET ticket:<seat>:lock NX EX {p['hold_ttl']}`, no waiting room, the same
crowd's people and think times, {p['naive_concurrency']} at a time): {naive.get('outcomes')};
Redis commands {naive.get('redis_commands')}.

![queue](queue.png)
![admissions and joins](rates.png)
![holds and sales](holds_sales.png)
![latency](latency_cdf.png)
![position lag](position_lag.png)
"""


def plots(out: Path, result: dict[str, Any], s: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    onsale_at = result["onsale_at"]
    timeline = result["timeline"]
    a, bulk, clients = result["audit"], result["bulk"], result["http"]["clients"]
    marks = result["marks"]
    t = [row["t"] for row in timeline]

    def chaos_lines(ax: Any) -> None:
        for mk in marks:
            ax.axvline(mk["t"], color="red", ls="--", lw=1)
            ax.text(mk["t"], ax.get_ylim()[1] * 0.95, mk["label"], color="red", fontsize=7,
                    rotation=90, va="top", ha="right")
        ax.axvline(0, color="grey", ls=":", lw=1)

    def save(fig: Any, name: str) -> None:
        fig.tight_layout()
        fig.savefig(out / name, dpi=80)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(t, [row["waiting"] for row in timeline], label="waiting in the room (monitor)")
    ax.plot(t, [row["prequeue"] for row in timeline], label="of which pre-queue")
    ax.plot(t, [row["produced"] + row["http_joined"] for row in timeline],
            label="joined so far (bulk produced + http)", alpha=0.6)
    ax.set_xlabel("seconds after on-sale")
    ax.set_ylabel("users")
    ax.set_title("Queue length")
    ax.legend(fontsize=8)
    chaos_lines(ax)
    save(fig, "queue.png")

    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 5.2), sharex=True)
    jt, jr = per_second([x / 1000 - onsale_at for x in a["joins_at_ms"]])
    ax1.step(jt, jr, where="post", label="joins/s (durable: joins topic)")
    ax1.set_ylabel("joins/s")
    ax1.legend(fontsize=8)
    chaos_lines(ax1)
    at, ar = per_second([x / 1000 - onsale_at for x in a["admitted_at_ms"]])
    ax2.step(at, ar, where="post", color="green", label="admissions/s (durable: admission log)")
    ax2.set_ylabel("admissions/s")
    ax2.set_xlabel("seconds after on-sale")
    ax2.legend(fontsize=8)
    chaos_lines(ax2)
    save(fig, "rates.png")

    fig, ax = plt.subplots(figsize=(8, 3.6))
    ax.plot(t, [row["held"] for row in timeline], label="seats held (monitor)")
    ax.plot(t, [row["sold"] for row in timeline], label="seats sold (monitor)")
    st = sorted(x - onsale_at for x in a["sale_times"])
    ax.step(st, np.arange(1, len(st) + 1), where="post", ls=":", label="bookings (durable: ledger)")
    ax.set_xlabel("seconds after on-sale")
    ax.set_ylabel("seats / bookings")
    ax.set_title("Holds and sales")
    ax.legend(fontsize=8)
    chaos_lines(ax)
    save(fig, "holds_sales.png")

    fig, ax = plt.subplots(figsize=(8, 4))
    for key, style in (("join", "-"), ("status", "-"), ("hold", "-"), ("checkout", "-")):
        values = sorted(x * 1000 for c in clients for x in c["lat"][key])
        if values:
            ax.plot(values, np.linspace(0, 1, len(values)), style, label=f"{key} (http)")
    for key in ("hold", "checkout"):
        values = sorted(x * 1000 for x in bulk.latencies[key])
        if values:
            ax.plot(values, np.linspace(0, 1, len(values)), "--", label=f"{key} (bulk, actor call)")
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms, log)")
    ax.set_ylabel("share of requests")
    ax.set_title("Latency CDFs")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save(fig, "latency_cdf.png")

    fig, ax = plt.subplots(figsize=(8, 3.6))
    lags = sorted(x * 1000 for x in position_lags(
        clients, {int(k): v for k, v in a["admitted_at_by_seq"].items()}))
    if lags:
        ax.plot(lags, np.linspace(0, 1, len(lags)))
    ax.set_xlabel("ms from the room moving its head to the client's position event (http)")
    ax.set_ylabel("share of updates")
    ax.set_title("Position-update lag")
    ax.grid(alpha=0.3)
    save(fig, "position_lag.png")
