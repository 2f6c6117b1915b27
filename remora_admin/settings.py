"""Settings, all read from the environment.

Each helper below raises ImproperlyConfigured naming the variable when its value is bad, so a
typo in the environment stops the process at start-up instead of misbehaving later.
"""

import copy
import logging
import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("REMORA_VAR_DIR", BASE_DIR / "var"))

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of true/false/1/0/yes/no/on/off, not {raw!r}.")


def env_int(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}.") from None
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and at most {maximum}" if maximum is not None else ""
        raise ImproperlyConfigured(f"{name} must be at least {minimum}{upper}, not {value}.")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_from_env(name: str, default: str) -> dict:
    raw = os.environ.get(name) or default
    try:
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # dj-database-url raises several types for bad URLs
        raise ImproperlyConfigured(f"{name} is not a usable database URL: {exc}") from None
    engine = config.get("ENGINE", "")
    if engine.endswith("sqlite3"):
        # IMMEDIATE takes the write lock at BEGIN, so concurrent audit writers queue instead of
        # failing on a stale snapshot of the chain head.
        config["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
        config["CONN_MAX_AGE"] = 0
    elif engine.endswith("mysql"):
        config.setdefault("OPTIONS", {}).update(
            {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"}
        )
        config["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
    else:
        raise ImproperlyConfigured(
            f"{name} must point to MariaDB/MySQL (mysql://) or SQLite (sqlite:///), not {engine}."
        )
    return config


def redis_url_from_env(name: str, default: str) -> str:
    raw = os.environ.get(name) or default
    parts = urlsplit(raw)
    if parts.scheme not in {"redis", "rediss", "unix"}:
        raise ImproperlyConfigured(
            f"{name} must be a redis://, rediss:// or unix:// URL, not {raw!r}."
        )
    return raw


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it to a long random string, or set DEBUG=true for a "
            "development-only default."
        )
    SECRET_KEY = "django-insecure-remora-development-only-key-do-not-use-in-production"  # noqa: S105
elif len(SECRET_KEY) < 50 and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long in production.")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list the host names this console is served on.")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "remora_admin.admin_site.RemoraAdminSiteConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "axes",
    "django_rq",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "remora_admin",
    "remora_admin.audit",
    "remora_admin.access",
    "hosts",
    "jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # static files, hashed and compressed
    "remora_admin.middleware.DatabaseUnavailableMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "remora_admin.access.middleware.SessionLifetimeMiddleware",
    "remora_admin.access.middleware.SecondFactorEnrolmentMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "remora_admin.urls"
WSGI_APPLICATION = "remora_admin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csp",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "remora_admin.access.context_processors.access",
            ],
        },
    },
]

if not os.environ.get("DATABASE_URL"):
    try:
        VAR_DIR.mkdir(parents=True, exist_ok=True)  # the default SQLite file lives here
    except OSError as exc:
        raise ImproperlyConfigured(
            f"REMORA_VAR_DIR ({VAR_DIR}) cannot be created: {exc.strerror}. Point it at a "
            "writable directory, or set DATABASE_URL."
        ) from None
DATABASES = {
    "default": database_from_env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'remora.sqlite3'}"),
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = redis_url_from_env("REDIS_URL", "redis://127.0.0.1:6379/0")
RQ_QUEUES = {
    "default": {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 3600},
}

# The REST API (/api/): personal tokens (Authorization: Bearer ...) for scripts and the
# `remora` command line, the session for the browsable pages. Every view asks the one policy.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "remora_admin.api.auth.TokenAuthentication",
        "remora_admin.api.auth.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["remora_admin.api.auth.SignedInWithScope"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "remora_admin.api.schema.RemoraSchema",
    "DEFAULT_PAGINATION_CLASS": "remora_admin.api.pagination.Pages",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "remora_admin.api.errors.handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Remora Admin API",
    "DESCRIPTION": "Hosts, services, growth phases, recipes, runs, schedules, alerts and the "
    "audit log of the Remora stack. Authenticate with a personal token from the console "
    "(Access > API tokens): `Authorization: Bearer <token>`.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["remora_admin.api.auth.SignedInWithScope"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    "ENUM_NAME_OVERRIDES": {
        "ServiceKindEnum": "hosts.models.ServiceKind",
        "ServiceStateEnum": "hosts.models.Service.State",
        "RunStateEnum": "jobs.models.RunState",
        "AlertKindEnum": "jobs.models.Alert.Kind",
    },
}
# Personal API tokens: the longest life one may have; one that may act in a restricted zone
# (created from a session verified with the second factor) lives at most this many hours.
REMORA_TOKEN_MAX_DAYS = env_int("REMORA_TOKEN_MAX_DAYS", 365, minimum=1)
REMORA_TOKEN_RESTRICTED_HOURS = env_int("REMORA_TOKEN_RESTRICTED_HOURS", 12, minimum=1, maximum=12)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

# Sessions end after this long idle, and in any case this long after sign-in.
REMORA_SESSION_IDLE_MINUTES = env_int("REMORA_SESSION_IDLE_MINUTES", 30, minimum=1)
REMORA_SESSION_MAX_HOURS = env_int("REMORA_SESSION_MAX_HOURS", 12, minimum=1)
SESSION_COOKIE_AGE = REMORA_SESSION_MAX_HOURS * 3600
# Sensitive actions (grants, deactivation, trusting host keys) ask for the password again when
# it was not entered within this many minutes.
REMORA_SUDO_MINUTES = env_int("REMORA_SUDO_MINUTES", 10, minimum=1)
# The dashboard warns when a restricted zone has more people able to operate it than this.
REMORA_RESTRICTED_CONTROLLER_LIMIT = env_int("REMORA_RESTRICTED_CONTROLLER_LIMIT", 4, minimum=1)

