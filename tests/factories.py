import factory
from django.contrib.auth import get_user_model
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


class DeadLetterFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeadLetter

    job = factory.SubFactory(JobFactory, status=JobStatus.DEAD)
    error_class = "RuntimeError"
    error_message = "boom"
    attempts = 3
