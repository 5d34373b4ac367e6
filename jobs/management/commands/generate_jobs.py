"""Generate a realistic data set of jobs, attempts, steps and dead letters.

    manage.py generate_jobs --jobs 1000000 --attempts-per-job 3

For benchmarks and for trying the admin on a table of the size it was built
for. On PostgreSQL each chunk of jobs is one INSERT ... SELECT FROM
generate_series whose data-modifying CTEs also write the attempts, dead
letters and steps of those jobs (a million jobs: a few statements, well under
three minutes), then VACUUM ANALYZE so the planner and the visibility map know
the new rows. Elsewhere (SQLite) it falls back to bulk_create: fine for a few
thousand jobs.

The mix: ~80% succeeded, 4% dead (40% of their dead letters resolved), 2%
cancelled, 3% waiting to retry, 1% running, 10% queued; four queues, eight
tasks (one, catalog.import, with four steps); finished jobs spread over
--days, unfinished ones over the last two hours; each job carries exactly
--attempts-per-job attempts of history (earlier ones failed, timed out or were
lost, with an error and a short traceback), so the totals are exact.
Rows are added; nothing is deleted.
"""

from __future__ import annotations

import random
import time
import uuid
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from jobs import database
from jobs.database import connection
from jobs.models import Attempt, DeadLetter, Job, Step

# (status, cumulative share)
STATUS_MIX = [("succeeded", 0.80), ("dead", 0.84), ("cancelled", 0.86), ("retrying", 0.89),
              ("running", 0.90), ("queued", 1.0)]
ACTIVE = ("queued", "running", "retrying")
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


class Command(BaseCommand):
    help = "Generate a realistic data set of jobs (and their attempts) for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--jobs", type=int, default=1000)
        parser.add_argument("--attempts-per-job", type=int, default=3)
        parser.add_argument("--days", type=int, default=30,
                            help="Finished jobs are spread over this many days.")
        parser.add_argument("--chunk", type=int, default=200_000,
                            help="Jobs per INSERT statement on PostgreSQL.")
        parser.add_argument("--no-vacuum", action="store_true",
                            help="Only ANALYZE afterwards (PostgreSQL).")

    def handle(self, *args: Any, **options: Any) -> None:
        jobs, per_job = options["jobs"], options["attempts_per_job"]
        if jobs < 0 or per_job < 1:
            raise CommandError("--jobs must be >= 0 and --attempts-per-job >= 1")
        started = time.monotonic()
        if connection.vendor == "postgresql":
            self._postgres(jobs, per_job, options["days"], options["chunk"])
            self._analyze(vacuum=not options["no_vacuum"])
        else:
            self._orm(jobs, per_job, options["days"])
        self.stdout.write(
            f"generated {jobs} jobs, {jobs * per_job} attempts in "
            f"{time.monotonic() - started:.1f}s ({connection.vendor})"
        )

    # --- PostgreSQL: INSERT ... SELECT FROM generate_series -----------------------------

    def _postgres(self, jobs: int, per_job: int, days: int, chunk: int) -> None:
        params = {
            "per_job": per_job,
            "days": days,
            "queues": QUEUES,
            "tasks": TASKS,
            "step_task": STEP_TASK,
            "steps": STEPS,
            "err_classes": [c for c, _ in ERRORS],
            "err_messages": [m for _, m in ERRORS],
            "traceback": TRACEBACK,
        }
        tables = [m._meta.db_table for m in (Job, Attempt, DeadLetter, Step)]
        # Into empty tables, building the secondary indexes once at the end is
        # several times cheaper than maintaining them row by row.
        # (Not inside a transaction: its pending FK checks forbid CREATE INDEX.)
        rebuild = not connection.in_atomic_block and not Job.objects.exists()
        saved = _drop_indexes(tables) if rebuild else []
        try:
            self._insert_chunks(jobs, chunk, params)
        finally:
            if saved:
                t0 = time.monotonic()
                with connection.cursor() as cursor:
                    cursor.execute("SET maintenance_work_mem = '256MB'")
                    for definition in saved:
                        cursor.execute(definition)
                self.stdout.write(f"  rebuilt {len(saved)} indexes in "
                                  f"{time.monotonic() - t0:.1f}s")

    def _insert_chunks(self, jobs: int, chunk: int, params: dict[str, Any]) -> None:
        done = 0
        while done < jobs:
            size = min(chunk, jobs - done)
            t0 = time.monotonic()
            with connection.cursor() as cursor:
                cursor.execute(GENERATE_SQL, {**params, "first": 1, "last": size})
            done += size
            self.stdout.write(f"  {done}/{jobs} jobs ({time.monotonic() - t0:.1f}s)")

    def _analyze(self, vacuum: bool) -> None:
        tables = [m._meta.db_table for m in (Job, Attempt, DeadLetter, Step)]
        verb = "VACUUM (ANALYZE)" if vacuum else "ANALYZE"
        t0 = time.monotonic()
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"{verb} {connection.ops.quote_name(table)}")
        self.stdout.write(f"  {verb} in {time.monotonic() - t0:.1f}s")

    # --- Other databases: bulk_create ------------------------------------------------------

    def _orm(self, jobs: int, per_job: int, days: int) -> None:
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


