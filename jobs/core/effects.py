"""Effectively-once side effects inside at-least-once jobs.

A job can run twice: its worker died after the work but before the outcome
was written, and the reaper retried it. `once(key)` records a business
operation key in the *same* transaction as the task's own writes, so a re-run
finds the key only if the first run's writes committed too, and skips.

    @task(name="accounts.send_welcome_email")
    def send_welcome_email(user_id: int) -> None:
        if once(f"welcome-email:{user_id}"):
            Outbox.objects.create(to=..., template="welcome")   # same transaction

Keys stay until their `OperationKey` rows are deleted (the retention purge
keeps them as long as their job).
"""

from __future__ import annotations

import re

from django.db import IntegrityError, OperationalError

from jobs import conf, database, dialect
from jobs.core.context import current_job
from jobs.exceptions import InvalidOperationKey, NotInTransaction, OperationKeyBusy
from jobs.models import OperationKey

MAX_OPERATION_KEY = 255  # OperationKey.key's length
_SURROGATE = re.compile("[\ud800-\udfff]")
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


def once(key: str) -> bool:
    """Record `key`; True the first time, False if a committed run already did it.

    Call it inside the task's transaction (tasks are atomic by default). A
    concurrent run holding the same key waits on the unique index until the
    first commits, then gets False; if the first rolls back, it gets True.

    A key that could not be stored exactly (not a str, empty, over 255
    characters, a NUL or a lone surrogate in it) raises InvalidOperationKey
    before any SQL; the caller's transaction stays usable. In an attempt that
    lost its job (reaped, or its lease lapsed unrenewed) it is a safe point:
    AttemptLost, before any SQL.
    """
    _check_key(key)
    if database.get_autocommit():
        raise NotInTransaction(
            "jobs.once() must run inside a transaction with the effect's writes: "
            "use an atomic task (the default) or transaction.atomic() on the engine's database "
            "(JOBS['DATABASE'], jobs.database.atomic())"
        )
    ctx = current_job()
    if ctx is not None:
        # A key taken by an attempt that lost its job would only keep the new owner waiting.
        ctx.raise_if_lost()
    try:
        # On PostgreSQL the wait on the key's unique index is bounded (lock_timeout) for
        # this one INSERT; SQLite has one writer: no other transaction can hold the key.
        bounded = dialect.current().bounded_lock_wait(conf.get().once_lock_timeout_seconds)
        with bounded, database.atomic():
            OperationKey.objects.create(key=key, job_id=ctx.job_id if ctx else None)
    except IntegrityError:
        return False
    except OperationalError as exc:
        if getattr(exc.__cause__, "sqlstate", None) != LOCK_NOT_AVAILABLE:
            raise
        raise OperationKeyBusy(
            f"once({key[:80]!r}) waited {conf.get().once_lock_timeout_seconds:g} s for "
            "another transaction holding the same key; this attempt is retried later"
        ) from None
    return True


def _check_key(key: object) -> None:
    """Refuse, before any SQL, a key the column could not store exactly as given.

    A refusal raises InvalidOperationKey naming the rule and sends nothing, so the
    caller's transaction stays usable (on PostgreSQL a failed statement, a NUL
    that reached the server say, would break it).
    """
    if not isinstance(key, str):
        raise InvalidOperationKey(
            f"key must be a string of 1 to {MAX_OPERATION_KEY} characters, "
            f"not a {type(key).__name__}"
        )
    if not key or len(key) > MAX_OPERATION_KEY:
        raise InvalidOperationKey(
            f"key must be a string of 1 to {MAX_OPERATION_KEY} characters, got {len(key)}"
        )
    if "\x00" in key:
        raise InvalidOperationKey(
            f"key contains a NUL character (\\x00) at index {key.index(chr(0))}, which the "
            "database cannot store; remove it or encode the key"
        )
    if (bad := _SURROGATE.search(key)) is not None:
        raise InvalidOperationKey(
            f"key contains the lone surrogate {bad.group()!a} at index {bad.start()}, which "
            "is not valid Unicode text and has no UTF-8 form"
        )
