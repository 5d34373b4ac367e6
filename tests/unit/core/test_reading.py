"""Rows read by the hot statements become models with converters worked out once
(jobs.core.statements), and that cache keeps no thread's connection alive."""

import gc
import threading
import weakref

import pytest
from django.db import connections

from jobs.core import statements
from jobs.models import Job
from tests.factories import JobFactory


def test_a_threads_connection_is_freed_when_the_thread_ends():
    """A cache keyed on the connection held every thread's connection open (a
    session left over when the test database was dropped)."""
    seen = []

    def work():
        conn = connections["default"]
        statements._reading(Job, conn)
        seen.append(weakref.ref(conn))  # its connection is never closed by hand

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    gc.collect()
    assert seen and seen[0]() is None


@pytest.mark.django_db
def test_a_row_read_back_is_the_job_as_the_orm_reads_it():
    job = JobFactory(args=[1, "two"], kwargs={"three": 3})
    with statements.cursor() as cursor:
        cursor.execute(f"SELECT {statements.columns(Job)} FROM jobs_job WHERE id = %s",
                       [Job._meta.pk.get_db_prep_value(job.pk, connections["default"])])
        row = cursor.fetchone()
    read = statements.instance(Job, row)
    fresh = Job.objects.get(pk=job.pk)
    assert [getattr(read, f.attname) for f in Job._meta.concrete_fields] == \
        [getattr(fresh, f.attname) for f in Job._meta.concrete_fields]
