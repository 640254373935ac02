"""Settings for the test suite: the production settings with what tests need switched on."""

from __future__ import annotations

import os

os.environ.setdefault("SWITCHBOARD_LOCAL_SECRETS", "true")
# The suite never shares a broker with `make run`: its own SQLite file unless CI names a server.
os.environ.setdefault(
    "CELERY_BROKER_URL",
    "sqla+sqlite:///"
    + os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local", "celery-test-broker.sqlite3"),
)

# The suite's processes (workers, the cross-process tests) count into a folder of their own.
os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local", "metrics-test")
)

from config.settings import *  # noqa: F403

SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_HSTS_SECONDS = 0
# Tests talk to real servers on 127.0.0.1; one test per guard switches this back off.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
API_KEY_LAST_USED_RESOLUTION_SECONDS = 0
# Suites (the schema fuzz run above all) send far more than 600 requests a minute with one key; the
# rate-limit tests set their own limits.
API_RATE_LIMIT = "1000000/60"
