"""The one place that says which ported upstream tests do not pass, and why.

SKIP: what jobs.backends.JobsBackend (or this package's worker) does differently on
purpose; each reason says what it does instead. GAPS: what it gets wrong, each
named once; XFAIL maps a test to the gaps that make it fail, and runs it as a
strict xfail, so the test that a fix makes pass fails the run until its entry is
removed here.

Keys are test ids below tests/conformance/ (`file::Class::test`); a key ending in
`[case]` is one case of a test's subTest loop, skipped by `skip_case` in the test.
Entries that hold on some Django versions only are keyed in the same dicts through
`only_on` / `not_on`.
"""

from __future__ import annotations

import django
import pytest

DB = "test_database_backend.py::DatabaseBackendTestCase::"
WORKER = "test_database_backend.py::DatabaseBackendWorkerTestCase::"
PROCESS = "test_database_backend.py::DatabaseWorkerProcessTestCase::"

# --- Reasons for skipping: what differs on purpose ----------------------------------
COROUTINES = ("coroutine tasks are refused (supports_async_task = False): a job runs in "
              "a cluster worker without an event loop")
DB_WORKER_CLI = ("django-tasks-db's db_worker command line; this package's worker is "
                 "`manage.py qcluster` (its options and output are its own)")
DB_MODEL = ("django-tasks-db's DBTaskResult model; a job is a Job row (jobs.models.job) "
            "with its own columns, constraints and indexes")
ID_FUNCTION = ("DatabaseBackend's OPTIONS id_function; a job's id is always a UUIDv7, "
               "time-ordered, so recent jobs' index entries stay together")
NO_BACKEND_ALIAS = ("a job carries no backend alias: a cluster runs the jobs of every "
                    "JobsBackend alias, by queue")
UNKNOWN_TASK_RETRIED = ("a job whose task this worker does not know is retried with "
                        "backoff, not failed at once: the worker may run older code than "
                        "the process that enqueued it (architecture.md)")
NOT_A_TASK = ("get_result of a job whose task path is not a Django task raises "
              "TaskResultDoesNotExist (a @jobs.task job is no result of this backend), "
              "not SuspiciousOperation")
MESSAGE = ("the refusal is the framework's exception type (TypeError); its message is "
           "this package's, naming the argument and the storage rule")
ORDER = ("DBTaskResult's ordering; the order this package runs jobs in is the "
         "reservation's (priority with aging, then due time: "
         "tests/integration/test_priority_aging.py)")
RESULT_MESSAGE = ("an unstorable return value fails as the framework's TypeError with "
                  "the framework's message (normalize_json: 'Unsupported type'), as "
                  "ImmediateBackend's; django-tasks-db's message is json.dumps'")
SYNC_IN_ASYNC = ("calls the synchronous refresh() inside a coroutine: a result stored in "
                 "the database is read from it, which Django refuses in an async context "
                 "(SynchronousOnlyOperation; arefresh() is the coroutine's way)")
RELEASED_AT_SHUTDOWN = (
    "a job interrupted by a cluster's shutdown (the second Ctrl-C) is released (queued "
    "again, READY, its attempt `interrupted` with jobs.exceptions.WorkerShutdown) for "
    "another worker, not FAILED with SystemExit; the second Ctrl-C itself ends the grace "
    "period at once (tests/integration/test_shutdown.py)")
WORKER_LOG = ("asserts db_worker's log lines; a cluster logs its own "
              "(tests/integration/test_cluster.py)")

BACKPORT = "test_backport_tasks.py::TaskTestCase::"
DJANGO_SUITE = "test_django_tasks.py::TaskTestCase::"

