"""Every log line written while a job runs says which job, task and attempt wrote it,
whichever logger it went through; lines outside a job say nothing."""

import logging

import pytest

from jobs import enqueue
from jobs.worker.runner import run_job

pytestmark = pytest.mark.django_db


def test_lines_written_inside_a_job_carry_its_id_task_and_attempt(caplog):
    caplog.set_level(logging.INFO)
    job = enqueue("tests.logs_a_line", "hello")
    logging.getLogger("elsewhere").info("outside any job")
    run_job(job.pk)
    inside = [r for r in caplog.records if r.getMessage() == "task says hello"]
    (record,) = inside
    assert (record.job_id, record.job_task, record.job_attempt) == (str(job.pk),
                                                                   "tests.logs_a_line", 1)
    assert record.job == f"job={job.pk} task=tests.logs_a_line attempt=1"
    (outside,) = [r for r in caplog.records if r.getMessage() == "outside any job"]
    assert outside.job == "" and outside.job_id == ""
