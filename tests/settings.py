"""The suite's settings: the project's, plus the test-only app (models and tasks)."""

from importlib.util import find_spec

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, TASKS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

# The framework's own ImmediateBackend beside ours, for what JobsBackend refuses on
# purpose: the upstream suites' coroutine tasks (tests/conformance/tasks.py) are
# declared on it, as no task can be declared on a backend that refuses it.
_FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
TASKS = {**TASKS, "immediate": {
    "BACKEND": f"{_FRAMEWORK}.backends.immediate.ImmediateBackend", "QUEUES": []}}
