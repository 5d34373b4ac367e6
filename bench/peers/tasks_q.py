"""The no-op django-q2's async_task refers to by dotted path."""


def noop() -> None:
    return None