def _fake_job(rng: random.Random, now: Any, per_job: int,
              days: int) -> tuple[Job, list[Attempt], DeadLetter | None, list[Step]]:
    """One job and its history, with the same distributions as GENERATE_SQL."""
    r = rng.random()
    status = next(s for s, share in STATUS_MIX if r < share)
    queue, task = rng.choice(QUEUES), rng.choice(TASKS)
    active = status in ACTIVE
    created = now - (timedelta(hours=2) if active else timedelta(days=days)) * rng.random()
    error_class, message = rng.choice(ERRORS)
    started = created + timedelta(seconds=rng.random() * 5) if status != "queued" else None
    run_seconds = 0.05 + rng.random() * 20
    finished = (started + timedelta(seconds=run_seconds + 30 * (per_job - 1))
                if status in ("succeeded", "dead", "cancelled") else None)
    job = Job(
        id=uuid.uuid4(), task_name=task, queue=queue, status=status,
        priority=10 if queue == "critical" else 0,
        args=[rng.randrange(100_000), "x"], kwargs={"rows": rng.randrange(1000)},
        attempt_count=0 if status == "queued" else per_job, max_attempts=max(3, per_job),
        last_attempt_number=per_job, created_at=created, run_after=created,
        started_at=started, finished_at=finished,
        idempotency_key=f"gen:{uuid.uuid4().hex[:20]}" if rng.random() < 0.2 else None,
        result={"ok": True, "rows": rng.randrange(1000)} if status == "succeeded" else None,
        last_error=f"{error_class}: {message}" if status in ("dead", "retrying", "queued")
        else "",
        lease_owner="worker-1:4242" if status == "running" else "",
        lease_expires_at=now + timedelta(seconds=30) if status == "running" else None,
        heartbeat_at=now if status == "running" else None,
    )
    attempts = []
    for n in range(1, per_job + 1):
        last = n == per_job
        a_status = {"succeeded": "succeeded", "cancelled": "cancelled",
                    "running": "running"}.get(status, "failed") if last else rng.choice(
            ["failed"] * 8 + ["timed_out", "lost"])
        a_class, a_message = (error_class, message) if last else rng.choice(ERRORS)
        failed = a_status in ("failed", "timed_out", "lost")
        a_started = created + timedelta(seconds=30 * (n - 1))
        a_finished = None if a_status == "running" else a_started + timedelta(seconds=run_seconds)
        attempts.append(Attempt(
            job=job, number=n, status=a_status, started_at=a_started, finished_at=a_finished,
            duration=a_finished - a_started if a_finished else None,
            retry_at=a_started + timedelta(seconds=30) if not last else None,
            worker_host=f"worker-{rng.randrange(8)}", worker_pid=1000 + rng.randrange(2000),
            error_class=a_class if failed else "", error_message=a_message if failed else "",
            traceback=TRACEBACK.format(module=task.split(".")[0], func=task.split(".")[1],
                                       cls=a_class, msg=a_message) if failed else "",
        ))
    letter = None
    if status == "dead":
        resolved = rng.random() < 0.4
        letter = DeadLetter(job=job, attempt=attempts[-1], attempts=per_job,
                            failed_at=finished, resolved_at=finished if resolved else None,
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


# One statement per chunk: the jobs, then (data-modifying CTEs reading the
# RETURNING rows) their attempts, dead letters and steps. Values that must
# agree between a job and its history (the error of its last attempt, say)
# are derived from bytes of the job's random id.
GENERATE_SQL = """
WITH src AS (
    SELECT g, gen_random_uuid() AS id,
           random() AS r_status, random() AS r_queue, random() AS r_task,
           random() AS r_age, random() AS r_run, random() AS r_key
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
), shaped AS (
    SELECT src.*,
           CASE WHEN r_status < 0.80 THEN 'succeeded' WHEN r_status < 0.84 THEN 'dead'
                WHEN r_status < 0.86 THEN 'cancelled' WHEN r_status < 0.89 THEN 'retrying'
                WHEN r_status < 0.90 THEN 'running' ELSE 'queued' END AS status,
           (%(queues)s::text[])[1 + floor(r_queue * cardinality(%(queues)s::text[]))::int]
               AS queue,
           (%(tasks)s::text[])[1 + floor(r_task * cardinality(%(tasks)s::text[]))::int]
               AS task_name,
           1 + get_byte(uuid_send(id), 0) %% cardinality(%(err_classes)s::text[]) AS err
    FROM src
), timed AS (
    SELECT shaped.*,
           now() - r_age * CASE WHEN status IN ('queued', 'running', 'retrying')
                                THEN interval '2 hours'
                                ELSE %(days)s * interval '1 day' END AS created_at,
           make_interval(secs => 0.05 + r_run * 20) AS run_for
    FROM shaped
), j AS (
    INSERT INTO jobs_job (
        id, task_name, args, kwargs, queue, priority, status, attempt_count, max_attempts,
        last_attempt_number, run_after, reserved_until, lease_owner, lease_expires_at,
        heartbeat_at, cancel_requested_at, idempotency_key, enqueued_by_id, result,
        last_error, created_at, started_at, finished_at)
    SELECT id, task_name,
           jsonb_build_array(floor(r_key * 100000)::int, 'x'),
           jsonb_build_object('rows', floor(r_run * 1000)::int),
           queue, CASE WHEN queue = 'critical' THEN 10 ELSE 0 END, status,
           CASE WHEN status = 'queued' THEN 0 ELSE %(per_job)s END,
           greatest(3, %(per_job)s), %(per_job)s,
           CASE WHEN status = 'retrying' THEN now() + r_run * interval '10 minutes'
                ELSE created_at END,
           NULL,
           CASE WHEN status = 'running' THEN 'worker-1:4242' ELSE '' END,
           CASE WHEN status = 'running' THEN now() + interval '30 seconds' END,
           CASE WHEN status = 'running' THEN now() END,
           NULL,
           CASE WHEN r_key < 0.2 THEN 'gen:' || substr(md5(id::text), 1, 20) END,
           NULL,
           CASE WHEN status = 'succeeded'
                THEN jsonb_build_object('ok', true, 'rows', floor(r_run * 1000)::int) END,
           CASE WHEN status IN ('dead', 'retrying', 'queued')
                THEN (%(err_classes)s::text[])[err] || ': ' || (%(err_messages)s::text[])[err]
                ELSE '' END,
           created_at,
           CASE WHEN status <> 'queued' THEN created_at + r_key * interval '5 seconds' END,
           CASE WHEN status IN ('succeeded', 'dead', 'cancelled')
                THEN created_at + r_key * interval '5 seconds' + run_for
                     + (%(per_job)s - 1) * interval '30 seconds' END
    FROM timed
    RETURNING id, status, task_name, created_at, finished_at
), a AS (
    INSERT INTO jobs_attempt (
        job_id, number, status, started_at, finished_at, duration, retry_at, worker_host,
        worker_pid, error_class, error_message, traceback, step_id)
    SELECT id, n, a_status, a_started,
           CASE WHEN a_status <> 'running' THEN a_started + run_for END,
           CASE WHEN a_status <> 'running' THEN run_for END,
           CASE WHEN n < %(per_job)s THEN a_started + interval '30 seconds' END,
           'worker-' || (get_byte(uuid_send(id), 5) %% 8),
           1000 + get_byte(uuid_send(id), 6) * 7,
           CASE WHEN failed THEN (%(err_classes)s::text[])[a_err] ELSE '' END,
           CASE WHEN failed THEN (%(err_messages)s::text[])[a_err] ELSE '' END,
           CASE WHEN failed THEN replace(replace(replace(replace(%(traceback)s,
                '{module}', split_part(task_name, '.', 1)),
                '{func}', split_part(task_name, '.', 2)),
                '{cls}', (%(err_classes)s::text[])[a_err]),
                '{msg}', (%(err_messages)s::text[])[a_err]) ELSE '' END,
           NULL
    FROM (
        SELECT j.*, n,
               j.created_at + (n - 1) * interval '30 seconds' AS a_started,
               make_interval(secs => 0.05 + get_byte(uuid_send(j.id), 7) / 12.75) AS run_for,
               1 + get_byte(uuid_send(j.id), CASE WHEN n = %(per_job)s THEN 0
                                                  ELSE 8 + n %% 8 END)
                   %% cardinality(%(err_classes)s::text[]) AS a_err,
               CASE WHEN n < %(per_job)s THEN
                        CASE get_byte(uuid_send(j.id), 8 + n %% 8) %% 10
                             WHEN 0 THEN 'timed_out' WHEN 1 THEN 'lost' ELSE 'failed' END
                    WHEN j.status IN ('succeeded', 'cancelled', 'running') THEN j.status
                    ELSE 'failed' END AS a_status
        FROM j CROSS JOIN generate_series(1, %(per_job)s) AS n
    ) AS per_attempt
    CROSS JOIN LATERAL (SELECT a_status IN ('failed', 'timed_out', 'lost') AS failed) AS f
    RETURNING id, job_id, number
), d AS (
    -- A dead letter points at the job's last attempt, which holds the error.
    INSERT INTO jobs_deadletter (
        job_id, attempt_id, attempts, failed_at, resolved_at, resolved_by_id, note)
    SELECT dead.id, a.id, %(per_job)s, finished_at,
           CASE WHEN resolved THEN finished_at + interval '1 hour' END, NULL,
           CASE WHEN resolved THEN 'known outage' ELSE '' END
    FROM (SELECT j.*, get_byte(uuid_send(id), 4) < 102 AS resolved
          FROM j WHERE status = 'dead') AS dead
    JOIN a ON a.job_id = dead.id AND a.number = %(per_job)s
)
INSERT INTO jobs_step (
    job_id, position, name, status, result, error_class, error_message, traceback, attempts,
    max_attempts, timeout, limits, progress_current, progress_total, progress_message,
    started_at, finished_at)
SELECT id, pos, name, s_status, NULL,
       CASE WHEN s_status = 'failed' THEN 'jobs.steps.LimitExceeded' ELSE '' END,
       CASE WHEN s_status = 'failed' THEN '6000 rows > max_rows 5000' ELSE '' END,
       '', CASE WHEN s_status = 'pending' THEN 0 ELSE 1 END, NULL, NULL,
       CASE WHEN name = 'transform' THEN '{"max_rows": 5000}'::jsonb ELSE '{}'::jsonb END,
       NULL, NULL, '', NULL, NULL
FROM (
    SELECT j.id, s.pos, s.name,
           CASE WHEN j.status = 'succeeded' OR (j.status = 'dead' AND s.pos < 3) THEN 'succeeded'
                WHEN j.status = 'dead' AND s.pos = 3 THEN 'failed'
                ELSE 'pending' END AS s_status
    FROM j CROSS JOIN unnest(%(steps)s::text[]) WITH ORDINALITY AS s(name, pos)
    WHERE j.task_name = %(step_task)s
) AS planned
"""
