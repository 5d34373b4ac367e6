"""bench/dataset.py's statement for PostgreSQL: one chunk of jobs and their history.

Apart from the generator so each stays readable; the rules (what each status's
row holds) are the generator's docstring's, and its `_fake_job` writes the same
rows on other databases.

One statement per chunk: the jobs, then (data-modifying CTEs reading the same
materialized rows) their attempts, dead letters and steps. Ids are UUIDv7 built
from each job's creation time, bit for bit as jobs.models.ids lays them out.
Values that must agree between a job and its history (the error of its last
attempt, the attempts' run time) are derived from bytes of an md5 of the job's
id, which the attempts' CTE can compute again.
"""

GENERATE_SQL = """
WITH src AS MATERIALIZED (
    SELECT random() AS r_status, random() AS r_queue, random() AS r_task,
           random() AS r_age, random() AS r_run, random() AS r_key,
           floor(random() * 4096)::bigint AS rand_a,
           floor(random() * 1073741824)::bigint AS rand_b
    FROM generate_series(%(first)s::int, %(last)s::int) AS g
), shaped AS (
    SELECT src.*, status,
           (%(queues)s::text[])[1 + floor(r_queue * cardinality(%(queues)s::text[]))::int]
               AS queue,
           (%(tasks)s::text[])[1 + floor(r_task * cardinality(%(tasks)s::text[]))::int]
               AS task_name,
           now() - r_age * CASE WHEN status IN ('queued', 'running', 'retrying')
                                THEN interval '2 hours'
                                ELSE %(days)s * interval '1 day' END AS created_at
    FROM src CROSS JOIN LATERAL (SELECT
           CASE WHEN r_status < 0.80 THEN 'succeeded' WHEN r_status < 0.84 THEN 'dead'
                WHEN r_status < 0.86 THEN 'cancelled' WHEN r_status < 0.89 THEN 'retrying'
                WHEN r_status < 0.90 THEN 'running' ELSE 'queued' END AS status) AS s
), ided AS (
    -- 48 bits of milliseconds, version 7, 12 random bits, variant 10, 30 random bits,
    -- 32 bits of microseconds (jobs.models.ids).
    SELECT shaped.*,
           (lpad(to_hex(micros / 1000), 12, '0') || '7' || lpad(to_hex(rand_a), 3, '0')
            || lpad(to_hex(2147483648 | rand_b), 8, '0')
            || lpad(to_hex(micros & 4294967295), 8, '0'))::uuid AS id
    FROM shaped CROSS JOIN LATERAL (
        SELECT floor(extract(epoch FROM created_at) * 1000000)::bigint AS micros) AS m
), timed AS (
    SELECT ided.*, first_start, run_for,
           first_start + (%(per_job)s - 1) * interval '30 seconds' AS last_start,
           first_start + (%(per_job)s - 1) * interval '30 seconds' + run_for AS last_end,
           1 + get_byte(h, 0) %% cardinality(%(err_classes)s::text[]) AS err,
           -- the latest failure: the last attempt, or the one before when it did not fail
           CASE WHEN status IN ('dead', 'retrying', 'queued')
                THEN 1 + get_byte(h, 0) %% cardinality(%(err_classes)s::text[])
                WHEN %(per_job)s > 1
                THEN 1 + get_byte(h, 8 + (%(per_job)s - 1) %% 8)
                         %% cardinality(%(err_classes)s::text[]) END AS failed_err,
           CASE WHEN status IN ('dead', 'retrying', 'queued')
                THEN first_start + (%(per_job)s - 1) * interval '30 seconds' + run_for
                WHEN %(per_job)s > 1
                THEN first_start + (%(per_job)s - 2) * interval '30 seconds' + run_for
                END AS failed_at
    FROM ided CROSS JOIN LATERAL (SELECT decode(md5(ided.id::text), 'hex') AS h) AS hashed
    CROSS JOIN LATERAL (
        SELECT ided.created_at + get_byte(h, 1) / 51.0 * interval '1 second' AS first_start,
               make_interval(secs => 0.05 + get_byte(h, 7) / 12.75) AS run_for) AS t
), jobs AS MATERIALIZED (
    SELECT timed.*,
           CASE WHEN status = 'retrying'
                THEN greatest(last_end, now()) + r_run * interval '10 minutes' END AS retry_at
    FROM timed
), j AS (
    INSERT INTO jobs_job (
        id, task_name, args, kwargs, queue, priority, status, attempt_count, max_attempts,
        last_attempt_number, run_after, reserved_until, lease_owner, lease_expires_at,
        heartbeat_at, cancel_requested_at, idempotency_key, enqueued_by_id, result,
        last_error, failure_cause, last_failed_at, created_at, started_at, finished_at)
    SELECT id, task_name,
           jsonb_build_array(floor(r_key * 100000)::int, 'x'),
           jsonb_build_object('rows', floor(r_run * 1000)::int),
           queue, CASE WHEN queue = 'critical' THEN 10 ELSE 0 END, status,
           CASE WHEN status = 'queued' THEN 0 ELSE %(per_job)s END,
           CASE WHEN status IN ('dead', 'queued') THEN %(per_job)s
                WHEN status = 'retrying' THEN greatest(3, %(per_job)s + 1)
                ELSE greatest(3, %(per_job)s) END,
           %(per_job)s,
           CASE WHEN status = 'retrying' THEN retry_at
                WHEN status = 'queued' THEN least(last_end, now())
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
           CASE WHEN status IN ('dead', 'retrying')
                THEN (%(err_classes)s::text[])[err] || ': ' || (%(err_messages)s::text[])[err]
                ELSE '' END,
           CASE WHEN status <> 'queued' AND failed_err IS NOT NULL
                THEN (%(err_causes)s::text[])[failed_err] ELSE '' END,
           failed_at,
           created_at,
           CASE WHEN status <> 'queued' THEN last_start END,
           CASE WHEN status IN ('succeeded', 'dead', 'cancelled') THEN last_end END
    FROM jobs
    RETURNING id
), a AS (
    INSERT INTO jobs_attempt (
        job_id, number, status, started_at, finished_at, duration, retry_at, worker_host,
        worker_pid, error_class, error_message, traceback, step_id)
    SELECT id, n, a_status, a_started,
           CASE WHEN a_status <> 'running' THEN a_started + run_for END,
           CASE WHEN a_status <> 'running' THEN run_for END,
           CASE WHEN n < %(per_job)s THEN a_started + interval '30 seconds'
                WHEN status = 'retrying' THEN retry_at END,
           'worker-' || (get_byte(h, 5) %% 8),
           1000 + get_byte(h, 6) * 7,
           CASE WHEN failed THEN (%(err_classes)s::text[])[a_err] ELSE '' END,
           CASE WHEN failed THEN (%(err_messages)s::text[])[a_err] ELSE '' END,
           CASE WHEN failed THEN replace(replace(replace(replace(%(traceback)s,
                '{module}', split_part(task_name, '.', 1)),
                '{func}', split_part(task_name, '.', 2)),
                '{cls}', (%(err_classes)s::text[])[a_err]),
                '{msg}', (%(err_messages)s::text[])[a_err]) ELSE '' END,
           NULL
    FROM (
        SELECT jobs.*, n, h,
               first_start + (n - 1) * interval '30 seconds' AS a_started,
               1 + get_byte(h, CASE WHEN n = %(per_job)s THEN 0 ELSE 8 + n %% 8 END)
                   %% cardinality(%(err_classes)s::text[]) AS a_err,
               CASE WHEN n < %(per_job)s THEN
                        CASE get_byte(h, 8 + n %% 8) %% 10
                             WHEN 0 THEN 'timed_out' WHEN 1 THEN 'lost' ELSE 'failed' END
                    WHEN jobs.status IN ('succeeded', 'cancelled', 'running') THEN jobs.status
                    ELSE 'failed' END AS a_status
        FROM jobs CROSS JOIN generate_series(1, %(per_job)s) AS n
        CROSS JOIN LATERAL (SELECT decode(md5(jobs.id::text), 'hex') AS h) AS hashed
    ) AS per_attempt
    CROSS JOIN LATERAL (SELECT a_status IN ('failed', 'timed_out', 'lost') AS failed) AS f
    RETURNING id, job_id, number
), d AS (
    -- A dead letter points at the job's last attempt, which holds the error.
    INSERT INTO jobs_deadletter (
        job_id, attempt_id, attempts, failed_at, resolved_at, resolved_by_id, note)
    SELECT dead.id, a.id, %(per_job)s, last_end,
           CASE WHEN resolved THEN last_end + interval '1 hour' END, NULL,
           CASE WHEN resolved THEN 'known outage' ELSE '' END
    FROM (SELECT jobs.*, get_byte(decode(md5(id::text), 'hex'), 4) < 102 AS resolved
          FROM jobs WHERE status = 'dead') AS dead
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
    SELECT jobs.id, s.pos, s.name,
           CASE WHEN jobs.status = 'succeeded' OR (jobs.status = 'dead' AND s.pos < 3)
                THEN 'succeeded'
                WHEN jobs.status = 'dead' AND s.pos = 3 THEN 'failed'
                ELSE 'pending' END AS s_status
    FROM jobs CROSS JOIN unnest(%(steps)s::text[]) WITH ORDINALITY AS s(name, pos)
    WHERE jobs.task_name = %(step_task)s
) AS planned
"""
