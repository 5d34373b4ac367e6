from importlib import import_module

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Register every @task before the first enqueue() or worker looks one up.
        from jobs import conf

        autodiscover_modules("tasks")
        for module in conf.get().task_modules:
            import_module(module)
