"""Settings, all from the environment (django-environ).

With no configuration the runtime is embedded: SQLite in WAL mode and the in-memory channel layer, in one
process. `DATABASE_URL` selects PostgreSQL, `REDIS_URL` the Redis channel layer.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="insecure-dev-key-change-me-in-production-0123456789")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["*"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "scheduling",
    "calendar_projection",
    "ops_api",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's, and any app's static/ directory) served by the app itself, under
    # `runtime` and under Daphne alike: no web server in front, no collectstatic step.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ops_api.middleware.ApiPayloadLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "ops_api.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -------------------------------------------------------------------------------------------
SQLITE_PATH = env.str("UA_SQLITE_PATH", default=str(VAR_DIR / "scheduling.sqlite3"))
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{SQLITE_PATH}")}
DATABASE_IS_POSTGRES = DATABASES["default"]["ENGINE"].endswith("postgresql")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL lets the server read while the scheduler writes; IMMEDIATE takes the write lock at BEGIN so two
    # writers queue on busy_timeout instead of failing with "database is locked" on lock upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    Path(SQLITE_PATH).parent.mkdir(parents=True, exist_ok=True)
elif DATABASE_IS_POSTGRES and env.bool("UA_DB_POOL", default=True):
    # Under ASGI every request runs its view on a fresh thread, so persistent connections never get
    # reused; a psycopg pool saves the connect (about 3 ms) on every request.
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Check each pooled connection as it is handed out (Django passes psycopg_pool's check_connection):
    # after pg_terminate_backend or a database restart the pool still holds sessions the server closed.
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("UA_DB_CONNECT_TIMEOUT", default=5)
    )
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("UA_DB_POOL_MIN", default=1),
        "max_size": env.int("UA_DB_POOL_MAX", default=20),
        # How long a request waits for a pooled connection; past it (the database is down, say) it answers
        # 503 with Retry-After.
        "timeout": env.float("UA_DB_POOL_TIMEOUT", default=10.0),
        # How long the pool retries one failed connection attempt (psycopg_pool backs off 1 s, 2 s, 4 s...)
        # before it gives up and lets the next request start a fresh one at once. Its default, 300 s, let a
        # short outage leave the pool waiting out its backoff, answering 503 after the database was back.
        "reconnect_timeout": env.float("UA_DB_POOL_RECONNECT_TIMEOUT", default=2.0),
    }
else:
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("UA_DB_CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer --------------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    # redis-py 8 reads with a 5 s socket timeout by default, and channels_redis blocks in BZPOPMIN for 5 s:
    # every idle receive would end in a TimeoutError. Give reads more time than the blocking pop.
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # group_expiry: a server process that died without leaving the push group stops receiving
            # a copy of every frame after 5 minutes (channels_redis' default is a day); live push hubs
            # renew their membership every minute (ops_api/push/hub.py).
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "group_expiry": 300},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- I18N / static --------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
# Serve straight from the finders (every installed app's static/ dir, the dashboard's included), so a
# fresh checkout needs no collectstatic; a collected STATIC_ROOT is used as well when it exists.
WHITENOISE_USE_FINDERS = True
# An absent STATIC_ROOT is the normal case (nothing collected): not worth a warning at every start.
warnings.filterwarnings("ignore", message="No directory at: ")

# --- REST framework -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["ops_api.auth.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["ops_api.auth.HasValidToken"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["ops_api.parsers.StrictJSONParser"],
    "EXCEPTION_HANDLER": "ops_api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- OpenAPI (contract §8: /api/schema/, /api/docs/; ops_api/openapi describes the operations) -------------
SPECTACULAR_SETTINGS = {
    "TITLE": "Scheduling Runtime API",
    "DESCRIPTION": "Cron jobs, heartbeats, lifecycle events, calendar, stasis queue and metrics. "
    "Every /api/v1/ endpoint except health needs a token (Authorization: Bearer or X-UA-OPS-TOKEN).",
    "VERSION": "1",
    "OAS_VERSION": "3.0.3",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    # Offline docs page: Swagger UI's assets come from the sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["ops_api.openapi.postprocess"],
    "ENUM_GENERATE_CHOICE_DESCRIPTION": False,
}

# --- Scheduling runtime flags (contract §8) --------------------------------------------------------------
UA_OPS_TOKEN = env.str("UA_OPS_TOKEN", default="")
UA_OPS_AUTH = env.str("UA_OPS_AUTH", default="on").lower()
UA_CRON_MIN_INTERVAL_SECONDS = env.int("UA_CRON_MIN_INTERVAL_SECONDS", default=60)
UA_CRON_MAX_CONCURRENCY = env.int("UA_CRON_MAX_CONCURRENCY", default=200)
UA_HEARTBEAT_MIN_INTERVAL_SECONDS = env.int("UA_HEARTBEAT_MIN_INTERVAL_SECONDS", default=60)
UA_MISFIRE_GRACE_SECONDS = env.int("UA_MISFIRE_GRACE_SECONDS", default=60)
UA_DEFAULT_TARGET_URL = env.str("UA_DEFAULT_TARGET_URL", default="")
UA_DEFAULT_TIMEZONE = env.str("UA_DEFAULT_TIMEZONE", default="UTC")
UA_SCHED_EVENT_BUS_MAX = env.int("UA_SCHED_EVENT_BUS_MAX", default=5000)
UA_SCHED_EVENT_PROJECTION_ENABLED = env.bool("UA_SCHED_EVENT_PROJECTION_ENABLED", default=True)
# `manage.py runtime` serves HTTP from this many processes on one port (PostgreSQL only; 1 serves from the
# runtime's own process, beside its scheduler and projector).
UA_SERVER_PROCESSES = env.int("UA_SERVER_PROCESSES", default=1)
UA_SCHED_PUSH_ENABLED = env.bool("UA_SCHED_PUSH_ENABLED", default=True)
UA_SCHED_PUSH_CLIENT_ENABLED = env.bool(
    "UA_SCHED_PUSH_CLIENT_ENABLED", default=env.bool("NEXT_PUBLIC_UA_SCHED_PUSH_ENABLED", default=True)
)
# Dashboard polling while push is off or lost (contract §9: calendar 30 s, heartbeats 20 s); tests shorten.
UA_DASHBOARD_CALENDAR_POLL_SECONDS = env.float("UA_DASHBOARD_CALENDAR_POLL_SECONDS", default=30.0)
UA_DASHBOARD_HEARTBEAT_POLL_SECONDS = env.float("UA_DASHBOARD_HEARTBEAT_POLL_SECONDS", default=20.0)
# Push (docs/events.md, "Push"): frames one client may have queued before it is reset; bytes the server
# may hold unsent to one client; the log-tail polling floor; how long a live projector gets to deliver an
# event before the hub reads it from the log instead.
UA_SCHED_PUSH_CLIENT_QUEUE = env.int("UA_SCHED_PUSH_CLIENT_QUEUE", default=1000)
UA_SCHED_PUSH_SEND_BUFFER_BYTES = env.int("UA_SCHED_PUSH_SEND_BUFFER_BYTES", default=256 * 1024)
UA_SCHED_PUSH_POLL_SECONDS = env.float("UA_SCHED_PUSH_POLL_SECONDS", default=1.0)
UA_SCHED_PUSH_PROJECTOR_GRACE_MS = env.int("UA_SCHED_PUSH_PROJECTOR_GRACE_MS", default=250)
UA_CALENDAR_MAX_OCCURRENCES_PER_JOB = env.int("UA_CALENDAR_MAX_OCCURRENCES_PER_JOB", default=400)
# Rendered calendar windows reused while the projection version and the clock leave them exact
# (calendar_projection/feed_cache.py); 0 turns the cache off.
UA_CALENDAR_CACHE_BYTES = env.int("UA_CALENDAR_CACHE_BYTES", default=64 * 1024 * 1024)
# How long a calendar read waits for a live projector to apply what the log holds (read your writes;
# calendar_projection/freshness.py); 0 answers at once.
UA_CALENDAR_CATCH_UP_MS = env.int("UA_CALENDAR_CATCH_UP_MS", default=500)
UA_API_MAX_BODY_BYTES = env.int("UA_API_MAX_BODY_BYTES", default=64 * 1024)
# A bulk job create (an array of up to 1,000 jobs) may be this large as a whole.
UA_API_MAX_BULK_BODY_BYTES = env.int("UA_API_MAX_BULK_BODY_BYTES", default=8 * 1024 * 1024)
# How long an event append waits for the event-log lock before failing the transaction (PostgreSQL).
UA_EVENT_LOCK_TIMEOUT_MS = env.int("UA_EVENT_LOCK_TIMEOUT_MS", default=5000)
# Safety poll of the scheduler loop: the floor under NOTIFY wake-ups.
UA_SCHEDULER_SAFETY_POLL_SECONDS = env.float("UA_SCHEDULER_SAFETY_POLL_SECONDS", default=30.0)
UA_RUN_LEASE_SECONDS = env.int("UA_RUN_LEASE_SECONDS", default=30)
# A busy session's heartbeat is retried this soon (never dropped).
UA_HEARTBEAT_BUSY_RETRY_SECONDS = env.int("UA_HEARTBEAT_BUSY_RETRY_SECONDS", default=15)
# Newest missed occurrences recorded individually per job after downtime; older ones are counted.
UA_MISSED_RUN_RECORD_LIMIT = env.int("UA_MISSED_RUN_RECORD_LIMIT", default=100)
# Metrics (contract §8): how often each process merges its buffered counts into the table (0: never in
# the background; tests flush explicitly), and whether GET /metrics may be scraped without a token.
UA_METRICS_FLUSH_SECONDS = env.float("UA_METRICS_FLUSH_SECONDS", default=1.5)
# The projector's polling floor under NOTIFY and the doorbell (SQLite polls at most every 2 s).
UA_PROJECTOR_POLL_SECONDS = env.float("UA_PROJECTOR_POLL_SECONDS", default=5.0)
# `run_projector` lowers its CPU priority by this much (os.nice; 0: unchanged): projecting a burst of new
# jobs is heavy, and on shared cores it must not slow the API and the scheduler down.
UA_PROJECTOR_NICE = env.int("UA_PROJECTOR_NICE", default=10)
UA_METRICS_PUBLIC = env.bool("UA_METRICS_PUBLIC", default=False)
# Base URL used in notification action links.
UA_PUBLIC_BASE_URL = env.str("UA_PUBLIC_BASE_URL", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("UA_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}
logging.captureWarnings(True)
