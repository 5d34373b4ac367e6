import factory
from django.contrib.auth import get_user_model
from django.db.models import Max
from django.utils import timezone

from jobs.models import Attempt, AttemptStatus, DeadLetter, Job, JobStatus


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("pw")


class StaffFactory(UserFactory):
    is_staff = True


class JobFactory(factory.django.DjangoModelFactory):
    """A row in any state, written directly: for reading and transition tests only."""

    class Meta:
        model = Job

    task_name = "tests.add"
    args = factory.LazyFunction(lambda: [1, 2])
    kwargs = factory.LazyFunction(dict)
    status = JobStatus.QUEUED
    max_attempts = 3
    run_after = factory.LazyFunction(timezone.now)


class AttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Attempt

    job = factory.SubFactory(JobFactory, status=JobStatus.RUNNING)
    number = 1
    status = AttemptStatus.RUNNING
    worker_host = "test-host"
    worker_pid = 4242


def _next_attempt_number(job: Job) -> int:
    return (Attempt.objects.filter(job=job).aggregate(m=Max("number"))["m"] or 0) + 1


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    class Params:
        error_class = "RuntimeError"
        error_message = "boom"

    job = factory.SubFactory(JobFactory, status=JobStatus.DEAD)
    # The final attempt holds the error; the letter points at it.
    attempt = factory.SubFactory(
        AttemptFactory, job=factory.SelfAttribute("..job"), status=AttemptStatus.FAILED,
        number=factory.LazyAttribute(lambda a: _next_attempt_number(a.factory_parent.job)),
        error_class=factory.SelfAttribute("..error_class"),
        error_message=factory.SelfAttribute("..error_message"),
    )
    attempts = 3
