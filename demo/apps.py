from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Demo tasks"

    def ready(self) -> None:
        from demo import checks  # noqa: F401 - registers the deploy check