SKIP: dict[str, str] = {
    # django-tasks 0.12: TaskTestCase
    f"{BACKPORT}test_enqueue_with_invalid_argument": MESSAGE,
    f"{BACKPORT}test_aenqueue_with_invalid_argument": MESSAGE,
    f"{BACKPORT}test_get_incorrect_result": COROUTINES,
    f"{BACKPORT}test_get_incorrect_result_async": COROUTINES,
    f"{BACKPORT}test_refresh_result": SYNC_IN_ASYNC,
    # Django 6.x: tests/tasks/test_tasks.py
    f"{DJANGO_SUITE}test_enqueue_with_invalid_argument": MESSAGE,
    f"{DJANGO_SUITE}test_aenqueue_with_invalid_argument": MESSAGE,
    f"{DJANGO_SUITE}test_get_incorrect_result": COROUTINES,
    f"{DJANGO_SUITE}test_get_incorrect_result_async": COROUTINES,
    f"{DJANGO_SUITE}test_refresh_result": SYNC_IN_ASYNC,
    # django-tasks-db: DatabaseBackendTestCase
    f"{DB}test_enqueue_task[noop_task_async]": COROUTINES,
    f"{DB}test_enqueue_task_async[noop_task_async]": COROUTINES,
    f"{DB}test_invalid_task_path": NOT_A_TASK,
    f"{DB}test_task_name": DB_MODEL,
    f"{DB}test_priority_range_check": DB_MODEL,
    f"{DB}test_index_scan_for_ready": DB_MODEL,
    f"{DB}test_run_after_null_0016_migration": DB_MODEL,
    f"{DB}test_custom_id_function": ID_FUNCTION,
    f"{DB}test_unknown_id_function": ID_FUNCTION,
    f"{DB}test_postgres_db_id_function": ID_FUNCTION,
    f"{DB}test_postgres_id_function_expression": ID_FUNCTION,
    f"{WORKER}test_complex_return_value": RESULT_MESSAGE,
    # django-tasks-db: DatabaseBackendWorkerTestCase
    f"{WORKER}test_doesnt_process_different_backend": NO_BACKEND_ALIAS,
    f"{WORKER}test_exclude_queues_requires_processing_all_queues": DB_WORKER_CLI,
    f"{WORKER}test_unknown_backend": DB_WORKER_CLI,
    f"{WORKER}test_incorrect_backend": DB_WORKER_CLI,
    f"{WORKER}test_negative_interval": DB_WORKER_CLI,
    f"{WORKER}test_infinite_interval": DB_WORKER_CLI,
    f"{WORKER}test_fractional_interval": DB_WORKER_CLI,
    f"{WORKER}test_zero_interval": DB_WORKER_CLI,
    f"{WORKER}test_negative_max_tasks": DB_WORKER_CLI,
    f"{WORKER}test_zero_max_tasks": DB_WORKER_CLI,
    f"{WORKER}test_too_long_worker_id": DB_WORKER_CLI,
    f"{WORKER}test_empty_worker_id": DB_WORKER_CLI,
    f"{WORKER}test_verbose_logging": DB_WORKER_CLI,
    f"{WORKER}test_max_tasks": DB_WORKER_CLI,
    f"{WORKER}test_run_after_priority": ORDER,
    f"{WORKER}test_invalid_task_path": UNKNOWN_TASK_RETRIED,
    f"{WORKER}test_missing_task_path": UNKNOWN_TASK_RETRIED,
    f"{WORKER}test_task_import_string": UNKNOWN_TASK_RETRIED,
    # django-tasks-db: DatabaseWorkerProcessTestCase
    f"{PROCESS}test_multiple_workers": WORKER_LOG,
    f"{PROCESS}test_repeat_ctrl_c": RELEASED_AT_SHUTDOWN,
}

# --- Gaps: what the backend or the engine gets wrong --------------------------------
# None known: each gap named here once had its strict xfails below, removed with its fix.
GAPS: dict[str, str] = {}

XFAIL: dict[str, tuple[str, ...]] = {}


# Which Django each suite is for: the backport's on 5.2 (where the backend is built on
# it), Django's own on 6.0 and later; and the tests of what Django 6.1 added.
DJANGO = django.VERSION[:2]
SUITES: dict[str, tuple[bool, str]] = {
    "test_backport_tasks.py": (
        DJANGO < (6, 0), "the django-tasks backport's suite: the backend uses it on Django "
        "5.2 only (Django 6 has django.tasks, whose own suite runs)"),
    "test_django_tasks.py": (
        DJANGO >= (6, 0), "Django's own tests/tasks: Django 6.0 and later"),
}
SINCE_6_1 = "tests a feature of Django 6.1 (Task pickling, @task keyword arguments)"
SINCE: dict[str, tuple[tuple[int, int], str]] = {
    f"{DJANGO_SUITE}test_pickle_task": ((6, 1), SINCE_6_1),
    f"{DJANGO_SUITE}test_unpickle_arbitrary_string": ((6, 1), SINCE_6_1),
    f"{DJANGO_SUITE}test_unpickle_non_task_object": ((6, 1), SINCE_6_1),
    f"{DJANGO_SUITE}test_pickle_task_result": ((6, 1), SINCE_6_1),
    f"{DJANGO_SUITE}test_run_after_in_decorator": ((6, 1), SINCE_6_1),
}


# Strict xfails but these: tests bound by a timing a gap makes borderline, which pass
# now and then (an xfail strict there would fail the run by chance); each one's
# subTest cases are then reported one by one, XPASS or XFAIL.
NOT_STRICT: dict[str, str] = {}


def skip_case(testcase: object, case: str) -> None:
    """Inside a test's `with self.subTest(...)`: skip this case if SKIP names it."""
    reason = SKIP.get(f"{_test_id(testcase)}[{case}]")
    if reason is not None:
        testcase.skipTest(reason)  # type: ignore[attr-defined]


def _test_id(testcase: object) -> str:
    module = type(testcase).__module__.rsplit(".", 1)[-1]
    return f"{module}.py::{type(testcase).__name__}::{testcase._testMethodName}"  # type: ignore[attr-defined]


def mark(item: pytest.Item, key: str) -> None:
    """Put the mark SUITES, SINCE, SKIP or XFAIL gives `key` on the collected test."""
    applies, why = SUITES.get(key.split("::", 1)[0], (True, ""))
    since, new = SINCE.get(key, ((0, 0), ""))
    if not applies:
        item.add_marker(pytest.mark.skip(reason=f"not for Django {DJANGO}: {why}"))
    elif DJANGO < since:
        item.add_marker(pytest.mark.skip(reason=f"not for Django {DJANGO}: {new}"))
    elif key in SKIP:
        item.add_marker(pytest.mark.skip(reason=SKIP[key]))
    elif key in XFAIL:
        gaps = "; ".join(f"{g}: {GAPS[g]}" for g in XFAIL[key])
        if key in NOT_STRICT:
            gaps = f"{gaps} (not strict: {NOT_STRICT[key]})"
        item.add_marker(pytest.mark.xfail(strict=key not in NOT_STRICT, reason=gaps))


