"""Which jobs a filter means: the engine's own jobs stay out of job lists unless asked."""

import pytest

from jobs.models.ids import short_id
from jobs.ops import search
from jobs.ops.search import OPERATION_TASK
from tests.factories import JobFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def jobs():
    return JobFactory(task_name="tests.add"), JobFactory(task_name=OPERATION_TASK)


@pytest.mark.parametrize(("filters", "shown"), [
    ({}, False),
    ({"status": "queued"}, False),
    ({"engine": True}, True),
    ({"engine": True, "status": "queued"}, True),
    ({"task": OPERATION_TASK}, True),
])
def test_the_engine_s_own_jobs_are_listed_only_when_asked_for_or_named(jobs, filters, shown):
    mine, engine = jobs
    found = set(search.matching(filters).values_list("pk", flat=True))
    assert mine.pk in found or filters.get("task")
    assert (engine.pk in found) is shown


def test_a_search_for_the_engine_s_job_by_id_finds_it(jobs):
    _, engine = jobs
    for term in (str(engine.pk), short_id(engine.pk)):
        assert list(search.matching({"q": term}).values_list("pk", flat=True)) == [engine.pk]


def test_every_engine_task_is_a_task_the_engine_registers():
    from jobs.core.registry import registered_tasks

    assert search.ENGINE_TASKS <= set(registered_tasks())
