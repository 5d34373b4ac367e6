"""Django settings for a peer of bench/peers/run.py, chosen by the PEER variable.

Every peer gets the same DATABASES entry as config.settings (persistent connections,
health checks), its own database (DATABASE_URL) and only the apps it needs. Runs in
bench/peers/.venv, where the peers are installed; this project is not.
"""

import os

import environ

PEER = os.environ["PEER"]
env = environ.Env()

SECRET_KEY = "bench-peers-only"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
DATABASES = {"default": env.db("DATABASE_URL")}
DATABASES["default"]["CONN_MAX_AGE"] = 60
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # as config.settings
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30, "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"}
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "root": {"handlers": [], "level": "WARNING"}}

INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth"]

if PEER == "django-q2":
    INSTALLED_APPS += ["django_q"]
    # The same cluster settings as ours (jobs.conf.Q_CLUSTER_DEFAULTS) with django-q2's
    # own ORM broker; save_limit stays at its default (results saved, pruned to 250).
    Q_CLUSTER = {"name": "default", "workers": 2, "orm": "default", "bulk": 4,
                 "poll": 0.05, "retry": 3600, "timeout": 3000, "max_attempts": 1,
                 "ack_failures": True, "catch_up": False, "label": "Cluster",
                 # As config.settings logs django-q (WARNING): no line per enqueue.
                 "log_level": "WARNING"}
elif PEER == "django-tasks-db":
    INSTALLED_APPS += ["django_tasks", "django_tasks_db"]
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
elif PEER == "procrastinate":
    INSTALLED_APPS += ["procrastinate.contrib.django"]
    PROCRASTINATE_IMPORT_PATHS = ["bench.peers.tasks_procrastinate"]
elif PEER in ("celery", "celery+results"):
    if PEER == "celery+results":
        INSTALLED_APPS += ["django_celery_results"]
else:
    raise RuntimeError(f"unknown PEER {PEER!r}")
