"""PostgreSQL only: the runnable notification names the job (jobs.worker.wakeup).

The payload becomes a JSON object: {"q": queue, "at": run_after as epoch
seconds, "id": job id, "t": task name}. An idle cluster hands a job it hears
of straight to a worker, without first reserving it (one round trip less per
idle job); the worker's claim is still the only fence. A cluster of the
previous release does not read this payload and polls (every
JOBS['LISTEN_FALLBACK_SECONDS']) until it is replaced.
"""

from importlib import import_module

from django.db import migrations

# Going back restores 0002's function: "<queue> <run_after as epoch seconds>".
previous = import_module("jobs.migrations.0002_notify_trigger").create

CREATE = """
CREATE OR REPLACE FUNCTION jobs_notify_runnable() RETURNS trigger AS $$
BEGIN
    IF NEW.status IN ('queued', 'retrying') AND (TG_OP = 'INSERT'
            OR OLD.status IS DISTINCT FROM NEW.status OR OLD.run_after IS DISTINCT FROM NEW.run_after)
    THEN
        PERFORM pg_notify('jobs_runnable', json_build_object(
            'q', NEW.queue, 'at', extract(epoch FROM NEW.run_after),
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
    dependencies = [("jobs", "0008_cluster_worker_pids")]
    operations = [migrations.RunPython(create, previous, elidable=False)]
