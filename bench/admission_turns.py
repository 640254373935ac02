"""Call admission under contention for one trunk (run by hand; prints figures; PostgreSQL, loopback only).

    .venv/bin/python bench/admission_turns.py [--seconds 24] [--processes 2] [--threads 4]

`--processes` processes of `--threads` threads each (as gunicorn 2 x 4 would run) admit calls to one
trunk with large limits through `calls.admission.admit_call`, as fast as they can. The seconds
take turns among three ways, in the same run, so a drift in the shared machine's speed hits all alike:
- "batched": as built — admissions to one trunk take turns in each process (`calls.admission._TURNS`),
  and the calls queued while a statement ran go together in the next one (up to MAX_BATCH);
- "one per statement": taking turns, but every call in a statement of its own (MAX_BATCH = 1, as
  built before 2026-12-02's second session);
- "all at once": every thread sends its statement at once, and those that find the trunk's row locked
  wait for it in PostgreSQL, then recheck the statement against the row's new version (EvalPlanQual).

Prints admissions per second and the CPU of all PostgreSQL processes per admission, for each way.
Figures on the 2-core development machine (2026-12-02, five runs of 24 s, 2 x 4 threads): taking
turns 0.82-1.03 ms PostgreSQL CPU per admission at 464-966/s; all at once 1.10-1.58 ms at 428-820/s
(the machine's speed drifted between runs; within each run taking turns was 15-40 % cheaper and
8-27 % faster).
Uses bench/admission.py's database and settings; the calls it places are ended afterwards.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import admission as bench_admission  # bench/admission.py: its database and fixtures


def postgres_cpu_seconds() -> float:
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, tail = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        if head.split("(", 1)[1] == "postgres":
            fields = tail.split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


WAYS = ("batched", "one per statement", "all at once")


def way(moment: float) -> int:
    return int(moment) % len(WAYS)


def admitter(body: dict, threads: int, start_at: float, seconds: float, results) -> None:
    """One process: `threads` threads admitting calls until the run ends; counts them by way."""
    from django.db import connection

    from calls import admission, services, validation
    from calls.models import Call, CallStatus
    from tenants.models import Tenant

    connection.close()  # the parent's connection is not this process's
    built_in_turn, built_batch = admission._admit_in_turn, admission.MAX_BATCH

    def at_once(database, pending, channel):
        admission._send(database, [pending], channel)  # no turn, no queue: the statement goes now
        if isinstance(pending.outcome, BaseException):
            raise pending.outcome
        return pending.outcome

    admission._admit_in_turn = lambda *args: (at_once if way(time.time()) == 2 else built_in_turn)(*args)
    counts = [[0] * len(WAYS) for _ in range(threads)]

    def admit(mine: list[int]) -> None:
        from django.db import connection as thread_connection

        tenant = Tenant.objects.get(pk=body["tenant_id"])
        request = validation.plain_call_request(body["request"])
        while time.time() < start_at:
            time.sleep(0.001)
        while time.time() < start_at + seconds:
            admission.MAX_BATCH = 1 if way(time.time()) == 1 else built_batch
            fields = services._call_fields(tenant, request, "bench", {})
            call = Call(status=CallStatus.INITIATING, dialer_due_at=fields["created_at"], **fields)
            if not admission.admit_call(call, fields["created_at"]):
                raise SystemExit("the trunk refused a call: its limits are too small for this run")
            mine[way(time.time())] += 1
        thread_connection.close()

    workers = [threading.Thread(target=admit, args=(mine,)) for mine in counts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    results.put([sum(c[n] for c in counts) for n in range(len(WAYS))])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=24, help="length of the run (a third of it each way)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    bench_admission.setup()
    tenant, request = bench_admission.fixtures()
    from django.db import connection

    connection.close()
    body = {"tenant_id": str(tenant.pk), "request": request}
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = float(int(time.time()) + 3)
    processes = [
        context.Process(target=admitter, args=(body, args.threads, start_at, args.seconds, results))
        for _ in range(args.processes)
    ]
    for process in processes:
        process.start()
    try:
        while time.time() < start_at:
            time.sleep(0.005)
        cpu = [0.0] * len(WAYS)
        last = postgres_cpu_seconds()
        while time.time() < start_at + args.seconds:
            second = int(time.time())
            while int(time.time()) == second:
                time.sleep(0.002)
            now = postgres_cpu_seconds()
            cpu[way(second)] += now - last
            last = now
        admitted = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=60)
        bench_admission.cleanup(tenant)
    print(f"{args.processes} processes x {args.threads} threads admitting to one trunk, {args.seconds} s:")
    for number, label in enumerate(WAYS):
        count = sum(figures[number] for figures in admitted)
        print(
            f"  {label:20s} {count / (args.seconds / len(WAYS)):7.1f} admissions/s   "
            f"PostgreSQL CPU {cpu[number] * 1000 / max(1, count):5.3f} ms per admission"
        )


if __name__ == "__main__":
    main()
