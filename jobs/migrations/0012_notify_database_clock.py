"""PostgreSQL only: the runnable notification carries the database's clock.

The payload gains "n", `statement_timestamp()` as epoch seconds when the trigger
ran, beside "at" (the job's run_after). A listening cluster waits `at - n` from
when it hears the notification, by its own clock's elapsed time, so a host whose
clock is off wakes for a delayed job on time by the database's clock
(jobs.worker.wakeup.Heard.due_here). A cluster of the previous release ignores
the new key.
"""

from importlib import import_module

from django.db import migrations

# Going back restores 0009's function.
previous = import_module("jobs.migrations.0009_notify_job_id").create

CREATE = """
CREATE OR REPLACE FUNCTION jobs_notify_runnable() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('queued', 'retrying') AND (TG_OP = 'INSERT'
            OR OLD.status IS DISTINCT FROM NEW.status OR OLD.run_after IS DISTINCT FROM NEW.run_after)
    THEN
        PERFORM pg_notify('jobs_runnable', json_build_object(
            'q', NEW.queue, 'at', extract(epoch FROM NEW.run_after),
            'n', extract(epoch FROM statement_timestamp()),
            'id', NEW.id, 't', NEW.task_name)::text);
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0011_attempt_worker_identity")]
    operations = [migrations.RunPython(create, previous, elidable=False)]
