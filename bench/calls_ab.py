"""POST /calls : /healthz of this checkout and of a baseline, side by side in one run (run by hand; prints figures).

    git worktree add --detach ../baseline <commit>
    .venv/bin/python bench/calls_ab.py --baseline ../baseline [--rounds 20] [--seconds 2] [--clients 16]

bench/calls.py's figures move with this machine's speed, which swings 1.5-2.5x within a minute, so two
builds measured in runs minutes apart cannot be told apart by a few percent. Here both run at once,
each a gunicorn of 2 workers x 4 threads as bench/calls.py starts it (same database, Redis, settings
and local secrets: the baseline gets this checkout's SWITCHBOARD_LOCAL_DIR), and wrk loads one at a
time — per round /healthz then POST /integration/v1/calls on each, the two builds' order swapped
every round; an idle gunicorn costs nothing. Prints each round's POST /calls : /healthz and the CPU
per POST of every process (gunicorn, PostgreSQL, Redis, wrk), then both builds' medians.

Many short rounds beat a few long ones: against itself (both sides this checkout, 2026-12-06) the
medians came 0.7 points apart at 20 rounds of 2 s (34.6 % and 35.3 %, 12 of 20 rounds "higher") but
5.1 points apart at 8 rounds of 6 s (36.6 % and 31.5 %) — read a smaller difference as none.

The database is migrated by this checkout (bench/calls.py's, sb_perf_bench); a baseline whose models
differ from this checkout's may not run against it. The calls a round places are ended after it.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench_calls():
    """bench/calls.py as a module (its name would clash with the `calls` app)."""
    spec = importlib.util.spec_from_file_location("bench_calls", ROOT / "bench" / "calls.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_calls"] = module
    spec.loader.exec_module(module)
    return module


bench = _bench_calls()


def start(root: Path, name: str) -> tuple[subprocess.Popen, int]:
    """`root`'s gunicorn, with this checkout's local secrets (the database's rows are encrypted with them)."""
    env = {**bench.ENV, "SWITCHBOARD_LOCAL_DIR": str(ROOT / ".local")}
    return bench.start_gunicorn(f"bench-calls-ab-{name}.log", cwd=root, env=env)


def measure(web: subprocess.Popen, port: int, path: str, args, key=None, body=None) -> tuple[float, float, bool]:
    """(requests/s, CPU ms per request of every process, whether a process ended meanwhile)."""
    figures, gunicorn_ms, spent, ended = bench.measured_wrk(
        web, port, path, connections=args.clients, seconds=args.seconds, key=key, body=body
    )
    if figures["bad"]:
        raise SystemExit(f"{path} answered {figures['bad']:.0f} non-2xx: see .local/bench-calls-ab-*.log")
    return figures["rate"], gunicorn_ms + sum(spent.values()), bool(ended)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="a checkout of the build to compare with")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each wrk run")
    parser.add_argument("--clients", type=int, default=16, help="wrk connections")
    args = parser.parse_args()
    baseline = args.baseline.resolve()
    if not (baseline / "manage.py").is_file():
        raise SystemExit(f"--baseline {baseline} is not a checkout of this project")
    (ROOT / ".local").mkdir(exist_ok=True)
    bench.create_database()
    key, body, trunk_ids = bench.setup_tenant()
    call = {**body, "sip_trunk_id": trunk_ids[0]}
    builds = {"baseline": start(baseline, "baseline"), "this": start(ROOT, "this")}
    ratios: dict[str, list[float]] = {name: [] for name in builds}
    cpu: dict[str, list[float]] = {name: [] for name in builds}
    try:
        for _, port in builds.values():
            bench.wait_until_up(port)
        print(f"baseline {baseline} against this checkout {ROOT}; {args.clients} connections, {args.seconds:g} s each")
        for number in range(args.rounds):
            for name in list(builds) if number % 2 == 0 else list(builds)[::-1]:
                web, port = builds[name]
                health, _, _ = measure(web, port, "/healthz", args)
                calls, per_call, ended = measure(web, port, "/integration/v1/calls", args, key, call)
                bench.end_round_calls(call["sip_trunk_id"])
                ratios[name].append(calls / health)
                cpu[name].append(per_call)
                print(
                    f"  round {number + 1} {name:9s} /healthz {health:7.1f}  POST /calls {calls:6.1f} req/s"
                    f"  = {calls / health:6.1%}   CPU per POST {per_call:.2f} ms{'+' if ended else ''}"
                )
        print("  (a + after a CPU figure: a process ended during the run, so its last CPU is missing)")
        for name in builds:
            print(
                f"{name:9s} POST /calls : /healthz median {statistics.median(ratios[name]):.1%}"
                f" (rounds {min(ratios[name]):.1%}-{max(ratios[name]):.1%}),"
                f" CPU per POST median {statistics.median(cpu[name]):.2f} ms"
            )
        wins = sum(t > b for t, b in zip(ratios["this"], ratios["baseline"], strict=True))
        print(f"this checkout's ratio higher in {wins} of {args.rounds} rounds")
    finally:
        for web, _ in builds.values():
            bench.stop(web)


if __name__ == "__main__":
    main()
