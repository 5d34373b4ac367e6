"""Settings, all read from the environment (django-environ) with safe defaults.

The zero-setup default is SQLite in the project folder with django-q2 pulling
from our own `Job` table (see `jobs/broker.py`). Point `DATABASE_URL` at
PostgreSQL for anything real.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
# The fallback key only serves the embedded demo; production must set SECRET_KEY.
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-set-SECRET_KEY-in-production")
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

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
ADMINS = [tuple(a.split(":", 1)) for a in env.list("ADMINS", default=[]) if ":" in a]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "jobs": {"handlers": ["console"], "level": env.str("JOBS_LOG_LEVEL", default="INFO")},
        "django-q": {"handlers": ["console"], "level": env.str("Q_LOG_LEVEL", default="WARNING")},
    },
}

# --- Jobs -------------------------------------------------------------------
# Defaults for every task; a task's own @task(...) options win over these.
JOBS = {
    "DEFAULT_QUEUE": env.str("JOBS_DEFAULT_QUEUE", default="default"),
    "DEFAULT_MAX_ATTEMPTS": env.int("JOBS_DEFAULT_MAX_ATTEMPTS", default=3),
    "BACKOFF_BASE": env.float("JOBS_BACKOFF_BASE", default=2.0),
    "BACKOFF_FACTOR": env.float("JOBS_BACKOFF_FACTOR", default=2.0),
    "BACKOFF_CAP": env.float("JOBS_BACKOFF_CAP", default=3600.0),
    # How long a reservation taken by a cluster's pusher keeps other clusters
    # off a queued job before a worker claims it.
    "RESERVATION_SECONDS": env.float("JOBS_RESERVATION_SECONDS", default=30.0),
    # A running job's lease; the worker renews it, the reaper acts once it lapses.
    "LEASE_SECONDS": env.float("JOBS_LEASE_SECONDS", default=30.0),
    # Seconds an attempt may run unless its task says otherwise.
    "DEFAULT_TIMEOUT": env.int("JOBS_DEFAULT_TIMEOUT", default=600),
    # On SIGTERM, running jobs get this long to finish before they are released.
    "SHUTDOWN_GRACE_SECONDS": env.float("JOBS_SHUTDOWN_GRACE_SECONDS", default=25.0),
    # How often each cluster looks for running jobs whose lease lapsed.
    "REAPER_INTERVAL_SECONDS": env.float("JOBS_REAPER_INTERVAL_SECONDS", default=5.0),
    # Extra modules imported at start-up so their @task functions register
    # (every installed app's `tasks` module is imported anyway).
    "TASK_MODULES": env.list("JOBS_TASK_MODULES", default=[]),
    # How often each cluster's maintenance thread looks for due work.
    "MAINTENANCE_TICK_SECONDS": env.float("JOBS_MAINTENANCE_TICK_SECONDS", default=0.5),
    # The jobs.purge_finished schedule deletes finished jobs older than this.
    "RETENTION_DAYS": env.int("JOBS_RETENTION_DAYS", default=30),
    # The jobs.dead_letter_alert schedule mails ADMINS (once a day) about
    # unresolved dead letters older than this.
    "DEAD_LETTER_ALERT_HOURS": env.float("JOBS_DEAD_LETTER_ALERT_HOURS", default=24.0),
}

# --- django-q2 cluster --------------------------------------------------------
Q_CLUSTER = {
    "name": env.str("Q_CLUSTER_NAME", default="default"),
    "workers": env.int("Q_WORKERS", default=2),
    # Our broker claims from the Job table; django-q2 never stores results.
    "broker_class": "jobs.broker.JobTableBroker",
    "orm": "default",
    "bulk": env.int("Q_BULK", default=4),
    "poll": env.float("Q_POLL", default=0.05),
    "save_limit": -1,
    # django-q2's own re-delivery and timeout are not used: the Job row's status
    # and lease decide what runs (see docs/architecture.md).
    "retry": env.int("Q_RETRY", default=3600),
    "timeout": env.int("Q_TIMEOUT", default=3000),
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "scheduler": False,
    "label": "Cluster",
}
