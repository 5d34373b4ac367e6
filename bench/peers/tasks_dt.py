"""The no-op for django-tasks-db, written the way Django's tasks docs show."""

from django_tasks import task


@task()
def noop() -> None:
    return None