# SSH private keys are encrypted with this Fernet key (comma-separated: newest first, older
# ones still decrypt during a rotation). Separate from SECRET_KEY.
REMORA_CREDENTIALS_KEYS = env_list("REMORA_CREDENTIALS_KEY", [])
if not REMORA_CREDENTIALS_KEYS and DEBUG:
    # Development only: a fixed key so `make run` works out of the box.
    REMORA_CREDENTIALS_KEYS = ["ZGV2ZWxvcG1lbnQtb25seS1rZXktZG8tbm90LXVzZTA="]
# Jobs: stored output per run is capped at this many bytes (the rest is counted, not kept).
REMORA_RUN_OUTPUT_LIMIT = env_int("REMORA_RUN_OUTPUT_LIMIT", 64 * 1024 * 1024, minimum=1024)
# A service is marked failed, and alerted on, after this many health checks in a row failed.
REMORA_CHECK_FAILURES = env_int("REMORA_CHECK_FAILURES", 3, minimum=1, maximum=100)
# A running run whose worker has not reported for this long is marked lost.
REMORA_RUN_HEARTBEAT_TIMEOUT = env_int("REMORA_RUN_HEARTBEAT_TIMEOUT", 30, minimum=5)
# Runs at once per `manage.py remora_worker`: worker processes under one supervisor (1: one
# worker in the command's own process). Each is a whole Django process (jobs/pool.py).
REMORA_WORKER_CONCURRENCY = env_int("REMORA_WORKER_CONCURRENCY", 1, minimum=1, maximum=256)
# The audit log's copy off the box: file:/path (append-only; verification compares with it),
# syslog (local), syslog:HOST:PORT (remote, UDP) or none. Production: a file on storage the
# database's owner cannot rewrite, or a remote syslog.
REMORA_AUDIT_SINK = os.environ.get("REMORA_AUDIT_SINK", f"file:{VAR_DIR / 'audit-sink.jsonl'}")
# Archives of pruned audit events (remora_admin/audit/retention.py): keep a copy elsewhere too.
REMORA_AUDIT_ARCHIVE_DIR = os.environ.get(
    "REMORA_AUDIT_ARCHIVE_DIR", str(VAR_DIR / "audit-archives")
)
# Where `make lab` records its hosts; `make run` points the demo inventory at them (lab_demo.py).
REMORA_LAB_STATE_FILE = os.environ.get("REMORA_LAB_STATE_FILE", "/run/remora-lab/state.json")

# E-mail (alerts, disabled schedules): SMTP at REMORA_SMTP_HOST, by default the machine's own
# mail server (localhost:25) in production; in development, without a host, mail is written to
# standard output instead of being sent.
DEFAULT_FROM_EMAIL = os.environ.get("REMORA_MAIL_FROM", "remora-admin@localhost")
_SMTP_HOST = os.environ.get("REMORA_SMTP_HOST", "" if DEBUG else "localhost")
MAILERS = {
    "default": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {
            "host": _SMTP_HOST,
            "port": env_int("REMORA_SMTP_PORT", 25, minimum=1, maximum=65535),
            "use_tls": env_bool("REMORA_SMTP_STARTTLS", False),
            "username": os.environ.get("REMORA_SMTP_USER", ""),
            "password": os.environ.get("REMORA_SMTP_PASSWORD", ""),
            "timeout": 10,
        },
    }
    if _SMTP_HOST
    else {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
}

# Login lockout (django-axes): after this many failures for one user name, wait the cool-off.
AXES_FAILURE_LIMIT = env_int("REMORA_LOCKOUT_FAILURES", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("REMORA_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
OTP_TOTP_ISSUER = "Remora Admin"

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "staticfiles"))
# Production serves collected files with hashed names through WhiteNoise (deploy/); DEBUG
# (development, tests) serves them from the source folders, with no collectstatic needed.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# Development: WhiteNoise finds files in the source folders as they change (no STATIC_ROOT).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# Content Security Policy: scripts and styles only from this origin or with the per-request
# nonce; nothing inline without it, no eval.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# Cookies and transport: strict in production, relaxed only for local development over HTTP.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "WARN", "ERROR", "CRITICAL")
LOG_LEVEL = os.environ.get("LOG_LEVEL", "").strip().upper() or "INFO"
if LOG_LEVEL not in LOG_LEVELS:
    raise ImproperlyConfigured(
        f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}, not {os.environ['LOG_LEVEL']!r}."
    )


class ClientErrorsInOneLine(logging.Filter):
    """A 4xx answer (403 Permission denied, 400 Bad request) is the client's doing, not a bug:
    Django logs it with the exception attached, which prints a traceback. Log one line instead,
    with the exception's message (a denial's reason) in place of the traceback."""

    def filter(self, record: logging.LogRecord) -> logging.LogRecord:
        status = getattr(record, "status_code", None)
        if not (isinstance(status, int) and 400 <= status < 500 and record.exc_info):
            return record
        exc = record.exc_info[1] if isinstance(record.exc_info, tuple) else record.exc_info
        record = copy.copy(record)  # the other handlers keep the original
        # Escaped like Django escapes a logged path: no newline or control character of the
        # client's (a Host header, say) can start a forged line.
        reason = str(exc).encode("unicode_escape").decode("ascii") if exc is not None else ""
        record.msg = record.getMessage() + (f" ({reason})" if reason else "")
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        return record


LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "filters": {"client_errors_in_one_line": {"()": ClientErrorsInOneLine}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["client_errors_in_one_line"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    # Django's own loggers would print a second copy through their default handler.
    "loggers": {
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "axes": {"level": "WARNING"},
    },
}
