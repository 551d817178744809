"""Attest settings. Every value comes from the environment; .env.example documents each one."""

import hashlib
import secrets
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from config.env import (
    env_bool,
    env_choice,
    env_database,
    env_email,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _local_secret_key() -> str:
    """A key kept under var/ so a local demo keeps its sessions across restarts."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set (only DEBUG=true makes one up)")
    SECRET_KEY = _local_secret_key()

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "axes",
    "csp",
    "django_filters",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "config.apps.AttestConfig",
    "audit",
    "inventory",
    "reviews",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    # Serves static files from gunicorn in production; Django's own serving needs DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last: it turns a refused sign-in of a locked account into the lockout page.
    "axes.middleware.AxesMiddleware",
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
    # The queue's rows alone (config/jinja2.py says why), looked up by this engine's name.
    {
        "BACKEND": "django.template.backends.jinja2.Jinja2",
        "NAME": "jinja2",
        "DIRS": [BASE_DIR / "templates" / "jinja2"],
        "APP_DIRS": False,
        "OPTIONS": {"environment": "config.jinja2.environment"},
    },
]

# Without DATABASE_URL Attest runs on SQLite under var/: the embedded default of `make demo`.
# Tests and production use PostgreSQL.
DATABASES = {
    "default": env_database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'attest.sqlite3'}"),
}
_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = _CONN_MAX_AGE
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTHENTICATION_BACKENDS = [
    # First: a locked account is refused before its password is looked at.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Failed sign-ins in a row lock the username, whether or not such a user exists (so the answer
# tells nobody which accounts exist), and the address they came from, for the minutes below;
# audit.signals records the lockout.
AXES_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("LOGIN_LOCKOUT_MINUTES", 30, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# The lockout ends when it said it would, however often someone keeps trying meanwhile.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "config.lockout.locked_out"
AXES_VERBOSE = False

# Single sign-on through OpenID Connect (config.oidc), on when the issuer, the client and the
# provider's endpoints are all set; password sign-in stays for break-glass administrators.
# Endpoints are given, not discovered: Attest starts without asking the provider anything.
# Setting of mozilla-django-oidc: the variable it comes from.
_OIDC = {
    "OIDC_ISSUER": "OIDC_ISSUER",
    "OIDC_RP_CLIENT_ID": "OIDC_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET": "OIDC_CLIENT_SECRET",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "OIDC_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT": "OIDC_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT": "OIDC_USERINFO_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT": "OIDC_JWKS_ENDPOINT",
}
_oidc = {setting: env_str(variable) for setting, variable in _OIDC.items()}
OIDC_ENABLED = any(_oidc.values())
if OIDC_ENABLED:
    _missing = [_OIDC[setting] for setting, value in _oidc.items() if not value]
    if _missing:
        raise ImproperlyConfigured(f"single sign-on needs every OIDC_ variable; missing {_missing}")
    globals().update(_oidc)
    AUTHENTICATION_BACKENDS.append("config.oidc.Backend")
OIDC_PROVIDER_NAME = env_str("OIDC_PROVIDER_NAME", "SSO")
# Someone the provider vouches for who has no user here gets one with no role (false: refused).
OIDC_CREATE_USER = env_bool("OIDC_CREATE_USERS", True)
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_RP_SCOPES = "openid email"
OIDC_TIMEOUT = 10

# A session ends after SESSION_IDLE_MINUTES without a request (each request starts the count
# again), at sign-out, and when its user is deactivated (config.sessions).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 15, minimum=1)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True

# The language of e-mails, and of pages for a browser that asks for neither English nor
# Japanese; each person can switch in the page header (a cookie keeps the choice).
LANGUAGE_CODE = env_choice("LANGUAGE_CODE", "en", ("en", "ja"))
LANGUAGES = [("en", _("English")), ("ja", _("Japanese"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
# Dates as each language writes them: 2026-03-01 in English, 2026/03/01 in Japanese.
FORMAT_MODULE_PATH = ["config.formats"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_SECURE = SESSION_COOKIE_SECURE
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# HTTPS only, unless DEBUG: plain HTTP is redirected, and browsers are told to come back over
# HTTPS alone (HSTS). Behind a proxy that ends TLS, SECURE_PROXY_SSL_HEADER names the header in
# which it says so, e.g. X-Forwarded-Proto (the proxy must set it on every request).
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
_PROXY_SSL_HEADER = env_str("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_" + _PROXY_SSL_HEADER.upper().replace("-", "_"), "https") if _PROXY_SSL_HEADER else None
)
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
# Scripts and styles only from Attest's own static files: no inline script or style, no eval
# (htmx is told so in base.html), no other site, and no page of Attest inside a frame.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "form-action": ["'self'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "object-src": ["'none'"],
    },
}

# The REST API under /api/: the same roles and scoping as the pages. Service users send
# `Authorization: Token <key>`; the browser's session works too (with its CSRF token).
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "config.pagination.CursorPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 100,
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attest API",
    "DESCRIPTION": "Access reviews of AWS IAM: inventory, campaigns, decisions, remediation and "
    "the audit trail, under the same roles as the web pages.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "config.api.document_errors",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PrincipalKindEnum": "inventory.models.Principal.Kind",
        "RightKindEnum": "inventory.models.Right.Kind",
        "ItemDecisionEnum": "reviews.models.ReviewItem.Decision",
        "DecisionEnum": ["keep", "revoke", "reduce"],
    },
}

# Celery. Without CELERY_BROKER_URL tasks run in-process (the embedded default of `make demo`).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND") or None
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
if not CELERY_BROKER_URL:
    CELERY_BROKER_URL = "memory://"
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = CELERY_RESULT_BACKEND is None
# A task is acknowledged only when it has finished, and given back when its worker dies, so
# work that was committed is never lost; every task is written to be run again safely.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The key that signs audit checkpoints. Give auditors' verifiers this key, not SECRET_KEY.
AUDIT_SIGNING_KEY = (
    env_str("AUDIT_SIGNING_KEY")
    or hashlib.sha256(f"attest-audit-checkpoints:{SECRET_KEY}".encode()).hexdigest()
)

# Years that campaign evidence and audit events are kept: the date each evidence package names.
# Nothing in Attest deletes either, earlier or later; this tells those who would.
EVIDENCE_RETENTION_YEARS = env_int("EVIDENCE_RETENTION_YEARS", 7, minimum=1)

COLLECT_INTERVAL_HOURS = env_int("COLLECT_INTERVAL_HOURS", 24, minimum=0)
COLLECTION_STALE_MINUTES = env_int("COLLECTION_STALE_MINUTES", 30, minimum=1)
# A remediation task silent this long is taken over by another worker.
REMEDIATION_LEASE_SECONDS = env_int("REMEDIATION_LEASE_SECONDS", 300, minimum=5)
CELERY_BEAT_SCHEDULE = {
    "sign-audit-checkpoint": {
        "task": "audit.tasks.checkpoint",
        "schedule": timedelta(hours=1),
        "options": {"expires": 30 * 60},
    },
    "sweep-stale-collections": {
        "task": "inventory.tasks.sweep_stale_runs",
        "schedule": timedelta(minutes=5),
        "options": {"expires": 4 * 60},
    },
}
CELERY_BEAT_SCHEDULE.update(
    {
        "launch-due-campaigns": {
            "task": "reviews.tasks.launch_due_campaigns",
            "schedule": timedelta(hours=1),
            "options": {"expires": 30 * 60},
        },
        "send-reminders": {
            "task": "reviews.tasks.send_reminders",
            "schedule": timedelta(hours=1),
            "options": {"expires": 30 * 60},
        },
        "expire-kept-rights": {
            "task": "reviews.tasks.expire_kept_rights",
            "schedule": timedelta(hours=6),
            "options": {"expires": 60 * 60},
        },
        "sweep-webhooks": {
            "task": "audit.tasks.sweep_webhooks",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 4 * 60},
        },
        "sweep-launching-campaigns": {
            "task": "reviews.tasks.sweep_launching",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 4 * 60},
        },
        "sweep-closing-campaigns": {
            "task": "reviews.tasks.sweep_closing",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 4 * 60},
        },
        "sweep-remediations": {
            "task": "reviews.tasks.sweep_remediations",
            "schedule": timedelta(minutes=5),
            "options": {"expires": 4 * 60},
        },
    }
)
if COLLECT_INTERVAL_HOURS:
    CELERY_BEAT_SCHEDULE["collect-all-accounts"] = {
        "task": "inventory.tasks.collect_all",
        "schedule": timedelta(hours=COLLECT_INTERVAL_HOURS),
        "options": {"expires": COLLECT_INTERVAL_HOURS * 3600 // 2},
    }

# AWS. Credentials come from the AWS SDK's own chain (environment, profile, instance role);
# AWS_ENDPOINT_URL, read by the SDK itself, points every client at an emulator.
AWS_DEFAULT_REGION = env_str("AWS_DEFAULT_REGION", "us-east-1")
AWS_ENDPOINT_URL = env_str("AWS_ENDPOINT_URL")
AWS_CONNECT_TIMEOUT = env_float("AWS_CONNECT_TIMEOUT", 5.0, minimum=0.1)
AWS_READ_TIMEOUT = env_float("AWS_READ_TIMEOUT", 30.0, minimum=0.1)
AWS_MAX_ATTEMPTS = env_int("AWS_MAX_ATTEMPTS", 10, minimum=1)
AWS_RETRY_MODE = env_choice("AWS_RETRY_MODE", "standard", ("standard", "adaptive"))
AWS_ROLE_SESSION_NAME = env_str("AWS_ROLE_SESSION_NAME", "attest-collector")
# Access Advisor calls made at once per account, and jobs left waiting at once per account.
COLLECT_CONCURRENCY = env_int("COLLECT_CONCURRENCY", 16, minimum=1)
ACCESS_ADVISOR_JOB_WINDOW = env_int("ACCESS_ADVISOR_JOB_WINDOW", 100, minimum=1)
ACCESS_ADVISOR_POLL_SECONDS = env_float("ACCESS_ADVISOR_POLL_SECONDS", 2.0)
ACCESS_ADVISOR_POLL_MAX_SECONDS = env_float("ACCESS_ADVISOR_POLL_MAX_SECONDS", 20.0)
ACCESS_ADVISOR_TIMEOUT_SECONDS = env_float("ACCESS_ADVISOR_TIMEOUT_SECONDS", 900.0, minimum=1)
CREDENTIAL_REPORT_TIMEOUT_SECONDS = env_float("CREDENTIAL_REPORT_TIMEOUT_SECONDS", 120.0, minimum=1)

# Seconds an outgoing webhook's receiver has to answer.
WEBHOOK_TIMEOUT_SECONDS = env_float("WEBHOOK_TIMEOUT_SECONDS", 10.0, minimum=1)

# E-mail for reminders and escalations, e.g. smtp+tls://user:password@smtp.example.com:587.
# Without it, e-mails are written to the console.
_email = env_str("EMAIL_URL")
if _email:
    globals().update(env_email(_email))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "attest@localhost")
# The address people reach Attest at, for the links in e-mails.
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000")

DEMO_PASSWORD = env_str("DEMO_PASSWORD")

LOG_LEVEL = env_choice("LOG_LEVEL", "INFO", ("DEBUG", "INFO", "WARNING", "ERROR"))
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "botocore": {"level": "WARNING"},
        "boto3": {"level": "WARNING"},
        # Lockouts are warnings; every sign-in's bookkeeping is not worth a line.
        "axes": {"level": "WARNING"},
    },
}
