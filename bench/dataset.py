"""A realistic, production-shaped data set of jobs, attempts, steps and dead letters.

For benchmarks (bench/bench_admin.py, bench/bench_scale.py) and for trying the
admin on a table of the size it was built for: `bench/generate_jobs.py` runs it
from the command line. It lives in bench/, not in the wheel: a fixture of this
project's, not a command an installed app should offer.

Production-shaped means each row is one the engine could have written
(jobs.core.transitions), so pages and benches read what they would in
production: ids are UUIDv7 made at the job's creation time (jobs.models.ids),
a failure writes `failure_cause` (jobs.core.causes) and `last_failed_at` (the
end of the attempt that failed) and keeps them through a later success or
cancel, a requeue clears the cause and the error but keeps the history,
`attempt_count` is the current cycle's tries, a dead job is out of them, a
retrying one is not, and a job's start and end are its last attempt's.

On PostgreSQL each chunk of jobs is one INSERT ... SELECT FROM generate_series
whose data-modifying CTEs also write the attempts, dead letters and steps of
those jobs (a million jobs: a few statements, well under three minutes), then
VACUUM ANALYZE so the planner and the visibility map know the new rows.
Elsewhere (SQLite) it falls back to bulk_create: fine for a few thousand jobs.

The mix: ~80% succeeded, 4% dead (40% of their dead letters resolved), 2%
cancelled, 3% waiting to retry, 1% running, 10% queued (requeued after dying:
their history stays); four queues, eight tasks (one, catalog.import, with four
steps); finished jobs spread over `days`, unfinished ones over the last two
hours; each job carries exactly `attempts_per_job` attempts of history (earlier
ones failed, timed out or were lost, with an error and a short traceback), so
the totals are exact. Rows are added; nothing is deleted.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from jobs import database
from jobs.core.causes import cause
from jobs.database import connection
from jobs.models import Attempt, DeadLetter, Job, Step
from jobs.models.ids import uuid7_at

# (status, cumulative share)
STATUS_MIX = [("succeeded", 0.80), ("dead", 0.84), ("cancelled", 0.86), ("retrying", 0.89),
              ("running", 0.90), ("queued", 1.0)]
ACTIVE = ("queued", "running", "retrying")
FINAL = ("succeeded", "dead", "cancelled")
FAILING = ("dead", "retrying", "queued")  # their last attempt failed (queued: then requeued)
FAILED_ATTEMPTS = ("failed", "timed_out", "lost")
GAP = timedelta(seconds=30)  # from one attempt's start to the next one's
QUEUES = ["default", "default", "default", "emails", "emails", "reports", "critical"]
TASKS = ["accounts.send_welcome_email", "billing.charge_invoice", "reports.build",
         "search.reindex_product", "notifications.push", "catalog.import",
         "media.make_thumbnail", "crm.sync_contact"]
STEP_TASK = "catalog.import"
STEPS = ["download", "validate", "transform", "load"]
ERRORS = [
    ("TimeoutError", "upstream did not answer within 30s"),
    ("ConnectionError", "[Errno 111] Connection refused (payments.internal:443)"),
    ("ValueError", "invalid literal for int() with base 10: 'N/A'"),
    ("KeyError", "'customer_id'"),
    ("smtplib.SMTPServerDisconnected", "Connection unexpectedly closed"),
    ("requests.exceptions.HTTPError", "503 Server Error: Service Unavailable for url: "
                                      "https://api.example.com/v2/contacts"),
    ("jobs.exceptions.PermanentError", "account 4711 is closed"),
    ("psycopg.errors.DeadlockDetected", "deadlock detected"),
]
TRACEBACK = ('Traceback (most recent call last):\n  File "/app/jobs/runner.py", line 212, in '
             'run_attempt\n    result = fn(*args, **kwargs)\n  File "/app/{module}.py", line 42, '
             'in {func}\n    response.raise_for_status()\n{cls}: {msg}\n')
CAUSES = [cause(c, m) for c, m in ERRORS]  # as a failure stores them (jobs.core.causes)


def generate(jobs: int, attempts_per_job: int = 3, *, days: int = 30, chunk: int = 200_000,
             vacuum: bool = True, say: Callable[[str], Any] = print) -> None:
    """Add `jobs` jobs, each with `attempts_per_job` attempts of history."""
    if jobs < 0 or attempts_per_job < 1:
        raise ValueError("jobs must be >= 0 and attempts_per_job >= 1")
    started = time.monotonic()
    if connection.vendor == "postgresql":
        _postgres(jobs, attempts_per_job, days, chunk, say)
        _analyze(vacuum, say)
    else:
        _orm(jobs, attempts_per_job, days)
    say(f"generated {jobs} jobs, {jobs * attempts_per_job} attempts in "
        f"{time.monotonic() - started:.1f}s ({connection.vendor})")


# --- PostgreSQL: INSERT ... SELECT FROM generate_series ---------------------------------


def _postgres(jobs: int, per_job: int, days: int, chunk: int, say: Callable) -> None:
    from bench.dataset_sql import GENERATE_SQL

    params = {"per_job": per_job, "days": days, "queues": QUEUES, "tasks": TASKS,
              "step_task": STEP_TASK, "steps": STEPS, "err_classes": [c for c, _ in ERRORS],
              "err_messages": [m for _, m in ERRORS], "err_causes": CAUSES,
              "traceback": TRACEBACK}
    tables = [m._meta.db_table for m in (Job, Attempt, DeadLetter, Step)]
    # Into empty tables, building the secondary indexes once at the end is
    # several times cheaper than maintaining them row by row.
    # (Not inside a transaction: its pending FK checks forbid CREATE INDEX.)
    rebuild = not connection.in_atomic_block and not Job.objects.exists()
    saved = _drop_indexes(tables) if rebuild else []
    try:
        done = 0
        while done < jobs:
            size = min(chunk, jobs - done)
            t0 = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(GENERATE_SQL, {**params, "first": 1, "last": size})
            done += size
            say(f"  {done}/{jobs} jobs ({time.monotonic() - t0:.1f}s)")
    finally:
        if saved:
            t0 = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute("SET maintenance_work_mem = '256MB'")
                for definition in saved:
                    cursor.execute(definition)
            say(f"  rebuilt {len(saved)} indexes in {time.monotonic() - t0:.1f}s")


def _analyze(vacuum: bool, say: Callable) -> None:
    verb = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
    t0 = time.monotonic()
    with connection.cursor() as cursor:
        for model in (Job, Attempt, DeadLetter, Step):
            cursor.execute(f"{verb} {connection.ops.quote_name(model._meta.db_table)}")
    say(f"  {verb} in {time.monotonic() - t0:.1f}s")


# --- Other databases: bulk_create ---------------------------------------------------------


def _orm(jobs: int, per_job: int, days: int) -> None:
    rng = random.Random()
    now = timezone.now()
    batch = 500
    for offset in range(0, jobs, batch):
        job_rows, attempt_rows, letter_rows, step_rows = [], [], [], []
        for _ in range(min(batch, jobs - offset)):
            job, attempts, letter, steps = _fake_job(rng, now, per_job, days)
            job_rows.append(job)
            attempt_rows += attempts
            step_rows += steps
            if letter:
                letter_rows.append(letter)
        with database.atomic():
            Job.objects.bulk_create(job_rows)
            Attempt.objects.bulk_create(attempt_rows)
            DeadLetter.objects.bulk_create(letter_rows)
            Step.objects.bulk_create(step_rows)


def _drop_indexes(tables: list[str]) -> list[str]:
    """Drop the indexes of `tables` that back no constraint; return their definitions."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                              WHERE c.conindid = format('%%I.%%I', i.schemaname,
                                                        i.indexname)::regclass)
            """,
            [tables],
        )
        rows = cursor.fetchall()
        for name, _ in rows:
            cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")
    return [definition for _, definition in rows]


def _fake_job(rng: random.Random, now: datetime, per_job: int,
              days: int) -> tuple[Job, list[Attempt], DeadLetter | None, list[Step]]:
    """One job and its history, with the same distributions and rules as GENERATE_SQL."""
    r = rng.random()
    status = next(s for s, share in STATUS_MIX if r < share)
    queue, task = rng.choice(QUEUES), rng.choice(TASKS)
    spread = timedelta(hours=2) if status in ACTIVE else timedelta(days=days)
    created = now - spread * rng.random()
    run_for = timedelta(seconds=0.05 + rng.random() * 20)
    first = created + timedelta(seconds=rng.random() * 5)
    starts = [first + GAP * n for n in range(per_job)]
    ends = [start + run_for for start in starts]
    outcomes = [rng.choice(["failed"] * 8 + ["timed_out", "lost"]) for _ in starts[1:]]
    outcomes.append(status if status in ("succeeded", "cancelled", "running") else "failed")
    errors = [rng.choice(ERRORS) for _ in starts]
    # The latest failure: the last attempt, or the one before when the last did not fail.
    failed = max((n for n, o in enumerate(outcomes) if o in FAILED_ATTEMPTS), default=None)
    retry_at = max(ends[-1], now) + timedelta(minutes=10) * rng.random()
    job = Job(
        id=uuid7_at(created), task_name=task, queue=queue, status=status,
        priority=10 if queue == "critical" else 0,
        args=[rng.randrange(100_000), "x"], kwargs={"rows": rng.randrange(1000)},
        attempt_count=0 if status == "queued" else per_job,
        max_attempts=per_job if status in ("dead", "queued") else max(
            3, per_job + (status == "retrying")),
        last_attempt_number=per_job, created_at=created,
        run_after={"retrying": retry_at, "queued": min(ends[-1], now)}.get(status, created),
        started_at=None if status == "queued" else starts[-1],
        finished_at=ends[-1] if status in FINAL else None,
        idempotency_key=f"gen:{rng.getrandbits(80):020x}" if rng.random() < 0.2 else None,
        result={"ok": True, "rows": rng.randrange(1000)} if status == "succeeded" else None,
        last_error="{}: {}".format(*errors[-1]) if status in ("dead", "retrying") else "",
        failure_cause=cause(*errors[failed]) if failed is not None and status != "queued"
        else "",
        last_failed_at=ends[failed] if failed is not None else None,
        lease_owner="worker-1:4242" if status == "running" else "",
        lease_expires_at=now + timedelta(seconds=30) if status == "running" else None,
        heartbeat_at=now if status == "running" else None,
    )
    attempts = []
    for n, (start, end, outcome, (a_class, a_message)) in enumerate(
            zip(starts, ends, outcomes, errors, strict=True), start=1):
        fails = outcome in FAILED_ATTEMPTS
        attempts.append(Attempt(
            job=job, number=n, status=outcome, started_at=start,
            finished_at=None if outcome == "running" else end,
            duration=None if outcome == "running" else run_for,
            retry_at=starts[n] if n < per_job else (retry_at if status == "retrying" else None),
            worker_host=f"worker-{rng.randrange(8)}", worker_pid=1000 + rng.randrange(2000),
            error_class=a_class if fails else "", error_message=a_message if fails else "",
            traceback=TRACEBACK.format(module=task.split(".")[0], func=task.split(".")[1],
                                       cls=a_class, msg=a_message) if fails else "",
        ))
    letter = None
    if status == "dead":
        resolved = rng.random() < 0.4
        letter = DeadLetter(job=job, attempt=attempts[-1], attempts=per_job,
                            failed_at=job.finished_at,
                            resolved_at=job.finished_at + timedelta(hours=1) if resolved else None,
                            note="known outage" if resolved else "")
    steps = []
    if task == STEP_TASK:
        for position, name in enumerate(STEPS, start=1):
            if status == "succeeded" or (status == "dead" and position < 3):
                s_status = "succeeded"
            elif status == "dead" and position == 3:
                s_status = "failed"
            else:
                s_status = "pending"
            steps.append(Step(
                job=job, position=position, name=name, status=s_status,
                attempts=1 if s_status != "pending" else 0,
                limits={"max_rows": 5000} if name == "transform" else {},
                error_class="jobs.steps.LimitExceeded" if s_status == "failed" else "",
                error_message="6000 rows > max_rows 5000" if s_status == "failed" else "",
            ))
    return job, attempts, letter, steps
