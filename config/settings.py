"""Switchboard settings: every value comes from the environment, with single-machine defaults.

Development defaults (SQLite, an embedded SQLite-backed Celery broker, a generated Fernet key) need no
server. Production sets DATABASE_URL, CELERY_BROKER_URL, REDIS_URL, SECRET_KEY and
FIELD_ENCRYPTION_KEYS; with DEBUG off the app refuses to start without its secrets.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    READ_FILES,
    READ_NAMES,
    env_bool,
    env_float,
    env_float_list,
    env_int,
    env_list,
    env_str,
    local_secret,
)

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = Path(env_str("SWITCHBOARD_LOCAL_DIR", str(BASE_DIR / ".local")))

DEBUG = env_bool("DEBUG", False)
# Development and tests may keep generated secrets in the git-ignored .local/ folder; production may not.
LOCAL_SECRETS = env_bool("SWITCHBOARD_LOCAL_SECRETS", DEBUG)


def _secret(name: str, generate) -> str:
    value = env_str(name)
    if value:
        return value
    if not LOCAL_SECRETS:
        raise ImproperlyConfigured(f"{name} must be set when DEBUG is off")
    return local_secret(LOCAL_DIR / name.lower(), generate)


SECRET_KEY = _secret("SECRET_KEY", lambda: secrets.token_urlsafe(50))

# Comma-separated Fernet keys: the first encrypts, all decrypt (rotation, see rotate_encryption_keys).
FERNET_KEYS = [
    k.strip() for k in _secret("FIELD_ENCRYPTION_KEYS", lambda: Fernet.generate_key().decode()).split(",") if k.strip()
]
for _key in FERNET_KEYS:
    try:
        Fernet(_key)
    except ValueError as exc:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys") from exc
FERNET_USE_HKDF = False

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "adminsite.apps.SwitchboardAdminConfig",  # django.contrib.admin with our site (two-factor, dashboard)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "tenants",
    "integrations",
    "rules",
    "calls",
    "campaigns",
    "adminsite",
]

MIDDLEWARE = [
    # First, so it times and counts every answer, redirects and static files included.
    "tenants.middleware.MetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "tenants.middleware.ApiErrorMiddleware",
    # Django's and django-otp's own, idle on API requests that carry an Authorization header (API keys,
    # widget tokens): only the browser's session needs them (tenants.middleware.authenticates_by_header).
    "tenants.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "tenants.middleware.CsrfViewMiddleware",
    "tenants.middleware.AuthenticationMiddleware",
    "tenants.middleware.OTPMiddleware",
    "tenants.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite file by default (WAL + IMMEDIATE transactions so web, worker and beat can share it),
# PostgreSQL through DATABASE_URL in production and CI.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
# The hot paths' own statements (call admission, a call request's read) are prepared once per
# PostgreSQL connection (tenants.db.prepared_cursor). Off behind a transaction-pooling proxy that does
# not track prepared statements (PgBouncer before 1.21, or without max_prepared_statements).
DB_PREPARED_STATEMENTS = env_bool("DB_PREPARED_STATEMENTS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file (not :memory:) so a real Celery worker started by a test sees the same test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test-db.sqlite3")}
else:
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # libpq's defaults unless DATABASE_URL's query says otherwise (`?connect_timeout=10`): connecting
    # gives up after 5 s, and a server host that went away (a crash, a partition) is noticed within about
    # 25 s even while a request waits for a reply (keepalive probes), not after the kernel's TCP give-up.
    DATABASES["default"]["OPTIONS"] = {
        "connect_timeout": 5,
        "keepalives": 1,
        "keepalives_idle": 10,
        "keepalives_interval": 5,
        "keepalives_count": 3,
        **DATABASES["default"].get("OPTIONS", {}),
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Shared cache: Redis in production (OAuth tokens, rate limits, locks are shared by every process);
# the database otherwise, so correctness never depends on one process's memory. `migrate` creates the
# database cache's table (tenants migration 0002), whichever cache is configured.
REDIS_URL = env_str("REDIS_URL")
DATABASE_CACHE_TABLE = "switchboard_cache"
CACHES: dict[str, dict[str, Any]]
# Every command to the shared cache is bounded in time: a Redis that stops answering makes requests
# that need it answer 503 after this long (tenants.api.UNAVAILABLE_ERRORS), never hang.
REDIS_TIMEOUT_SECONDS = env_float("REDIS_TIMEOUT_SECONDS", 2.0)
if REDIS_TIMEOUT_SECONDS <= 0:
    raise ImproperlyConfigured("REDIS_TIMEOUT_SECONDS must be a number of seconds above 0")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS, "socket_timeout": REDIS_TIMEOUT_SECONDS},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": DATABASE_CACHE_TABLE,
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Admin two-factor sign-in (TOTP, django-otp; see tenants/two_factor.py): required in production.
ADMIN_REQUIRE_2FA = env_bool("ADMIN_REQUIRE_2FA", not DEBUG)
OTP_TOTP_ISSUER = "Switchboard"
# Operators can list and remove staff devices in the admin, never read their secrets back.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Where `collectstatic` gathers the files WhiteNoise serves (outside the code for read-only images).
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Request bodies: the API never needs more than this; larger bodies get a 413.
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 1024 * 1024)

# HTTPS and cookies: enforced whenever DEBUG is off (behind a proxy that sets X-Forwarded-Proto).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# How many reverse proxies in front of the app append to X-Forwarded-For (the client IP recorded in audit
# events is the address the outermost of them saw); 0 trusts no header and uses the socket's address.
NUM_PROXIES = env_int("NUM_PROXIES", 0)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and the Prometheus scraper talk plain HTTP to the process, inside the deployment.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.auth.ApiKeyAuthentication",
        "tenants.auth.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.HasTenantRole"],
    "DEFAULT_PARSER_CLASSES": ["tenants.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "tenants.negotiation.UsualAcceptFirst",
    "DEFAULT_THROTTLE_CLASSES": ["tenants.throttling.ApiKeyRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "tenants.api.Pagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "tenants.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Switchboard API",
    "DESCRIPTION": "Connect conversational AI to your systems over HTTP, and place AI phone calls.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["tenants.schema.drop_optional_trailing_slash"],
    # Several models have a `status`; name the campaign ones so the enum names stay stable.
    "ENUM_NAME_OVERRIDES": {
        "CampaignStatusEnum": "campaigns.models.CampaignStatus",
        "CampaignRowStatusEnum": "campaigns.models.RowStatus",
        "ActiveStatusEnum": "calls.models.ActiveStatus",
    },
    # The widget API has no DRF authentication class to describe its session token (rules.widget_views).
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "widgetSession": {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "swb_ws_…",
                "description": "A widget session token (from `POST /widget/v1/sessions`).",
            }
        }
    },
    # The docs page works offline: Swagger UI and Redoc come from drf-spectacular-sidecar's static files.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": True},
}

# Celery: an embedded SQLite broker by default (no server); Redis or RabbitMQ in production.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", f"sqla+sqlite:///{LOCAL_DIR / 'celery-broker.sqlite3'}")
CELERY_BROKER_POLLING_INTERVAL = env_float("CELERY_BROKER_POLLING_INTERVAL", 0.05)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Long countdowns are avoided (periodic sweeps pick up due work); this keeps Redis redelivery sane.
# (Only for brokers that have one: the SQLAlchemy transport hands its options to create_engine().)
if CELERY_BROKER_URL.startswith(("redis", "rediss", "sqs")):
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {"visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 3600)}
    if not CELERY_BROKER_URL.startswith("sqs"):
        # A publish to a Redis broker that stops answering would otherwise wait forever (kombu's
        # default): bounded like the cache's commands, it fails and is logged (tenants.queue), and
        # the sweeps resend.
        CELERY_BROKER_TRANSPORT_OPTIONS |= {
            "socket_timeout": REDIS_TIMEOUT_SECONDS,
            "socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
        }
# How many times a task may be redelivered after killing its worker before it is recorded as failed.
TASK_MAX_DELIVERIES = env_int("TASK_MAX_DELIVERIES", 5)

# Outgoing HTTP (integrations/http.py): private networks are refused unless explicitly allowed.
OUTBOUND_ALLOW_PRIVATE_NETWORKS = env_bool("OUTBOUND_ALLOW_PRIVATE_NETWORKS", False)
OUTBOUND_ALLOWED_HOSTS = env_list("OUTBOUND_ALLOWED_HOSTS")
OUTBOUND_USER_AGENT = "Switchboard/1.0 (+https://switchboard.invalid/bot)"

# What tenants' `env:NAME` / `file:/path` secret references may read (integrations/auth/secret_refs.py):
# nothing unless the operator opens it. Variables whose name starts with one of the prefixes or is
# listed; files under one of the directories (e.g. /run/secrets/tenants). The settings' own
# variables and files are refused whatever these say.
SECRET_REFS_ENV_PREFIXES = env_list("SECRET_REFS_ENV_PREFIXES")
SECRET_REFS_ENV_NAMES = env_list("SECRET_REFS_ENV_NAMES")
SECRET_REFS_FILE_DIRS = env_list("SECRET_REFS_FILE_DIRS")

# Global default AI provider (tenants may set their own).
LLM_BASE_URL = env_str("LLM_BASE_URL")
LLM_API_KEY = env_str("LLM_API_KEY")
LLM_MODEL = env_str("LLM_MODEL", "gpt-4o-mini")

API_CALL_LOG_RETENTION_DAYS = env_int("API_CALL_LOG_RETENTION_DAYS", 30)
API_KEY_LAST_USED_RESOLUTION_SECONDS = 60
# How long a process trusts an API key it authenticated, without reading it again: a revocation takes
# effect everywhere within this time (tenants.auth). At most 1 s; 0 reads the key on every request.
API_KEY_CACHE_SECONDS = min(1.0, env_float("API_KEY_CACHE_SECONDS", 1.0))

# LOG_FORMAT: `plain` lines, or `json` (one object per line: time, level, logger, message, extra fields).
LOG_FORMAT = env_str("LOG_FORMAT", "plain").lower()
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "tenants.logformat.JsonFormatter"},
    },
    "filters": {"scrub_secrets": {"()": "tenants.logformat.ScrubSecrets"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["scrub_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own console handler would print every request warning a second time through root.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

# Periodic jobs: django-celery-beat's DatabaseScheduler copies these into its tables at start-up, where
# the admin can see and tune them.
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {"task": "tenants.heartbeat", "schedule": 60.0},
}
CELERY_BEAT_SCHEDULE["purge-rate-limit-counters"] = {"task": "tenants.purge_rate_limit_counters", "schedule": 300.0}
CELERY_BEAT_SCHEDULE["purge-api-call-logs"] = {"task": "integrations.purge_api_call_logs", "schedule": 3600.0}

# OAuth2 authorization-code grants are refreshed ahead of expiry even when unused, so the provider
# never expires an idle refresh token; the job runs twice per window, and a queued run older than
# that is dropped (the next one does the same work).
OAUTH_REFRESH_AHEAD_MINUTES = env_int("OAUTH_REFRESH_AHEAD_MINUTES", 10)
if OAUTH_REFRESH_AHEAD_MINUTES < 1:
    raise ImproperlyConfigured("OAUTH_REFRESH_AHEAD_MINUTES must be at least 1")
OAUTH_REFRESH_INTERVAL = max(60.0, OAUTH_REFRESH_AHEAD_MINUTES * 30.0)
CELERY_BEAT_SCHEDULE["refresh-oauth-tokens"] = {
    "task": "integrations.refresh_oauth_tokens",
    "schedule": OAUTH_REFRESH_INTERVAL,
    "options": {"expire_seconds": int(OAUTH_REFRESH_INTERVAL)},
}

# Rules, AI provider and chat widget (rules app).
LLM_CONNECT_TIMEOUT = env_float("LLM_CONNECT_TIMEOUT", 3.0)
LLM_READ_TIMEOUT = env_float("LLM_READ_TIMEOUT", 20.0)
LLM_MAX_RETRIES = env_int("LLM_MAX_RETRIES", 1)

# The agent runtime (calls.runtime): the public address of this deployment, for the absolute
# transcript_url of a call (set it behind a proxy; the default suits `make run`).
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", f"http://127.0.0.1:{env_str('WEB_PORT', '8000')}").rstrip("/")
MESSAGE_MAX_CHARS = env_int("MESSAGE_MAX_CHARS", 2000)
WIDGET_VARIABLES_MAX_BYTES = env_int("WIDGET_VARIABLES_MAX_BYTES", 8192)
# Fixed-window limits in the shared cache: "<count>/<seconds>".
WIDGET_RATE_SESSION_MESSAGES = env_str("WIDGET_RATE_SESSION_MESSAGES", "20/60")
WIDGET_RATE_IP_MESSAGES = env_str("WIDGET_RATE_IP_MESSAGES", "120/60")
WIDGET_RATE_IP_SESSIONS = env_str("WIDGET_RATE_IP_SESSIONS", "20/60")

# Outbound calls (calls/): callback delivery, sweeps and capacity estimates (see docs/calls.md).
# Callback retries: the delay after each failed attempt (8 attempts over about 24 h), each ±20 % jitter.
CALLS_WEBHOOK_RETRY_SCHEDULE = env_float_list(
    "CALLS_WEBHOOK_RETRY_SCHEDULE", [10.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0, 54000.0]
)
CALLS_WEBHOOK_JITTER = 0.2
CALLS_WEBHOOK_TIMEOUT_SECONDS = env_float("CALLS_WEBHOOK_TIMEOUT_SECONDS", 30.0)
# A task holds a lease on its delivery/call for its timeout plus this margin; then others may take over.
CALLS_LEASE_MARGIN_SECONDS = env_float("CALLS_LEASE_MARGIN_SECONDS", 15.0)
# The sweeps re-enqueue due work whose message was sent longer ago than this (lost or still queued).
CALLS_REENQUEUE_AFTER_SECONDS = env_float("CALLS_REENQUEUE_AFTER_SECONDS", 60.0)
# Work due later than this is left to the sweeps instead of a broker countdown.
CALLS_MAX_COUNTDOWN_SECONDS = 5.0
CALLS_EXPECTED_CALL_SECONDS = env_int("CALLS_EXPECTED_CALL_SECONDS", 120)
CALLS_STALLED_AFTER_SECONDS = 600
CALLS_IDEMPOTENCY_TTL_SECONDS = 24 * 3600
CELERY_BEAT_SCHEDULE["calls-dialer-sweep"] = {"task": "calls.sweep_dialer", "schedule": 2.0}
# PostgreSQL: a new call's first dialer step is announced by NOTIFY on this channel in the statement that
# admits it, and the worker's dispatcher (calls.dispatcher) sends the task; off, the web publishes it.
CALLS_DISPATCHER = env_bool("CALLS_DISPATCHER", True)
CALLS_DISPATCH_CHANNEL = env_str("CALLS_DISPATCH_CHANNEL", "switchboard_calls")
if not 0 < len(CALLS_DISPATCH_CHANNEL.encode()) <= 63:  # PostgreSQL's identifier limit (NAMEDATALEN - 1)
    raise ImproperlyConfigured("CALLS_DISPATCH_CHANNEL must be 1 to 63 bytes long")
CELERY_BEAT_SCHEDULE["calls-webhook-sweep"] = {"task": "calls.sweep_webhooks", "schedule": 5.0}
CELERY_BEAT_SCHEDULE["calls-stalled-sweep"] = {"task": "calls.sweep_stalled", "schedule": 60.0}
# A web process that saved a rule rebuilds the tenant's compiled rules in a background thread on commit.
RULES_BUILD_IN_BACKGROUND = env_bool("RULES_BUILD_IN_BACKGROUND", True)
# Repairs the trunks' live-call counters from the calls (only counts changed outside admission/ending).
CELERY_BEAT_SCHEDULE["calls-reconcile-trunks"] = {"task": "calls.reconcile_trunks", "schedule": 60.0}

# Real phone calls (calls/dialers/livekit.py, SPEC §16). Placing a LiveKit call holds a worker for the
# whole ringing time, so it runs on its own queue: a ringing phone never blocks webhooks or other work.
CALLS_DIAL_QUEUE = env_str("CALLS_DIAL_QUEUE", "calls-dial")
CELERY_TASK_ROUTES = {"calls.livekit_dial": {"queue": CALLS_DIAL_QUEUE}}
# A call no dialing worker has taken after this many seconds ends as Trigger Failed.
CALLS_DIAL_QUEUE_TIMEOUT_SECONDS = env_int("CALLS_DIAL_QUEUE_TIMEOUT_SECONDS", 300)
# The voice worker (manage.py voice_worker): LiveKit Agents plugins for speech, chosen by name.
VOICE_STT = env_str("VOICE_STT", "deepgram")
VOICE_TTS = env_str("VOICE_TTS", "openai")
VOICE_VAD = env_str("VOICE_VAD", "silero")
VOICE_STT_MODEL = env_str("VOICE_STT_MODEL", "")
VOICE_TTS_MODEL = env_str("VOICE_TTS_MODEL", "")
# The LiveKit project the voice worker registers with (LiveKit Agents' own variable names).
LIVEKIT_URL = env_str("LIVEKIT_URL", "")
LIVEKIT_API_KEY = env_str("LIVEKIT_API_KEY", "")
LIVEKIT_API_SECRET = env_str("LIVEKIT_API_SECRET", "")
VOICE_WORKER_EXECUTOR = env_str("VOICE_WORKER_EXECUTOR", "process")
VOICE_WORKER_REFRESH_SECONDS = env_float("VOICE_WORKER_REFRESH_SECONDS", 60.0)

# Campaigns (SPEC §15): the dispatcher ticks every second; a worker holds a row this long (dialling, or
# running its after-call steps) before the tick may give it to another; uploads up to 20 MB.
CAMPAIGN_ROW_LEASE_SECONDS = env_float("CAMPAIGN_ROW_LEASE_SECONDS", 120.0)
CAMPAIGN_UPLOAD_MAX_BYTES = 20 * 1024 * 1024
CELERY_BEAT_SCHEDULE["campaigns-tick"] = {"task": "campaigns.tick", "schedule": 1.0}
# Request bodies allowed past DATA_UPLOAD_MAX_MEMORY_SIZE (tenants.middleware): path regex → bytes.
API_LARGE_BODY_PATHS = [(r"^/api/v1/campaigns/[^/]+/rows/?$", CAMPAIGN_UPLOAD_MAX_BYTES)]

# Operations (SPEC §17): readiness, metrics, API rate limits, structured logs.
READYZ_BROKER_TIMEOUT_SECONDS = env_float("READYZ_BROKER_TIMEOUT_SECONDS", 2.0)
# Requests per seconds allowed to one API key ("<count>/<seconds>"); a key may carry its own override.
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/60")
# Prometheus (tenants.metrics): `/metrics`, Bearer METRICS_TOKEN when set. Every process of a host (gunicorn
# workers, Celery workers) writes its counters into one folder that the scrape sums; it must exist before
# prometheus-client is first imported, so it is set here. Give each host an empty folder at boot.
METRICS_TOKEN = env_str("METRICS_TOKEN")
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR", str(LOCAL_DIR / "metrics"))
try:
    Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
except OSError as exc:
    raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR {PROMETHEUS_MULTIPROC_DIR} cannot be created: {exc}") from exc
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
# Last, so it lists every variable read above (tenants' secret references may never name them).
SETTINGS_ENV_NAMES = frozenset(READ_NAMES)
SETTINGS_FILES = frozenset(READ_FILES)
