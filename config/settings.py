"""Settings, all read from the environment (django-environ) with safe defaults.

The zero-setup default is SQLite in the project folder with django-q2 pulling
from our own `Job` table (see `jobs/worker/broker.py`). Point `DATABASE_URL` at
PostgreSQL for anything real.
"""

from pathlib import Path

import django
import environ

from jobs import conf as jobs_conf

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The fallback key only serves the embedded demo; production must set SECRET_KEY
# (`manage.py check --deploy` refuses this one when DEBUG is off: demo.E001).
DEVELOPMENT_SECRET_KEY = "dev-only-insecure-key-set-SECRET_KEY-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "jobs",  # before django_q: its qcluster command wraps django-q2's
    "django_q",
    "django_htmx",
    "dashboard",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
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

# --- Database ---------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
_db = DATABASES["default"]
# Persistent connections with health checks: the cluster's workers run many
# short jobs, and a new connection per operation costs ~7x throughput on
# PostgreSQL (measured in bench/bench_core.py).
_db["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
_db["CONN_HEALTH_CHECKS"] = True
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web server, cluster workers) write to one file: WAL lets
    # readers run beside the writer, IMMEDIATE makes a writer wait for the lock
    # up front instead of failing half-way with "database is locked".
    _db.setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # Tests that start a real cluster need a file the other process can open.
    _db["TEST"] = {"NAME": env.str("SQLITE_TEST_NAME", default=str(BASE_DIR / "test_db.sqlite3"))}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "admin:login"

# Django 6.1 configures mail with MAILERS (EMAIL_BACKEND is deprecated there) and 6.0
# takes ADMINS as plain addresses (pairs are deprecated); 5.2 knows neither.
_email_backend = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _email_backend}}
else:
    EMAIL_BACKEND = _email_backend
# ADMINS=Name:email,Name:email (the name is what Django 5.2 shows; 6.x takes the address).
_admins = [tuple(a.split(":", 1)) for a in env.list("ADMINS", default=[]) if ":" in a]
ADMINS = [email for _, email in _admins] if django.VERSION >= (6, 0) else _admins

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # %(job)s: "job=<id> task=<name> attempt=<n>" on lines written while a job runs.
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s %(job)s"}},
    "filters": {"require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
                "job_fields": {"()": "jobs.core.context.JobLogFields"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain",
                    "filters": ["job_fields"]},
        # Sends nothing unless ADMINS is set.
        "mail_admins": {"class": "django.utils.log.AdminEmailHandler", "level": "ERROR",
                        "filters": ["require_debug_false"]},
    },
    "loggers": {
        # A 500 that still happens leaves its traceback in the log (and in the admins' mail).
        "django.request": {"handlers": ["console", "mail_admins"], "level": "ERROR",
                           "propagate": False},
        "jobs": {"handlers": ["console"], "level": env.str("JOBS_LOG_LEVEL", default="INFO")},
        "django-q": {"handlers": ["console"], "level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}

# --- Jobs -------------------------------------------------------------------
# Every default lives in jobs/conf.py; here the environment only overrides
# (JOBS_DEFAULT_TIMEOUT=120, JOBS_QUEUES=default,reports, Q_WORKERS=4, ...).
JOBS = jobs_conf.from_env(env)
Q_CLUSTER = jobs_conf.q_cluster_from_env(env)
# Django's standard task API (django.tasks; the django-tasks backport on Django 5.2)
# runs as jobs too; no QUEUES list, so a task may name any queue.
TASKS = {"default": {"BACKEND": "jobs.backends.JobsBackend", "QUEUES": []}}
