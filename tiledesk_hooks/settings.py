"""Settings for tiledesk-hooks.

Every knob a deployment turns is an environment variable (see ../shared/API.md, "Configuration");
the defaults give a working single-machine install on SQLite with django-q2's ORM broker.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, "1" if default else "0").strip().lower() in {"1", "true", "yes", "on"}


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _secret_key() -> str:
    """The key comes from the environment, else from a git-ignored file made on first start, so a
    fresh clone works without setup and restarts keep sessions valid."""
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = BASE_DIR / ".secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "django_q",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "support",
    "subscriptions",
    "automations",
    "console",
    "accounts",
    "tiledesk",
]

MIDDLEWARE = [
    # Browser dashboards on other origins may call the API (CORS_URLS_REGEX below); never /webhook/...,
    # where each automation's own `cors_origins` decides.
    "corsheaders.middleware.CorsMiddleware",
    # Then: every answer under /webhook/ (a tenant's flow writes them) gets nosniff and a
    # sandboxing Content-Security-Policy, whoever made it.
    "automations.answer_headers.WebhookAnswerHeaders",
    "django.middleware.security.SecurityMiddleware",
    # Static files (admin, browsable API, docs assets) served by the app itself, with or without DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tiledesk_hooks.urls"

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

WSGI_APPLICATION = "tiledesk_hooks.wsgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Persistent connections: a new PostgreSQL connection costs ~8 ms here, and django-q2 closes
        # expired connections before every task, so with 0 every delivery paid for one (bench/README.md).
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "600")),
        conn_health_checks=True,
    )
}
# Each API call is one transaction: a domain change and the deliveries it publishes (the outbox)
# commit together or not at all.
DATABASES["default"]["ATOMIC_REQUESTS"] = True
# Opt-in, PostgreSQL only: synchronous_commit for this process's connections, e.g. `off` for a
# worker, whose commits then stop waiting for the disk (bench/README.md: about 2x the deliveries/s
# per worker here). The price: an OS or database crash can lose that process's last few hundred
# ms of commits; for deliveries that means sending some again (same webhook-id), but an event
# published inside that process (an automation's step) could be lost. Unset: the server's setting.
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # core/sql.py's statements (the outbox, the claim, the log) bind on the server and are prepared
    # on their fifth run in a connection. Django's ORM binds on the client and never prepares, so
    # this changes nothing else. 0 turns it off (a transaction-mode pooler without prepared
    # statement support, such as PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
        int(os.environ.get("DB_PREPARE_THRESHOLD", "5")) or None
    )
if (_sync_commit := os.environ.get("DB_SYNCHRONOUS_COMMIT")) and "postgresql" in DATABASES["default"]["ENGINE"]:
    DATABASES["default"].setdefault("OPTIONS", {})["options"] = f"-c synchronous_commit={_sync_commit}"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write the same file: WAL lets readers run beside a writer,
    # IMMEDIATE transactions take the write lock up front instead of failing mid-transaction, and
    # the busy timeout makes a writer wait its turn instead of raising "database is locked".
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that a worker process started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": os.environ.get("SQLITE_TEST_NAME", str(BASE_DIR / "test-db.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Without collectstatic (development, tests) WhiteNoise finds files where runserver would.
WHITENOISE_USE_FINDERS = True

LOGIN_URL = "/admin/login/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        # DRF's JSON parser with nesting bounded and NUL/lone surrogates refused (support/parsers.py).
        "support.parsers.BoundedJSONParser",
        # Form-encoded bodies read like JSON (a field left out is left out, not `false`).
        "support.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "support.pagination.StandardPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DATETIME_FORMAT": "%Y-%m-%dT%H:%M:%S.%fZ",
    "EXCEPTION_HANDLER": "support.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

# How deeply an API request's JSON body may nest (deeper: 400).
API_MAX_JSON_DEPTH = int(os.environ.get("API_MAX_JSON_DEPTH", 64))

# --- webhooks -------------------------------------------------------------------------------
HOOKS_TIMEOUT_S = env_float("HOOKS_TIMEOUT_S", 10)
HOOKS_RETRY_DELAYS_S = [float(x) for x in env_list("HOOKS_RETRY_DELAYS_S", "5,30,120,600,1800,7200,21600,43200")]
HOOKS_ALLOW_PRIVATE_TARGETS = env_bool("HOOKS_ALLOW_PRIVATE_TARGETS")
HOOKS_OPERATOR_SELECT_TIMEOUT_S = env_float("HOOKS_OPERATOR_SELECT_TIMEOUT_S", 5)
HOOKS_SECRET_ROTATION_GRACE_S = env_float("HOOKS_SECRET_ROTATION_GRACE_S", 24 * 3600)
HOOKS_SEND_SECRET_HEADER = env_bool("HOOKS_SEND_SECRET_HEADER", True)
HOOKS_RESPONSE_BODY_LIMIT = 4096
# Encrypts tenants' stored credentials (core/crypto.py); empty derives a key from SECRET_KEY.
HOOKS_ENCRYPTION_KEY = os.environ.get("HOOKS_ENCRYPTION_KEY", "")
# How long `skipped` deliveries (made while their subscription was disabled, for replay_missing) are kept.
HOOKS_EVENT_RETENTION_DAYS = float(os.environ.get("HOOKS_EVENT_RETENTION_DAYS", 30))
# Random extra delay added to each retry, as a fraction of the delay, so that many deliveries that
# failed together do not come back together.
HOOKS_RETRY_JITTER = env_float("HOOKS_RETRY_JITTER", 0.1)
# How long a worker owns a delivery it claimed; after that a crashed worker's claim lapses.
HOOKS_CLAIM_LEASE_S = env_float("HOOKS_CLAIM_LEASE_S", HOOKS_TIMEOUT_S + 30)
# Deliveries committed together travel in queue tasks of up to this many ids, and a worker sends
# one task's deliveries side by side (one thread each) and logs them in a few statements: the
# per-task cost of the queue is paid once per batch, not per delivery (bench/throughput.py).
# One delivery per commit (light load) still makes one task, sent at once.
HOOKS_BATCH_SIZE = max(1, int(os.environ.get("HOOKS_BATCH_SIZE", "50")))

# --- routing (operator.select) ----------------------------------------------------------------
# What support.routing asks before applying its built-in choice; the domain knows only this path.
# "" makes routing purely built-in.
SUPPORT_OPERATOR_SELECTOR = "subscriptions.operator_select.OperatorSelectWebhook"

# --- auto-disable and the sweep of overdue deliveries ----------------------------------------
# A subscription whose deliveries have all failed for this long, with at least this many failed
# attempts, is disabled (with a visible reason) until someone enables it again.
HOOKS_DISABLE_AFTER_S = env_float("HOOKS_DISABLE_AFTER_S", 5 * 24 * 3600)
HOOKS_DISABLE_AFTER_FAILURES = int(os.environ.get("HOOKS_DISABLE_AFTER_FAILURES", "10"))
# How overdue a pending, unclaimed delivery must be before the retry_pending sweep re-enqueues it.
HOOKS_SWEEP_GRACE_S = env_float("HOOKS_SWEEP_GRACE_S", 60)
# Retries due within one slot this wide share one scheduled wake-up (subscriptions/queue.py).
HOOKS_RETRY_WAKE_S = env_float("HOOKS_RETRY_WAKE_S", 1.0)

# --- automations ----------------------------------------------------------------------------
AUTOMATION_MAX_RUNTIME_S = env_float("AUTOMATION_MAX_RUNTIME_S", 30)
AUTOMATION_MAX_BODY_BYTES = int(os.environ.get("AUTOMATION_MAX_BODY_BYTES", 1048576))
# Bounds of one run besides its runtime: executed steps (a full for_each of AUTOMATION_MAX_ITEMS
# items with a few steps fits), items of one for_each, and the default timeout of an
# `http_request` step (always capped by what is left of the runtime).
AUTOMATION_MAX_STEPS = int(os.environ.get("AUTOMATION_MAX_STEPS", 5000))
AUTOMATION_MAX_ITEMS = int(os.environ.get("AUTOMATION_MAX_ITEMS", 1000))
# Threads per web process running the steps after a flow's response (automations/after_answer.py).
AUTOMATION_AFTER_ANSWER_THREADS = int(os.environ.get("AUTOMATION_AFTER_ANSWER_THREADS", 4))
AUTOMATION_HTTP_TIMEOUT_S = env_float("AUTOMATION_HTTP_TIMEOUT_S", 10)
# Inbound calls per automation (DRF rate syntax: "<n>/<sec|min|hour|day>"); past it, 429.
AUTOMATION_THROTTLE_RATE = os.environ.get("AUTOMATION_THROTTLE_RATE", "600/min")
AUTOMATION_MAX_JSON_DEPTH = int(os.environ.get("AUTOMATION_MAX_JSON_DEPTH", 32))
# What a run keeps of the inbound body for display (the flow always sees all of it).
AUTOMATION_RUN_BODY_LIMIT = int(os.environ.get("AUTOMATION_RUN_BODY_LIMIT", 65536))
AUTOMATION_RUN_RETENTION_DAYS = int(os.environ.get("AUTOMATION_RUN_RETENTION_DAYS", 30))
# Age after which a run still `running` is closed as failed by the stale-run sweep (its process
# died: a worker killed with -9, a gunicorn timeout, a restart). It must outlive every legitimate run:
# - a run ends within AUTOMATION_MAX_RUNTIME_S plus one step's work: the runtime is checked before each
#   step and an http_request waits AUTOMATION_HTTP_TIMEOUT_S at most, capped by the runtime left, so
#   AUTOMATION_MAX_STEPS x AUTOMATION_HTTP_TIMEOUT_S (50,000 s) is never reached;
# - its process is killed well before that anyway: django-q2's `timeout` (runtime + 30 = 60 s) for a
#   worker, gunicorn's --timeout 60 for the web;
# - the longest legitimate wait is a worker killed together with its task: the ORM broker hands the
#   task out again `retry` (timeout + 30 = 90 s) after a worker took it, so a third attempt may still
#   be running some 3 x 90 = 270 s after the call came in.
# The default is ten times `retry` (15 minutes with the defaults), so it grows with the runtime; never less.
AUTOMATION_RUN_STALE_AFTER_S = env_float(
    "AUTOMATION_RUN_STALE_AFTER_S", max(15 * 60, 10 * (max(HOOKS_TIMEOUT_S, AUTOMATION_MAX_RUNTIME_S) + 60))
)

# --- django-q2 --------------------------------------------------------------------------------
Q_BROKER = os.environ.get("Q_BROKER", "orm")
_q_task_timeout = int(max(HOOKS_TIMEOUT_S, AUTOMATION_MAX_RUNTIME_S) + 30)
Q_CLUSTER = {
    # Separate names keep separate queues when several deployments share one Redis.
    "name": os.environ.get("Q_NAME", "tiledesk_hooks"),
    "workers": int(os.environ.get("Q_WORKERS", "4")),
    "timeout": _q_task_timeout,
    # django-q2 re-queues a task not acknowledged within `retry` seconds; it must exceed the task
    # timeout or a slow delivery would be handed to a second worker while the first still runs.
    "retry": _q_task_timeout + 30,
    "max_attempts": 3,
    "catch_up": False,
    "save_limit": 1000,
    "ack_failures": True,
    "poll": 0.1,
    "label": "Task queue",
    # Tests run tasks in-process (the same async_task and scheduler code paths, without a
    # cluster); end-to-end tests start a real qcluster instead.
    "sync": env_bool("Q_SYNC"),
}
if Q_BROKER == "orm":
    Q_CLUSTER["orm"] = "default"
elif Q_BROKER.startswith(("redis://", "rediss://", "unix://")):
    Q_CLUSTER["redis"] = Q_BROKER
else:
    raise ValueError(f"Q_BROKER must be 'orm' or a redis:// URL, not {Q_BROKER!r}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
    "loggers": {
        "subscriptions": {"level": os.environ.get("LOG_LEVEL", "INFO")},
        "automations": {"level": os.environ.get("LOG_LEVEL", "INFO")},
    },
}

# --- API docs --------------------------------------------------------------------------------------
# drf-spectacular builds the OpenAPI 3 schema from the views; the sidecar package ships Swagger UI
# and ReDoc as static files so the docs work without a CDN.
REST_FRAMEWORK["DEFAULT_SCHEMA_CLASS"] = "drf_spectacular.openapi.AutoSchema"
SPECTACULAR_SETTINGS = {
    "TITLE": "tiledesk-hooks API",
    "DESCRIPTION": "REST Hooks, operator.select and webhook automations for a Tiledesk-style support platform. "
    "Authenticate with `Authorization: Token <key>`, `Authorization: JWT <jwt>` (from `POST /auth/signin`) "
    "or HTTP basic auth (username or e-mail).",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No validator badge: Swagger UI would fetch it from validator.swagger.io.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None, "persistAuthorization": True},
    "COMPONENT_SPLIT_REQUEST": True,
    # Every catalog event as an OpenAPI 3.1 webhook: the envelope a subscriber receives.
    "OAS_VERSION": "3.1.0",
    "WEBHOOKS": "subscriptions.payload_schemas.WEBHOOKS",
    "PREPROCESSING_HOOKS": ["tiledesk_hooks.openapi.only_api_paths"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tiledesk_hooks.openapi.add_examples",
        "tiledesk_hooks.openapi.add_error_responses",
        "tiledesk_hooks.openapi.document_subscription_fields",
        "tiledesk_hooks.openapi.tag_by_resource",
    ],
}

# --- operations: health, metrics, the worker heartbeat ----------------------------------------------
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # django-q2 keeps each cluster's status (the worker heartbeat of /healthz, /metrics and the admin
    # dashboard) in a cache that the web and worker processes share. With Redis it lives in Redis;
    # with the ORM broker in this database table (made by console's migration), never in a file
    # cache: a predictable path in the shared temp dir lets another local user plant a pickle that
    # the unauthenticated /healthz would load.
    "django_q": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "hooks_status_cache"},
}
if Q_BROKER == "orm":
    Q_CLUSTER["cache"] = "django_q"
# When set, /metrics answers only `Authorization: Bearer <METRICS_TOKEN>` (else 401).
METRICS_TOKEN = os.environ.get("METRICS_TOKEN", "")
# A worker whose last heartbeat is older than this counts as gone.
HOOKS_WORKER_HEARTBEAT_MAX_AGE_S = env_float("HOOKS_WORKER_HEARTBEAT_MAX_AGE_S", 60)

# --- sign-in, Tiledesk's own paths, CORS ----------------------------------------------------------
# Tiledesk's clients sign in with an e-mail and a password (`POST /auth/signin` answers a JWT) or send
# HTTP basic auth with the e-mail; both work on every API path beside DRF tokens (accounts/).
AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "rest_framework.authentication.TokenAuthentication",
    "accounts.authentication.JWTAuthentication",
    "accounts.authentication.BasicAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]
# The schema also documents /auth/signin: operation ids stay named after the path below /api/.
SPECTACULAR_SETTINGS["SCHEMA_PATH_PREFIX"] = r"^/api/"
JWT_LIFETIME_S = env_float("JWT_LIFETIME_S", 86400)
# Failed sign-ins (any way a password is given) per client address and per account within the
# window; past either, sign-ins are refused with 429 until the window ends (accounts/throttling.py).
SIGNIN_FAILURE_WINDOW_S = env_float("SIGNIN_FAILURE_WINDOW_S", 900)
SIGNIN_MAX_FAILURES_PER_ADDRESS = int(os.environ.get("SIGNIN_MAX_FAILURES_PER_ADDRESS", "20"))
SIGNIN_MAX_FAILURES_PER_ACCOUNT = int(os.environ.get("SIGNIN_MAX_FAILURES_PER_ACCOUNT", "50"))
# Proxies (addresses or CIDRs) whose X-Forwarded-For names the client; anyone else's is ignored.
TRUSTED_PROXIES = env_list("TRUSTED_PROXIES", "")
# Where failed sign-ins are counted: Redis with the Redis broker, so that every process shares the
# counts; else each process's memory.
CACHES["signin"] = (
    {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": Q_BROKER, "KEY_PREFIX": "signin"}
    if Q_BROKER.startswith(("redis://", "rediss://", "unix://"))
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "signin"}
)

# Browser dashboards on other origins may call /api/, /auth/ and Tiledesk's paths (/{project_id}/...,
# /v3/...).
_cors_origins = env_list("CORS_ALLOWED_ORIGINS", "")
CORS_ALLOW_ALL_ORIGINS = "*" in _cors_origins
CORS_ALLOWED_ORIGINS = [origin for origin in _cors_origins if origin != "*"]
CORS_URLS_REGEX = r"^/(api|auth|v3)/|^/[0-9a-f]{24}/"
# Scripts read the secret a create hands over in this header, and when to come back after a 429.
CORS_EXPOSE_HEADERS = ["x-hook-secret", "retry-after"]
