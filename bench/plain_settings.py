"""Plain django-q2 on the same database, for bench/bench_core.py.

Everything (database, CONN_MAX_AGE, CONN_HEALTH_CHECKS, workers, poll, bulk,
retry, timeout, ...) is config.settings; only the broker differs: django-q2's
own ORM broker (the django_q_ormq table) instead of jobs.worker.broker.JobTableBroker.
`save_limit` is left at django-q2's default (250: successful results are saved
and pruned to the newest 250), because saving results is what plain django-q2
normally does; our broker's packages never ask django-q2 to save.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, Q_CLUSTER
from jobs import conf as jobs_conf

Q_CLUSTER = {k: v for k, v in Q_CLUSTER.items() if k not in ("broker_class", "save_limit")}
Q_CLUSTER["orm"] = "default"
# What our broker reserves per statement when Q_BULK is not set (its default is by
# database): the ORM broker takes the same number per poll.
if Q_CLUSTER.get("bulk") is None:
    _sqlite = "sqlite" in DATABASES["default"]["ENGINE"]  # noqa: F405
    Q_CLUSTER["bulk"] = jobs_conf.SQLITE_BULK if _sqlite else jobs_conf.POSTGRESQL_BULK

# django_q ahead of jobs, so `manage.py qcluster` is django-q2's own command
# rather than our wrapper around it (the jobs app stays installed: bench.tasks
# imports jobs.api, and the schema is the same).
INSTALLED_APPS = [app for app in INSTALLED_APPS if app != "django_q"]
INSTALLED_APPS.insert(INSTALLED_APPS.index("jobs"), "django_q")

# jobs.E001 insists on our broker; here the other broker is the point.
SILENCED_SYSTEM_CHECKS = ["jobs.E001"]
