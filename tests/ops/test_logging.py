"""LOG_FORMAT=json: one JSON object per line from a real process, with secrets masked in every field."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LOG_SOME_LINES = """
import logging, django
django.setup()
log = logging.getLogger("switchboard.test")
log.info("called %s with key %s", "billing", "swb_q7Lr2Xc9abcdefghijklmnopqrstuvwxyz0123456")
log.warning("callback failed", extra={"delivery_id": "d-1", "error": "Authorization: Bearer sk-live-abcdefgh12345678"})
try:
    raise ValueError("signing secret swb_sig_abcdefghijklmnopqrstuvwxyz leaked into an error")
except ValueError:
    log.exception("crashed")
"""


def run(log_format: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LOG_FORMAT": log_format}
    return subprocess.run(
        [sys.executable, "-c", LOG_SOME_LINES], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_json_lines_with_extra_fields_and_secrets_masked():
    done = run("json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stderr.strip().splitlines()]

    assert [(line["level"], line["logger"]) for line in lines] == [
        ("INFO", "switchboard.test"),
        ("WARNING", "switchboard.test"),
        ("ERROR", "switchboard.test"),
    ]
    first, second, third = lines
    assert first["message"] == "called billing with key ••••"
    assert first["time"].endswith("Z") and len(first["time"]) == 24 and isinstance(first["process"], int)
    assert second["delivery_id"] == "d-1" and second["error"] == "Authorization: Bearer ••••"
    assert "ValueError" in third["exception"] and "swb_sig_" not in third["exception"]
    for secret in ("q7Lr2Xc9abcdefghij", "sk-live-abcdefgh", "abcdefghijklmnopqrstuvwxyz"):
        assert secret not in done.stderr


def test_plain_lines_are_scrubbed_too():
    done = run("plain")
    assert done.returncode == 0, done.stderr
    assert "INFO switchboard.test called billing with key ••••" in done.stderr
    assert "sk-live" not in done.stderr and "swb_sig_abc" not in done.stderr


def test_an_unknown_format_stops_the_app():
    done = run("xml")
    assert done.returncode == 1
    assert "ImproperlyConfigured: LOG_FORMAT must be plain or json" in done.stderr


CELERY_LOGS = """
import logging, django
django.setup()
from config.celery import app
app.log.setup(loglevel="INFO")  # what `celery worker` and `celery beat` do at start-up
logging.getLogger("celery.worker").info("worker up with %s", "Bearer swb_q7Lr2Xc9abcdefghijklmnop")
"""


def test_celery_processes_write_the_same_json_lines():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.test_settings", "LOG_FORMAT": "json"}
    done = subprocess.run(
        [sys.executable, "-c", CELERY_LOGS], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stderr.strip().splitlines()[-1])
    assert (line["logger"], line["level"], line["message"]) == ("celery.worker", "INFO", "worker up with Bearer ••••")
