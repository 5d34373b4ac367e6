"""Rows for dashboard tests, written directly: for tests that only read them."""

import factory
from django.contrib.auth.models import Permission

from jobs.models import Step, StepStatus
from tests.factories import JobFactory, StaffFactory


class StepFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Step

    job = factory.SubFactory(JobFactory)
    position = factory.Sequence(lambda n: n + 1)
    name = factory.Sequence(lambda n: f"step-{n}")
    status = StepStatus.PENDING


def staff_with(*codenames: str):
    """A staff user holding exactly these permissions (fresh, so the cache is empty)."""
    user = StaffFactory()
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return type(user).objects.get(pk=user.pk)


def superuser():
    return StaffFactory(username="ops", is_superuser=True)
