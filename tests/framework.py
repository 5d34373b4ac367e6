"""The framework the backend runs on: django.tasks (Django 6.0+) or the django-tasks
backport (Django 5.2), under one set of names for the tests (Django 6 renamed
InvalidTaskError and InvalidTaskBackendError to InvalidTask and InvalidTaskBackend)."""

import django

DJANGO_6 = django.VERSION >= (6, 0)

if DJANGO_6:
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskContext,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.dummy import DummyBackend
    from django.tasks.backends.immediate import ImmediateBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
    from django.tasks.exceptions import (
        InvalidTask,
        InvalidTaskBackend,
        TaskResultDoesNotExist,
        TaskResultMismatch,
    )
    from django.tasks.signals import task_enqueued, task_finished, task_started

    LOGGER = "django.tasks"
    DUMMY_BACKEND = "django.tasks.backends.dummy.DummyBackend"
    IMMEDIATE_BACKEND = "django.tasks.backends.immediate.ImmediateBackend"
else:
    from django_tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskContext,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.backends.dummy import DummyBackend
    from django_tasks.backends.immediate import ImmediateBackend
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
    from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
    from django_tasks.exceptions import InvalidTaskError as InvalidTask
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch
    from django_tasks.signals import task_enqueued, task_finished, task_started

    LOGGER = "django_tasks"
    DUMMY_BACKEND = "django_tasks.backends.dummy.DummyBackend"
    IMMEDIATE_BACKEND = "django_tasks.backends.immediate.ImmediateBackend"

JOBS_BACKEND = "jobs.backends.JobsBackend"


def admins(name: str, email: str) -> list:
    """settings.ADMINS with one admin, as this Django takes it: (name, email) pairs on
    5.2, plain addresses on 6.0 and later (where pairs are deprecated)."""
    return [email] if DJANGO_6 else [(name, email)]

__all__ = [
    "DEFAULT_TASK_QUEUE_NAME", "DJANGO_6", "DUMMY_BACKEND", "IMMEDIATE_BACKEND", "JOBS_BACKEND",
    "admins",
    "LOGGER", "TASK_MAX_PRIORITY", "TASK_MIN_PRIORITY", "DummyBackend", "ImmediateBackend",
    "InvalidTask", "InvalidTaskBackend", "Task", "TaskContext", "TaskResultDoesNotExist",
    "TaskResultMismatch", "TaskResultStatus", "default_task_backend", "task", "task_backends",
    "task_enqueued", "task_finished", "task_started",
]
