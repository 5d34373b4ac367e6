"""Start-up wiring: the one place that connects the layers to Django's hooks."""

from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import pre_save
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from jobs import checks, conf, signals  # noqa: F401 - registers the system checks
        from jobs.core.context import install_log_context
        from jobs.dialect import sqlite
        from jobs.models import Schedule
        from jobs.ops import bulk
        from jobs.scheduling.firing import validate_and_plan
        from jobs.worker import sessions
        from jobs.worker.runner import on_worker_spawn

        # Log lines written while a job runs can say which job (%(job)s).
        install_log_context()
        # Prometheus counters, when the optional prometheus-client is installed: an
        # optional dependency is imported only if present, hence here.
        if find_spec("prometheus_client") is not None:
            from jobs.ops import metrics

            metrics.connect()
        # Register every @task before the first enqueue() or worker looks one up.
        autodiscover_modules("tasks")
        for module in conf.get().task_modules:
            import_module(module)
        # A schedule that could never enqueue a job must not be saved, from any path.
        pre_save.connect(validate_and_plan, sender=Schedule, dispatch_uid="jobs-schedule-save")
        # Each django-q2 worker learns the drain/interrupt signals and opens its
        # heartbeat connection at spawn.
        post_spawn.connect(on_worker_spawn, dispatch_uid="jobs-worker-spawn")
        # An every-match operation ends when its job ends, however it ends, in the
        # worker that wrote the end (the paths without a signal: jobs.ops.bulk.report).
        signals.job_finished.connect(bulk.on_job_finished, dispatch_uid="jobs-bulk-finished")
        # SQLite: no request waits for a WAL checkpoint; the clusters make them.
        connection_created.connect(sqlite.on_connection_created, dispatch_uid="jobs-sqlite")
        # A worker's sessions get their server-side limits as they open (workers only).
        connection_created.connect(sessions.on_connection_created,
                                   dispatch_uid="jobs-worker-sessions")
