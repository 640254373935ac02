"""Run the same work at once in many threads, or in other processes against the test database.

Tests using these need committed data (`transactional_db` or `live_server`): other threads and
processes have their own database connections.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.db import connections

from tests.support.worker import database_url_for_test_db

ROOT = Path(__file__).resolve().parents[2]


def run_threads(count: int, work: Callable[[], Any], *, timeout: float = 60.0) -> list[Any]:
    """`work()` in `count` threads released together by a barrier; results in thread order."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    if errors:
        raise errors[0]
    return results


def run_processes(count: int, code: str, *, start_at: float, timeout: float = 120.0) -> list[Any]:
    """Run the Python `code` in `count` processes with Django set up on the test database.

    The code sees `START_AT` (a time.time() to wait for, so the processes start together) and must
    print one JSON line last; the parsed lines are returned.
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": database_url_for_test_db(),
        "SWB_START_AT": str(start_at),
    }
    prelude = "import os, time, json, django\ndjango.setup()\nSTART_AT = float(os.environ['SWB_START_AT'])\n"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", prelude + code], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = []
    for process in processes:
        out, err = process.communicate(timeout=timeout)
        if process.returncode != 0:
            raise AssertionError(f"worker process failed ({process.returncode}):\n{err.decode()[-3000:]}")
        outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    return outputs
