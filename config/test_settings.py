"""Settings for the test suite: the production settings with what tests need switched on."""

from __future__ import annotations

import os
import shutil
import tempfile

os.environ.setdefault("SWITCHBOARD_LOCAL_SECRETS", "true")
# The suite never shares a broker with `make run`: its own SQLite file unless CI names a server.
os.environ.setdefault(
    "CELERY_BROKER_URL",
    "sqla+sqlite:///"
    + os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local", "celery-test-broker.sqlite3"),
)

# Metrics: each pytest process (each xdist worker) counts into a fresh folder of its own, shared with the
# workers and helper processes its tests start (they inherit it), so the metric tests' before/after
# deltas see only their own process tree.
# The folder is named by process id too, so another process loading these settings (mypy's Django
# plugin, a second pytest in the same checkout) never empties a running suite's folder.
_test_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get("SWB_TEST_METRICS_FOR") != _test_worker:
    _metrics_root = os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local", "metrics-test")
    for _stale in os.listdir(_metrics_root) if os.path.isdir(_metrics_root) else []:
        _pid = _stale.rpartition("-")[2]
        if _pid.isdigit() and not os.path.exists(f"/proc/{_pid}"):
            shutil.rmtree(os.path.join(_metrics_root, _stale), ignore_errors=True)
    _metrics_dir = os.path.join(_metrics_root, f"{_test_worker}-{os.getpid()}")
    shutil.rmtree(_metrics_dir, ignore_errors=True)
    os.environ.update(PROMETHEUS_MULTIPROC_DIR=_metrics_dir, SWB_TEST_METRICS_FOR=_test_worker)

from config.settings import *  # noqa: E402, F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# Tests talk to real servers on 127.0.0.1; one test per guard switches this back off.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
API_KEY_LAST_USED_RESOLUTION_SECONDS = 0
# The deploy default (on when DEBUG is off) is tested in tests/adminsite; elsewhere staff sign in with a password.
ADMIN_REQUIRE_2FA = False
# Threads building rule sets after a commit would race the suite's table flushes; one test turns it on.
RULES_BUILD_IN_BACKGROUND = False
# Suites (the schema fuzz run above all) send far more than 600 requests a minute with one key; the
# rate-limit tests set their own limits.
API_RATE_LIMIT = "1000000/60"
# Secret references: the suite's own variables (SWB_*) and pytest's temporary files; the tests of the
# policy itself narrow these.
SECRET_REFS_ENV_PREFIXES = ["SWB_"]
SECRET_REFS_FILE_DIRS = [tempfile.gettempdir()]
