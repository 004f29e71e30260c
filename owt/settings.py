"""Settings, read from the environment with embedded defaults.

With no environment at all the platform runs on a SQLite file, an in-memory
channel layer and a broker kept on disk (kombu's filesystem transport), so that
one command starts everything on a fresh machine. Setting ``DATABASE_URL``,
``REDIS_URL`` / ``CELERY_BROKER_URL`` and ``CHANNEL_LAYER`` runs the same code
distributed (see README, "Running distributed").
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF, UNSAFE_INLINE

from owt.secret_key import DEVELOPMENT_SECRET_KEY, read_file

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state (SQLite file, broker folders, beat schedule). Importing the settings creates
# nothing: each folder is made where it is first needed (owt.db.sqlite3, owt.celery, runplatform).
VAR_DIR = Path(os.environ.get("OWT_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# --- Secrets and deployment mode (docs/security.md) ---------------------------------
# "production" turns the secret checks (owt/checks.py) into errors that stop every server;
# "embedded" (bin/run, the tests) only warns.
OWT_ENV = os.environ.get("OWT_ENV", "embedded")
# The environment's key, else the one bin/run generated on first start, else the public
# development key (reported by the checks). Signing and encryption keys are derived from it per
# purpose (owt/keys.py). SECRET_KEY_FALLBACKS: old keys, comma-separated, that still verify and
# decrypt after a rotation until `manage.py owt_reencrypt_secrets` has moved the stored secrets.
SECRET_KEY_FILE = VAR_DIR / "secret_key"
SECRET_KEY = os.environ.get("SECRET_KEY") or read_file(SECRET_KEY_FILE) or DEVELOPMENT_SECRET_KEY
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS")
# Served over TLS (HTTPS behind a proxy or daphne's own TLS): HSTS, secure cookies, CSP (below).
OWT_TLS = env_bool("OWT_TLS", False)
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served as static files (no CDN)
    "channels",
    "owt",
    "streamengine",
    "conference",
    "egress",
    "metrics",
    "portal_stats",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "owt.errors.RequestSizeLimitMiddleware",
    "owt.staticfiles.WhiteNoiseMiddleware",  # WhiteNoise's, async-capable (no thread hop per request)
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "owt.urls"
ASGI_APPLICATION = "owt.asgi.application"
WSGI_APPLICATION = "owt.wsgi.application"

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

# --- Database -----------------------------------------------------------------
DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'owt.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or DEFAULT_SQLITE_URL,
        # Kept open between requests by each HTTP pool thread (owt/http.py): opening a
        # PostgreSQL connection costs more than a management request; checked before reuse.
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Django's backend, plus: the file's folder (var/ by default) is made on first connect.
    DATABASES["default"]["ENGINE"] = "owt.db.sqlite3"
    # Several processes (portal, worker) share the file: wait for locks instead of failing.
    # synchronous=NORMAL: in WAL mode a commit no longer waits for an fsync (5-10 ms here, under
    # the write lock: it capped POST tokens near 100/s); a crash of the process loses nothing, a
    # power cut the last commits, never the file's consistency (sqlite.org/pragma.html#pragma_synchronous).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;",
        }
    )
    # A file, not shared-cache memory: concurrency tests then see real SQLite locking (waits, not errors).
    DATABASES["default"]["TEST"] = {
        "NAME": str(VAR_DIR / f"test-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.sqlite3")
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Threads of a portal process that run HTTP requests (owt/http.py): each keeps its database
# connection for DB_CONN_MAX_AGE seconds; more concurrent requests than this wait for one.
OWT_HTTP_THREADS = int(os.environ.get("OWT_HTTP_THREADS", "16"))

# --- Time ---------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media files ---------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "staticfiles"))  # made by collectstatic / runplatform
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # Where finished recordings are kept (docs/media-jobs.md). By default the folder the media
    # worker writes into, MEDIA_ROOT/recordings (nothing to copy); another backend, e.g.
    # django-storages' S3Storage, receives each file when its recording ends.
    "recordings": {
        "BACKEND": os.environ.get("RECORDINGS_STORAGE_BACKEND", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(os.environ.get("RECORDINGS_STORAGE_OPTIONS") or "{}")
        or {"location": str(MEDIA_ROOT / "recordings")},
    },
}
WHITENOISE_USE_FINDERS = True

# --- Request limits -------------------------------------------------------------
# Bodies larger than this are refused with 413 in the API's own error format.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("MAX_REQUEST_BODY_BYTES", str(2 * 1024 * 1024)))

# Which error envelope answers a request refused before it reaches a view, by URL prefix.
API_ERROR_FORMATS = {
    "/v1/": "owt.errors.OWT_ERRORS",
    "/v1.1/": "owt.errors.OWT_ERRORS",
    "/services": "owt.errors.OWT_ERRORS",
    "/metrics/v1/": "metrics.errors.ERROR_FORMAT",
    "/portal/": "portal_stats.errors.ERROR_FORMAT",
    "/egress/": "egress.errors.ERROR_FORMAT",
}

# --- Channels -----------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
CHANNEL_LAYER = os.environ.get("CHANNEL_LAYER") or ("redis" if REDIS_URL else "memory")
if CHANNEL_LAYER == "redis":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8's default 5 s socket timeout equals channels_redis' 5 s blocking pop:
            # idle receives would fail with "Timeout reading", so allow longer reads.
            "CONFIG": {
                "hosts": [
                    {
                        "address": os.environ.get("CHANNEL_REDIS_URL", REDIS_URL or "redis://127.0.0.1:6379/1"),
                        "socket_timeout": 30,
                    }
                ]
            },
        }
    }
else:
    # Only reaches consumers in this process: the embedded media node runs in the portal's loop.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_DIR = VAR_DIR / "broker"
# "localhost" only names the machine whose folder holds the queue (kombu wants a host name).
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or REDIS_URL or "filesystem://localhost/"
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # memory:// does not cross processes; a folder on disk does, with no server to install.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        # The transport polls the folder; the default (1 s) would add a second to every task.
        "polling_interval": 0.05,
    }
# These folders (and a file:// result backend's) are made by owt.celery when Celery is configured.
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND") or REDIS_URL or f"file://{VAR_DIR / 'celery-results'}"
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Data workers take a few messages at a time (with prefetch 1 over AMQP every task waits a
# delivery round trip, measured at ~80 ms); media workers run long jobs and are started with
# --prefetch-multiplier 1 so a job never waits behind another (README, runplatform).
CELERY_WORKER_PREFETCH_MULTIPLIER = int(os.environ.get("CELERY_WORKER_PREFETCH_MULTIPLIER", "4"))
CELERY_TASK_SOFT_TIME_LIMIT = int(os.environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "3600"))
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 60
CELERY_TASK_DEFAULT_QUEUE = "data"
# Routes name real task modules only. Long media jobs (recording, egress, transcoding) go to
# "media" so they never wait behind (or starve) quick data jobs: give each media task module a
# {"queue": "media"} route here when it is added. Everything else runs on "data".
CELERY_TASK_ROUTES = {
    "owt.ping": {"queue": "data"},
    "streamengine.tasks.run_media_job": {"queue": "media"},
    "metrics.tasks.*": {"queue": "data"},
    "portal_stats.tasks.*": {"queue": "data"},
    "streamengine.tasks.*": {"queue": "data"},
    "egress.tasks.*": {"queue": "data"},
}
CELERY_TIMEZONE = "UTC"
# Every periodic job, in one place (run by exactly one `celery beat`).
CELERY_BEAT_SCHEDULE = {
    # The viewer-stats aggregator is the beat schedule's job, not the request path's.
    "portal-stats-aggregate-minutes": {
        "task": "portal_stats.tasks.aggregate_minutes",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "portal-stats-purge-expired": {"task": "portal_stats.tasks.purge_expired", "schedule": 3600.0},
    # Raw peermetrics stats retention and stale-call cleanup.
    "metrics-stats-retention": {
        "task": "metrics.tasks.stats_purge_expired",
        "schedule": 3600.0,
        "options": {"queue": "data"},
    },
    "metrics-close-stale-conferences": {
        "task": "metrics.tasks.conferences_close_stale",
        "schedule": 3600.0,
        "options": {"queue": "data"},
    },
    # Room tokens never consumed would otherwise stay in the database forever.
    "streamengine-purge-expired-tokens": {"task": "streamengine.tasks.purge_expired_tokens", "schedule": 3600.0},
    # Media jobs whose worker died (lapsed lease) are restarted or failed; running workers reap too.
    "streamengine-reap-media-jobs": {
        "task": "streamengine.tasks.reap_media_jobs",
        "schedule": 2.0,
        "options": {"expires": 2},
    },
    # Egress tasks no media worker took in time end TIMEOUT.
    "egress-time-out-queued": {"task": "egress.tasks.time_out_queued", "schedule": 5.0, "options": {"expires": 5}},
}
CELERY_RESULT_EXPIRES = 24 * 3600

# --- REST ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "EXCEPTION_HANDLER": "owt.errors.default_exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OWT media platform API",
    "DESCRIPTION": (
        "OWT management and stream-engine APIs, egress tasks, peermetrics ingestion and "
        "dashboard, and Viblast-style P2P CDN statistics."
    ),
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI and ReDoc from drf-spectacular-sidecar's static files: they work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Media engine ---------------------------------------------------------------
# aiortc falls back to a public STUN server when given none: always pass this list.
# JSON list of RTCIceServer dicts, e.g. [{"urls": "stun:stun.example.org:3478"}].
ICE_SERVERS_JSON = os.environ.get("ICE_SERVERS", "[]")
# Host addresses the engine offers as ICE candidates; empty = the machine's interfaces.
MEDIA_HOST_ADDRESSES = env_list("MEDIA_HOST_ADDRESSES")
MEDIA_NODE_EMBEDDED = env_bool("MEDIA_NODE_EMBEDDED", CHANNEL_LAYER == "memory")
MEDIA_NODE_HEARTBEAT_SECONDS = float(os.environ.get("MEDIA_NODE_HEARTBEAT_SECONDS", "5"))
# The SFU forwards the publishers' RTP packets (rewritten per subscriber); 0: their frames,
# packetized again per subscriber (the former path, kept as a fallback).
MEDIA_FORWARD_RTP = env_bool("MEDIA_FORWARD_RTP", True)
# Receive buffer of the node's UDP sockets (bytes; 0 = aioice's 256 KiB):
# room for the publishers' packets while the node is busy. The kernel caps it at
# net.core.rmem_max (raise that sysctl in production).
MEDIA_UDP_RECEIVE_BUFFER_BYTES = int(os.environ.get("MEDIA_UDP_RECEIVE_BUFFER_BYTES", str(4 * 1024 * 1024)))

# --- OWT ------------------------------------------------------------------------
# Where clients reach this portal; written into room tokens ("host" and "secure").
OWT_PORTAL_HOST = os.environ.get("OWT_PORTAL_HOST", "127.0.0.1:8000")
OWT_PORTAL_SECURE = env_bool("OWT_PORTAL_SECURE", OWT_TLS)
OWT_TOKEN_LIFETIME_SECONDS = int(os.environ.get("OWT_TOKEN_LIFETIME_SECONDS", "180"))
# The landing page's checks beyond /health/'s, by the apps that own them (owt imports no app).
OWT_STATUS_CHECKS = {"media_nodes": "streamengine.selectors.media_nodes_health"}

# --- Logging ------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "aioice": {"level": "WARNING"},
        "aiortc": {"level": "WARNING"},
        "daphne": {"level": "WARNING"},
    },
}

# --- conference: OWT management API (MAuth) ------------------------------------------
# MAuth replay protection: a header is accepted only within this many seconds of our clock,
# and each (service, timestamp, cnonce) once; the cache must be shared by all portal
# processes (Redis when REDIS_URL is set; per-process memory otherwise).
OWT_MAUTH_WINDOW_SECONDS = float(os.environ.get("OWT_MAUTH_WINDOW_SECONDS", "300"))
OWT_MAUTH_REPLAY_CACHE = "mauth"
# Who the services (tenants) are: a callable (service_id) -> (service, plain key) | None.
# owt.mauth sits below the apps, so the app that owns the services plugs its lookup in here.
OWT_MAUTH_CREDENTIALS = "conference.selectors.mauth_credentials"
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "mauth": (
        {
            "BACKEND": "owt.caches.RedisCache",  # Django's, keeping its client (owt/caches.py)
            "LOCATION": os.environ.get("MAUTH_REDIS_URL", REDIS_URL),
        }
        if REDIS_URL
        else {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "owt-mauth",
            "OPTIONS": {"MAX_ENTRIES": 200000},
        }
    ),
}

# --- metrics (peermetrics ingestion) ----------------------------------------------------
# CORS for the SDK's public routes (browsers on any origin post there; no credentials).
MIDDLEWARE.insert(0, "metrics.middleware.SdkCorsMiddleware")
METRICS_STATS_INTERVAL_MS = int(os.environ.get("METRICS_STATS_INTERVAL_MS", "10000"))
METRICS_STATS_RETENTION_DAYS = int(os.environ.get("METRICS_STATS_RETENTION_DAYS", "30"))
METRICS_CONFERENCE_TIMEOUT_HOURS = float(os.environ.get("METRICS_CONFERENCE_TIMEOUT_HOURS", "4"))
METRICS_TOKEN_LIFETIME_SECONDS = int(os.environ.get("METRICS_TOKEN_LIFETIME_SECONDS", "86400"))
METRICS_INIT_TOKEN_SECRET = os.environ.get("METRICS_INIT_TOKEN_SECRET", "")
METRICS_SESSION_TOKEN_SECRET = os.environ.get("METRICS_SESSION_TOKEN_SECRET", "")
# "bulk" (group commit) or "direct" (one INSERT per request; the benchmark's baseline).
METRICS_STATS_INGEST = os.environ.get("METRICS_STATS_INGEST", "bulk")

# --- streamengine: sample pages ---------------------------------------------------------
# /demo/quick creates rooms and tokens without MAuth: allowed for staff sessions, or for
# everyone when DEBUG or OWT_DEMO_OPEN is on (a developer's machine, the browser tests).
OWT_DEMO_OPEN = env_bool("OWT_DEMO_OPEN", False)

# --- portal_stats (Viblast P2P statistics) ------------------------------------------------
# Each PORTAL_STATS_<NAME> variable (an integer: counts, or seconds for ages, spans and
# retentions) overrides one of portal_stats.conf.DEFAULTS, e.g. PORTAL_STATS_RAW_RETENTION=86400.
PORTAL_STATS = {
    name.removeprefix("PORTAL_STATS_"): int(value)
    for name, value in os.environ.items()
    if name.startswith("PORTAL_STATS_")
}

# --- Hardening: input limits, throttles, health details (owt.parsers, owt.throttling) -------
# Every DRF API parses JSON with a nesting limit and refuses NUL and lone surrogates in strings.
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = ["owt.parsers.JSONParser"]
MAX_JSON_DEPTH = int(os.environ.get("MAX_JSON_DEPTH", "64"))
# Paths and query strings with NUL or lone surrogates are refused before any view.
MIDDLEWARE.insert(MIDDLEWARE.index("owt.errors.RequestSizeLimitMiddleware") + 1, "owt.errors.RequestTextMiddleware")
# Throttle history lives here: Redis when REDIS_URL is set, so every portal counts together.
OWT_THROTTLE_CACHE = "throttle"
CACHES["throttle"] = (
    {"BACKEND": "owt.caches.RedisCache", "LOCATION": REDIS_URL}
    if REDIS_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "owt-throttle"}
)
# How many proxies in front of the portals append to X-Forwarded-For; 0 = the socket's peer
# address is the client (a client-sent X-Forwarded-For is never trusted).
REST_FRAMEWORK["NUM_PROXIES"] = int(os.environ.get("NUM_PROXIES", "0"))
# Rates "N/s", "N/m", "N/h" or "N/d"; an empty variable turns that limit off. DRF keeps one
# timestamp per request counted, so busy limits use short periods.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
    scope: os.environ.get(variable, default) or None
    for scope, variable, default in (
        ("owt_service", "THROTTLE_OWT_SERVICE", "100/s"),
        ("owt_mauth_failure", "THROTTLE_OWT_MAUTH_FAILURE", "30/m"),
        ("metrics_initialize", "THROTTLE_METRICS_INITIALIZE", "60/m"),
        ("signaling_login", "THROTTLE_SIGNALING_LOGIN", "60/m"),
        ("admin_login_failure", "THROTTLE_ADMIN_LOGIN_FAILURE", "10/h"),
    )
}
# /health/ shows why a check failed only to staff sessions or with "Authorization: Bearer <token>".
HEALTH_TOKEN = os.environ.get("HEALTH_TOKEN", "")

# SIP calls (docs/sip.md): where each media worker's PJSIP listens (port 0: any free one; a
# fixed port takes one worker process per host), the address written into SIP and SDP when
# the bound one is not what peers reach, and how long a dial-out rings (OWT: about 88 s).
SIP_BIND_ADDRESS = os.environ.get("SIP_BIND_ADDRESS", "0.0.0.0")
SIP_PORT = int(os.environ.get("SIP_PORT", "0"))
SIP_PUBLIC_ADDRESS = os.environ.get("SIP_PUBLIC_ADDRESS", "")
SIP_NO_ANSWER_SECONDS = float(os.environ.get("SIP_NO_ANSWER_SECONDS", "88"))
# Dial-in: a room with a SIP account (its ``sip.username``) or a number here gets a SIP agent
# job that registers with the room's sipServer and answers calls to that user; the mapping
# {"<user or number>": "<room id>"} leads calls to other users into rooms (JSON).
SIP_AGENT_AUTOSTART = env_bool("SIP_AGENT_AUTOSTART", True)
SIP_DIAL_IN_ROOMS = json.loads(os.environ.get("SIP_DIAL_IN_ROOMS") or "{}")

# --- streamengine: media jobs (recordings, streaming-outs, streaming-ins; docs/media-jobs.md) -----
# A worker renews a job's lease every heartbeat; a lease not renewed for LEASE seconds means
# the worker is gone: the job is offered again (up to MAX_ATTEMPTS runs) or failed.
MEDIA_JOB_HEARTBEAT_SECONDS = float(os.environ.get("MEDIA_JOB_HEARTBEAT_SECONDS", "0.5"))
MEDIA_JOB_LEASE_SECONDS = float(os.environ.get("MEDIA_JOB_LEASE_SECONDS", "5"))
MEDIA_JOB_MAX_ATTEMPTS = int(os.environ.get("MEDIA_JOB_MAX_ATTEMPTS", "3"))
# CPU cores the jobs of one host may hold (each job kind has a cost: a passthrough recording
# ~0.05, a transcoded output ~1); above it a worker leaves new jobs to others.
MEDIA_JOB_CPU_BUDGET = float(os.environ.get("MEDIA_JOB_CPU_BUDGET", str(round((os.cpu_count() or 1) * 0.9, 2))))
MEDIA_JOB_RETRY_SECONDS = float(os.environ.get("MEDIA_JOB_RETRY_SECONDS", "2"))
MEDIA_JOB_PENDING_RESEND_SECONDS = float(os.environ.get("MEDIA_JOB_PENDING_RESEND_SECONDS", "10"))
MEDIA_JOB_MAX_SECONDS = int(os.environ.get("MEDIA_JOB_MAX_SECONDS", str(24 * 3600)))
# Modules whose JobRunner kinds a media worker runs besides the engine's own (apps above the
# engine register theirs here: the engine never imports them).
MEDIA_JOB_MODULES = ["egress.jobs"]

# --- Egress (docs/egress.md) --------------------------------------------------
EGRESS_REGION = os.environ.get("EGRESS_REGION", "local")  # the {region} of filename patterns
# A task's maximum duration (payload max_duration_s may ask less): it then ends TIMEOUT.
EGRESS_MAX_DURATION_SECONDS = int(os.environ.get("EGRESS_MAX_DURATION_SECONDS", str(MEDIA_JOB_MAX_SECONDS)))
# A task no media worker took within this long ends TIMEOUT (no worker had the CPU for it).
EGRESS_QUEUE_TIMEOUT_SECONDS = float(os.environ.get("EGRESS_QUEUE_TIMEOUT_SECONDS", "60"))
EGRESS_WEBHOOK_ATTEMPTS = int(os.environ.get("EGRESS_WEBHOOK_ATTEMPTS", "6"))
EGRESS_WEBHOOK_BACKOFF_SECONDS = float(os.environ.get("EGRESS_WEBHOOK_BACKOFF_SECONDS", "15"))
# Short: a delivery holds a data worker while it waits (the retries are spaced out instead).
EGRESS_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("EGRESS_WEBHOOK_TIMEOUT_SECONDS", "5"))
# Streaming-ins pull URLs the API caller names, so the worker must not become a way into the
# private network (SSRF): only these schemes ("file" reads the worker's disk: off unless
# listed), and hosts resolving to private/loopback/link-local addresses only when allowed
# (tests and a local demo: STREAMING_IN_ALLOW_PRIVATE=1).
STREAMING_IN_SCHEMES = env_list("STREAMING_IN_SCHEMES", "rtsp,rtsps,rtmp,rtmps,http,https")
STREAMING_IN_ALLOW_PRIVATE = env_bool("STREAMING_IN_ALLOW_PRIVATE")
# How long POST /streaming-ins waits for the stream to be published (OWT waits ~85 s).
STREAMING_IN_WAIT_SECONDS = float(os.environ.get("STREAMING_IN_WAIT_SECONDS", "15"))
# Opening and reading the source give up after this long without data; a source that dropped
# is reconnected with backoff for up to RECONNECT seconds before the job fails.
STREAMING_IN_TIMEOUT_SECONDS = float(os.environ.get("STREAMING_IN_TIMEOUT_SECONDS", "10"))
STREAMING_IN_RECONNECT_SECONDS = float(os.environ.get("STREAMING_IN_RECONNECT_SECONDS", "60"))
# A room's views are mixed (MCU, docs/mixing.md) by a mixer job per view that starts when the
# first user joins and ends a few seconds after the last one left. Off: no mixed streams.
MIXER_AUTOSTART = env_bool("MIXER_AUTOSTART", True)
MIXER_IDLE_SECONDS = float(os.environ.get("MIXER_IDLE_SECONDS", "3"))
# Where a media job's peer joins its room: the portal's JSON-frame signaling endpoint.
OWT_INTERNAL_SIGNALING_URL = os.environ.get(
    "OWT_INTERNAL_SIGNALING_URL", f"{'wss' if OWT_PORTAL_SECURE else 'ws'}://{OWT_PORTAL_HOST}/ws/signaling/"
)

# --- streamengine: signaling limits -----------------------------------------------------
# A longer signaling frame (in characters) gets the "Invalid frame" error ack unparsed; an
# SDP offer with its candidates is a few KB.
SIGNALING_MAX_FRAME_LENGTH = int(os.environ.get("SIGNALING_MAX_FRAME_LENGTH", str(64 * 1024)))
# Web pages allowed to open the signaling socket (scheme://host[:port], comma-separated); "*"
# (the default, like OWT) allows any. Clients that send no Origin (native SDKs) are always let in.
SIGNALING_ALLOWED_ORIGINS = env_list("SIGNALING_ALLOWED_ORIGINS", "*")
# Engine.IO transports of /socket.io/ (the OWT JS SDK's framing). Polling, then the
# WebSocket upgrade, is what unmodified SDK clients do; polling needs sticky sessions behind a
# load balancer (docs/signaling.md), "websocket" alone suits clients that open it directly.
SOCKETIO_TRANSPORTS = env_list("SOCKETIO_TRANSPORTS", "polling,websocket")

# --- Served over TLS (OWT_TLS=1; docs/security) -----------------------------------------
# TLS ends at a proxy that sets X-Forwarded-Proto (and drops a client's own), or at daphne.
# Off (embedded HTTP), none of this is set and the pages work on plain http://.
if OWT_TLS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]  # load balancers probe over plain HTTP
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    CSRF_COOKIE_HTTPONLY = True  # no page script reads it (forms carry the token)
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "csp.middleware.CSPMiddleware"
    )
    INSTALLED_APPS.append("csp")
    # The admin, the demo and the dashboard: everything from this origin, scripts only from
    # files or with the page's nonce; inline <style> blocks stay allowed; signaling WebSockets
    # to the portal host written into room tokens.
    CONTENT_SECURITY_POLICY = {
        "DIRECTIVES": {
            "default-src": [SELF],
            "script-src": [SELF, NONCE],
            "style-src": [SELF, UNSAFE_INLINE],
            "img-src": [SELF, "data:"],
            "connect-src": [SELF, f"wss://{OWT_PORTAL_HOST}"],
            "object-src": [NONE],
            "base-uri": [SELF],
            "form-action": [SELF],
            "frame-ancestors": [NONE],
            "upgrade-insecure-requests": True,
        }
    }
# SameSite=Lax (Django's default, kept explicit): no session or CSRF cookie on cross-site posts.
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
