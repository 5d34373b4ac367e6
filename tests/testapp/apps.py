from django.apps import AppConfig


class TestAppConfig(AppConfig):
    """Test-only models and tasks; installed by tests.settings, never shipped."""

    name = "tests.testapp"
    label = "testapp"
    default_auto_field = "django.db.models.BigAutoField"
