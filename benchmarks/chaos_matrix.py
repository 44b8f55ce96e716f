"""The chaos matrix (issue 12 item 6): one on-sale per fault, RTO / RPO / invariants in a table.

    python -m benchmarks.chaos_matrix [--users 20000 --seats 3000] [--at 10] [--only a,b]

Each fault is `python -m benchmarks.onsale ... --chaos <flag>@<at>` on the on-sale's own stack
(Redis, Kafka, NTP, Ray and Serve on 127.0.0.1 only: never `--base-url`), one after the other,
each bounded: the on-sale's `--timeout`, and the process is stopped (SIGTERM, then SIGKILL)
`--margin-s` after that. Every run's report goes to `benchmarks/results/chaos_matrix/<fault>/`;
the matrix to `benchmarks/results/chaos_matrix.json` (machine, load average at start and end)
and `.md`. With `--only`, the other faults keep their rows from the previous JSON.

The first five run on the on-sale's in-process stack (Ray in its driver); the last four on its
process stack (`benchmarks/onsale/procstack.py`: every service a process as `make up` starts
them, Redis HA for the Sentinel failover, the three-broker Kafka cluster for the broker kill).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks._common import REPO, RESULTS, machine_info, write_result

NAME = "chaos_matrix"
# fault -> the on-sale's chaos flag (kill-block:1: the second of the two blocks of 3,000 seats)
FAULTS: dict[str, str] = {
    "seat-block owner": "kill-block:1", "waiting-room owner": "kill-room",
    "Ray worker node": "kill-node", "Redis restart (no HA)": "restart-redis",
    "Kafka broker restart (single broker)": "restart-kafka",
    "Redis primary, Sentinel failover (HA)": "failover-redis",
    "Kafka broker, HA (3 brokers, RF 3)": "kill-kafka-broker",
    "Ray head (GCS FT on its Redis)": "restart-ray-head",
    "whole-stack power loss, `up`": "power-loss"}
FLAGS = {flag.split(":")[0]: fault for fault, flag in FAULTS.items()}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.chaos_matrix", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--seats", type=int, default=3_000, help="3,000 = two seat blocks")
    ap.add_argument("--http-clients", type=int, default=300)
    # at 5 s holds, checkouts, joins and admissions all run; at 10 s (3,000 seats, 20,000 users)
    # every seat is already held or sold, and the next hold waits for holds to expire (~30 s)
    ap.add_argument("--at", type=float, default=5.0, help="the fault, seconds after on-sale")
    ap.add_argument("--timeout", type=float, default=240.0, help="longest one on-sale may run")
    ap.add_argument("--margin-s", type=float, default=300.0,
                    help="stack start, audit and stop on top of --timeout before it is stopped")
    ap.add_argument("--only", default="", help="comma-separated flags, e.g. kill-room,restart-redis")
    args = ap.parse_args(argv)
    chosen = [f.strip() for f in args.only.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FLAGS]
    if unknown:
        ap.error(f"--only: unknown {unknown}; choose from {', '.join(FLAGS)}")
    args.faults = [FLAGS[f] for f in chosen] if chosen else list(FAULTS)
    return args


def onsale_cmd(args: argparse.Namespace, flag: str, out: Path) -> list[str]:
    """The on-sale of one fault: its own stack (no --base-url: 127.0.0.1 only), no baselines."""
    return [sys.executable, "-m", "benchmarks.onsale", "--users", str(args.users),
            "--seats", str(args.seats), "--http-clients", str(args.http_clients),
            "--chaos", f"{flag}@{args.at:g}", "--no-baselines", "--quiet",
            "--timeout", str(args.timeout), "--out", str(out)]


def run_one(cmd: list[str], out: Path, bound_s: float) -> tuple[int | None, float]:
    """Run one on-sale, bounded: SIGTERM at the bound (it stops its services), SIGKILL 60 s on."""
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with open(out / "run.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc: int | None = proc.wait(bound_s)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            rc = None
    return rc, round(time.monotonic() - started, 1)


def row(fault: str, flag: str, report: dict[str, Any] | None, rc: int | None,
        wall_s: float) -> dict[str, Any]:
    """The matrix row of one run, from its report.json (None: it did not write one)."""
    base: dict[str, Any] = {"fault": fault, "flag": flag, "exit_code": rc, "wall_s": wall_s,
                            "source": "this benchmark"}
    if report is None:
        return base | {"error": "no report (stopped at the bound or failed: see run.log)"}
    mark = (report.get("chaos") or [{}])[0]
    keys = ("t", "took_s", "outcome", "rto_hold_s", "rto_join_s", "rto_checkout_s", "rto_admit_s",
            "rto_s_by_source", "rpo_confirmed_bookings_lost")
    return base | {k: mark.get(k) for k in keys} | {
        k: report.get(k) for k in ("oversold", "lost_users", "stuck", "admitted_twice", "sold",
                                   "seats", "sellout_s", "finished", "unsold_while_demand")}


def _s(v: Any) -> str:
    return "—" if v is None else f"{v:g} s"


def table_line(r: dict[str, Any]) -> str:
    """One markdown row: fault | took | RTO hold | RTO join | checkout | admissions | RPO |
    double sales | lost / stuck | sold out in."""
    if "error" in r:
        return f"| {r['fault']} (`{r['flag']}`) | {r['error']} | | | | | | | | |"
    src = r.get("rto_s_by_source") or {}

    def pair(kind: str) -> str:
        bulk = src.get(f"{kind}_bulk_killed_block", src.get(f"{kind}_bulk"))
        return f"**{_s(r.get(f'rto_{kind}_s'))}** ({_s(bulk)} / {_s(src.get(f'{kind}_http'))})"

    sold = f"{_s(r['sellout_s'])} ({r['sold']:,}/{r['seats']:,})" if r.get("sold") is not None \
        else "—"
    return (f"| {r['fault']} (`{r['flag']}@{r['t']:g}`) | {_s(r.get('took_s'))} | {pair('hold')} | "
            f"{pair('join')} | {pair('checkout')} | {_s(r.get('rto_admit_s'))} | "
            f"{r.get('rpo_confirmed_bookings_lost')} | {r.get('oversold')} | "
            f"{r.get('lost_users')} / {r.get('stuck')} | {sold} |")


HEADER = ("| fault | fault took | RTO hold (bulk / http) | RTO join (bulk / http) | "
          "RTO checkout (bulk / http) | admissions resume | RPO (confirmed lost) | double sales | "
          "users lost / stuck | sold out in (sold) |\n|---|---|---|---|---|---|---|---|---|---|")


NO_ADMISSION_DUE = (
    "Admissions resume —: the admission log has no entry after the fault was in place, because "
    "none was due: the users admitted before it (admitting ran on through the fault) wanted "
    "more than the seats left, some of them found no seat (`bulk.outcomes."
    "no_seats_after_admission` in the run's report), and everyone else was told sold out.")


def table(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER, *map(table_line, rows)]
    if any("error" not in r and r.get("rto_admit_s") is None for r in rows):
        lines += ["", NO_ADMISSION_DUE]
    return "\n".join(lines)


def previous_rows() -> dict[str, dict[str, Any]]:
    path = RESULTS / f"{NAME}.json"
    if not path.exists():
        return {}
    return {r["fault"]: r for r in json.loads(path.read_text()).get("rows", [])}


def save(args: argparse.Namespace, info: dict[str, Any],
         rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """chaos_matrix.json (machine, load average at start and now) and chaos_matrix.md."""
    ordered = [rows[f] for f in FAULTS if f in rows]
    md = table(ordered)
    path = write_result(NAME, {"name": NAME, "parameters": {k: v for k, v in vars(args).items()},
                               "machine": dict(info), "rows": ordered,
                               "table_md": md})
    path.with_suffix(".md").write_text(f"# Chaos matrix\n\n{md}\n")
    return ordered


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine_info()
    rows = previous_rows()
    for fault in args.faults:
        flag = FAULTS[fault]
        out = RESULTS / NAME / flag.replace(":", "-")
        print(f"{fault}: {flag}@{args.at:g} ...", flush=True)
        load_before = list(os.getloadavg())
        rc, wall = run_one(onsale_cmd(args, flag, out), out, args.timeout + args.margin_s)
        report_path = out / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        rows[fault] = row(fault, flag, report, rc, wall) | {
            "commit": info["git_commit"], "report": str(out.relative_to(REPO)),
            "loadavg_before": load_before, "loadavg_after": list(os.getloadavg())}
        (out / "producer_config.json").unlink(missing_ok=True)
        print(table_line(rows[fault]), flush=True)
        ordered = save(args, info, rows)  # after each run: a stopped matrix keeps its rows
    ordered = save(args, info, rows)
    print(table(ordered))
    print(f"wrote {RESULTS / NAME}.json and .md")
    ok = all(r.get("oversold") == 0 and r.get("rpo_confirmed_bookings_lost") == 0
             and r.get("lost_users") == 0 for r in ordered)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
