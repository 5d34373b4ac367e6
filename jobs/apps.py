from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        from jobs import checks, conf, runner  # noqa: F401 - registers the system checks

        # Register every @task before the first enqueue() or worker looks one up.
        autodiscover_modules("tasks")
        for module in conf.get().task_modules:
            import_module(module)
        # Each django-q2 worker learns the drain/interrupt signals at spawn.
        post_spawn.connect(runner.install_worker_signal_handlers, dispatch_uid="jobs-signals")
