"""The task-name rule (jobs.core.registry.check_task_name) and the queue-name rule
(jobs.core.queues.check_name): each written once, checked everywhere a name enters,
and every name the task rule accepts can travel in every dashboard URL that
carries one (issue 21: a name with "/" made those pages 500 for every user)."""

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from jobs.core import registry
from jobs.core.enqueue import enqueue
from jobs.core.queues import check_name, pause
from jobs.core.registry import MAX_TASK_NAME, check_task_name, task
from jobs.exceptions import (
    InvalidJobOption,
    InvalidQueueName,
    InvalidTaskName,
    JobsError,
    TaskRegistrationError,
)
from jobs.models import Job, JobStatus
from tests.factories import JobFactory
from tests.framework import InvalidTask as InvalidTaskError
from tests.framework import task as django_task
from tests.testapp.standard_tasks import multiply
from tests.ui.dashboard.factories import superuser

pytestmark = pytest.mark.django_db

# At the edge of the rule, on the inside: shortest, longest, every punctuation mark
# it allows at every position it allows it, default names of nested functions and
# lambdas, names in other scripts (percent-encoded in URLs).
EDGE_NAMES = [
    "a", "_", "9", "x" * MAX_TASK_NAME,
    "myapp.tasks.send_email", "tests.test_x.<locals>.helper", "m.<lambda>",
    "billing:charge-card", "a..b", "a.", "a-", "a:", "a<", "a>", "_.-:<>",
    "app.tâches.envoyer", "приложение.задача", "任务", "Ω_2.ℕ",
]
REFUSED_NAMES = [
    "", ".", "..", "-a", ":a", "<locals>", "a/b", "/", "reports/daily", "a?b", "a#b",
    "a%b", "a%2Fb", "a b", " a", "a ", "a\t", "a\n", "a\r", "a\x00", "a\x1f", "a\x7f",
    "a\ud800", "a\udfff", "x" * (MAX_TASK_NAME + 1), "a\u202e", "a\ufeff", "a\u00a0b",
    "a&b", "a+b", "a\\b", "a'b", 'a"b', "a;b", "a=b", "a,b", "a(b)", "a*", "a!",
    None, 5, b"a", ["a"],
]


@pytest.fixture
def scratch_registry(monkeypatch):
    """Registrations made by the test vanish with it."""
    monkeypatch.setattr(registry, "_registry", dict(registry._registry))


class TestTaskNameRule:
    @pytest.mark.parametrize("name", EDGE_NAMES)
    def test_accepted(self, name):
        assert check_task_name(name) is name

    @pytest.mark.parametrize("name", REFUSED_NAMES)
    def test_refused_naming_the_argument_and_the_rule(self, name):
        with pytest.raises(InvalidTaskName, match=r"^name .* is not a valid task name: a task "
                                                  r"name is 1 to 200 characters") as caught:
            check_task_name(name)
        assert isinstance(caught.value, TaskRegistrationError)
        assert isinstance(caught.value, JobsError)

    @pytest.mark.parametrize("name", ["reports/daily", "", "a b", "a\x00", "x" * 201])
    def test_task_refuses_it_and_registers_nothing(self, name, scratch_registry):
        before = registry.registered_tasks()
        with pytest.raises(InvalidTaskName, match="not a valid task name"):
            task(name=name)(lambda: None)
        assert registry.registered_tasks() == before

    def test_an_explicit_empty_name_is_refused_not_replaced_by_the_dotted_path(
            self, scratch_registry):
        with pytest.raises(InvalidTaskName, match="^name ''"):
            @task(name="")
            def named_nothing() -> None: ...

    def test_every_name_registered_by_the_project_fits(self):
        for name in registry.registered_tasks():
            assert check_task_name(name) == name

    def test_a_django_task_whose_path_breaks_the_rule_is_invalid(self, scratch_registry):
        def func(a: int) -> int:
            return a
        func.__qualname__ = "reports/daily"  # no "<locals>": Django takes it for module level
        with pytest.raises(InvalidTaskError, match="reports/daily' is not a valid task name"):
            django_task()(func)
        assert not any("reports/daily" in name for name in registry.registered_tasks())


class TestQueueNameRule:
    @pytest.mark.parametrize("name", ["default", "q", "x" * 64, "emails high", "a/b", "é"])
    def test_accepted_by_enqueue_task_pause_and_the_django_backend(self, name,
                                                                  scratch_registry):
        assert check_name(name) is name
        assert enqueue("tests.add", 1, 2, queue=name).queue == name
        assert task(name="tests.queued_here", queue=name)(lambda: None).queue == name
        assert pause(name) is True
        assert multiply.using(queue_name=name).enqueue(2, 3)

    @pytest.mark.parametrize("name", ["", " padded", "padded ", " ", "x" * 65, "a\x00b",
                                      "a\ud800", "a\nb", "a\u00a0b", "\u2028", 5])  # None: default
    def test_refused_the_same_way_everywhere(self, name, scratch_registry):
        rule = r"must be a non-empty string of at most 64 printable characters"
        with pytest.raises(InvalidQueueName, match=rule):
            check_name(name)
        with pytest.raises(InvalidQueueName, match=rule):
            enqueue("tests.add", 1, 2, queue=name)
        with pytest.raises(InvalidJobOption, match=rule):  # InvalidQueueName is one
            task(name="tests.queued_here", queue=name)(lambda: None)
        with pytest.raises(InvalidQueueName, match=rule):
            pause(name)
        if isinstance(name, str):
            with pytest.raises(InvalidTaskError, match="queue_name must be"):
                multiply.using(queue_name=name)
        assert not Job.objects.exists()


def test_every_url_carrying_a_task_name_works_for_every_name_the_rule_accepts(
        scratch_registry):
    """The task page, the job page and its live fragment, the failures and tasks
    pages, for a job of each edge name: all reverse and answer 200."""
    client = Client()
    client.force_login(superuser())
    now = timezone.now()
    for name in EDGE_NAMES:
        task(name=name)(lambda: None)
        job = JobFactory(task_name=name, status=JobStatus.DEAD, failure_cause="RuntimeError: x",
                         last_failed_at=now, finished_at=now)
        for url in (reverse("dashboard:task", args=[name]),
                    reverse("dashboard:job", args=[job.pk]),
                    reverse("dashboard:job-live", args=[job.pk])):
            response = client.get(url)
            assert response.status_code == 200, (name, url)
        page = client.get(reverse("dashboard:job", args=[job.pk])).content.decode()
        assert reverse("dashboard:task", args=[name]) in page, name  # the page links it
    for page in ("dashboard:failures", "dashboard:tasks"):
        response = client.get(reverse(page))
        assert response.status_code == 200, page
