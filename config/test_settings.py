"""Settings for the test suite: the production settings with what tests need switched on."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("SWITCHBOARD_LOCAL_SECRETS", "true")
# The suite never shares a broker with `make run`: its own SQLite file unless CI names a server.
os.environ.setdefault(
    "CELERY_BROKER_URL",
    "sqla+sqlite:///"
    + os.path.join(os.path.dirname(os.path.dirname(__file__)), ".local", "celery-test-broker.sqlite3"),
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
# Secret references: the suite's own variables (SWB_*) and pytest's temporary files; the tests of the
# policy itself narrow these.
SECRET_REFS_ENV_PREFIXES = ["SWB_"]
SECRET_REFS_FILE_DIRS = [tempfile.gettempdir()]
