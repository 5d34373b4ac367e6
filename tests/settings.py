"""The suite's settings: the project's, plus the test-only app (models and tasks)."""

import copy
import os
from importlib.util import find_spec

from config.settings import *  # noqa: F403
from config.settings import DATABASES, INSTALLED_APPS, TASKS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]


def _another_database(suffix: str) -> dict:
    """A second database on the same server, with its own test database (not a mirror):
    pytest-django creates it only for the tests that name it in `databases`."""
    db = copy.deepcopy(DATABASES["default"])
    db["NAME"] = f"{db['NAME']}_{suffix}"
    if "NAME" in db.get("TEST", {}):  # SQLite: the test database's own file
        db["TEST"]["NAME"] = f"{db['TEST']['NAME']}_{suffix}"
    return db


# TEST_DATABASE_NAME names the test database (Django's default: "test_" + NAME), so runs side
# by side on one server (scripts/matrix.sh) each have their own under a name of their choosing.
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"].setdefault("TEST", {})["NAME"] = os.environ["TEST_DATABASE_NAME"]

# tests/integration/test_database_alias.py: a replica that lags (migrated, empty), read
# through tests.routers.PrimaryReplicaRouter, and a database of the engine's own.
DATABASES = {**DATABASES, "replica": _another_database("replica"),
             "jobsdb": _another_database("jobsdb")}

# The framework's own ImmediateBackend beside ours, for what JobsBackend refuses on
# purpose: the upstream suites' coroutine tasks (tests/conformance/tasks.py) are
# declared on it, as no task can be declared on a backend that refuses it.
_FRAMEWORK = "django.tasks" if find_spec("django.tasks") else "django_tasks"
TASKS = {**TASKS, "immediate": {
    "BACKEND": f"{_FRAMEWORK}.backends.immediate.ImmediateBackend", "QUEUES": []}}
