"""PostgreSQL only: tell listening clusters when a job becomes runnable (jobs.worker.wakeup).

A trigger, not a statement in enqueue(): no extra round trip per job, and the
notification is sent at COMMIT (never on rollback), for every path that makes a
job runnable: enqueue, retry, requeue, resume, release. The payload is
"<queue> <run_after as epoch seconds>", so a delayed job wakes its cluster at
its run_after.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION jobs_notify_runnable() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('queued', 'retrying') AND (TG_OP = 'INSERT'
            OR OLD.status IS DISTINCT FROM NEW.status OR OLD.run_after IS DISTINCT FROM NEW.run_after)
    THEN
        PERFORM pg_notify('jobs_runnable', NEW.queue || ' ' || extract(epoch FROM NEW.run_after));
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS jobs_notify_runnable ON jobs_job;
CREATE TRIGGER jobs_notify_runnable AFTER INSERT OR UPDATE OF status, run_after ON jobs_job
    FOR EACH ROW EXECUTE FUNCTION jobs_notify_runnable();
"""
DROP = """
DROP TRIGGER IF EXISTS jobs_notify_runnable ON jobs_job;
DROP FUNCTION IF EXISTS jobs_notify_runnable();
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]
    operations = [migrations.RunPython(create, drop, elidable=False)]
