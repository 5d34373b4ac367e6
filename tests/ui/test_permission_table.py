"""Every route of the URLconf, every method, every role, against jobs.ops.access.ROUTES.

The table is the one statement of who may do what; this test makes it the
truth. It walks the whole URLconf (admin, dashboard, API, demo, the project's
own), fills each route's arguments with a real object, and requests it as each
role with GET and POST (CSRF enforced, with a valid token). An allowed role must
not get 401, 403 or the login redirect (nor a 5xx); a refused one must. A route
that is missing from the table, or an entry no route has, fails by name.

Then the job-data rule on its own: staff without jobs.view_job see no
argument, result, error or traceback on any page, while a job's owner reads
their own job's status.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from jobs.models import (
    AttemptStatus,
    Job,
    JobStatus,
    OperatorAction,
    QueuePause,
    Schedule,
    Step,
    StepStatus,
)
from jobs.ops import access
from jobs.ops.values import VALUE_FIELDS
from tests.factories import DeadLetterFactory, StaffFactory, UserFactory

pytestmark = pytest.mark.django_db

CSRF = "k" * 32  # a valid unmasked secret: sent as cookie and header, so checks pass for real
SECRETS = ("SECRET-ARG", "SECRET-KWARG", "SECRET-RESULT", "SECRET-ERROR", "SECRET-TRACE",
           "SECRET-STEP", "SECRET-CAUSE")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "security.md"


# --- The URLconf -----------------------------------------------------------------------


def walk(resolver: URLResolver | None = None, prefix: str = "",
         namespace: str = "") -> Iterator[tuple[str, str]]:
    """(table key, full route) for every URL pattern: its namespaced name, or for an
    unnamed pattern the route itself."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            inner = (f"{namespace}:{entry.namespace}" if namespace else entry.namespace
                     ) if entry.namespace else namespace
            yield from walk(entry, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern):
            route = prefix + str(entry.pattern)
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield name or route, route


def test_every_route_has_a_rule_for_get_and_post_and_every_rule_a_route():
    routes = {key for key, _ in walk()}
    missing = sorted(f"{key} {method}" for key in routes for method in access.METHODS
                     if access.rule_for(key, method) is None)
    assert not missing, f"routes without a rule in jobs/ops/access.py: {missing}"
    stale = sorted(set(access.ROUTES) - routes)
    assert not stale, f"rules for routes the URLconf does not have: {stale}"


# --- The world: one object of each kind --------------------------------------------------


@pytest.fixture(autouse=True)
def fast(settings: Any) -> None:
    """Cheap password hashes for the dozens of users, and sessions in signed cookies: no
    session query per request, so some ten thousand requests take seconds, not minutes."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"


@pytest.fixture
def world() -> dict[str, Any]:
    owner = UserFactory(username="owner")
    letter = DeadLetterFactory(
        job__args=["SECRET-ARG"], job__kwargs={"k": "SECRET-KWARG"},
        job__result={"r": "SECRET-RESULT"}, job__enqueued_by=owner,
        job__last_error="SecretError: SECRET-ERROR", job__failure_cause="SECRET-CAUSE",
        job__last_failed_at=timezone.now(),
        attempt__traceback="Traceback: SECRET-TRACE", error_message="SECRET-ERROR")
    job = letter.job
    Job.objects.filter(pk=job.pk).update(attempt_count=1, last_attempt_number=1)
    step = Step.objects.create(job=job, position=1, name="load", status=StepStatus.FAILED,
                               result={"s": "SECRET-STEP"}, error_class="StepError",
                               error_message="SECRET-STEP", traceback="SECRET-STEP trace",
                               limits={"rows": 10})
    letter.attempt.step = step
    letter.attempt.status = AttemptStatus.FAILED
    letter.attempt.save()
    schedule = Schedule.objects.create(name="nightly", task_name="tests.add", args=[1, 2],
                                       time_zone="UTC", cron="0 3 * * *")
    operation = OperatorAction.objects.create(action="requeue", user=owner, username="owner",
                                              target={"ids": [str(job.pk)]}, done=1)
    pause = QueuePause.objects.create(queue="paused-queue")
    return {"job": Job.objects.get(pk=job.pk), "letter": letter, "attempt": letter.attempt,
            "step": step, "schedule": schedule, "operation": operation, "pause": pause,
            "owner": owner, "group": Group.objects.create(name="operators")}


def objects_by_model(world: dict[str, Any]) -> dict[str, Any]:
    return {"jobs/job": world["job"], "jobs/attempt": world["attempt"],
            "jobs/step": world["step"], "jobs/deadletter": world["letter"],
            "jobs/schedule": world["schedule"], "jobs/operatoraction": world["operation"],
            "jobs/queuepause": world["pause"], "auth/user": world["owner"],
            "auth/group": world["group"]}


ARGUMENT = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def route_kwargs(route: str, world: dict[str, Any]) -> dict[str, Any]:
    """A real value for each of the route's arguments."""
    job, step = world["job"], world["step"]
    parts = route.split("/")
    model = "/".join(parts[1:3]) if route.startswith("admin/") else ""
    values = {
        "job_id": job.pk, "step_id": step.pk, "action": "requeue",
        "kind": "attempt", "pk": world["attempt"].pk, "field": "traceback",
        "operation_id": world["operation"].pk, "task_name": job.task_name, "report_id": 7,
        "app_label": "jobs", "content_type_id": ContentType.objects.get_for_model(Job).pk,
        "id": world["owner"].pk, "url": "nothing-here/",
        "object_id": (objects_by_model(world)[model].pk if model in objects_by_model(world)
                      else job.pk),
    }
    names = [a or b for a, b in ARGUMENT.findall(route)]
    return {name: values[name] for name in names}


def url_of(key: str, route: str, kwargs: dict[str, Any]) -> str:
    if key != route:
        return reverse(key, kwargs=kwargs)
    if "(?P<url>" in route:
        return "/" + route.split("(")[0] + kwargs["url"]
    return "/" + ARGUMENT.sub(lambda m: str(kwargs[m.group(1) or m.group(2)]), route)


# --- Roles -------------------------------------------------------------------------------


def staff_with(*perms: Permission, **fields: Any):
    user = StaffFactory(**fields)
    user.user_permissions.add(*perms)
    return type(user).objects.get(pk=user.pk)  # fresh: no permission cache


def roles() -> list[tuple[str, Any]]:
    """The roles of the issue. Each single permission of the jobs app is a role of its
    own, except those of models no route serves (cluster, operation keys and targets):
    they are one role holding them all, which must get no more than staff with none.
    (Every check here only ever adds rights, so what all of them together do not open,
    none of them opens alone.)"""
    jobs_perms = list(Permission.objects.filter(content_type__app_label="jobs")
                      .select_related("content_type").order_by("codename"))
    served = {route.split("/")[2] for _, route in walk() if route.startswith("admin/jobs/")}
    unserved = [p for p in jobs_perms if p.content_type.model not in served]
    out: list[tuple[str, Any]] = [
        ("anonymous", None),
        ("inactive staff", staff_with(*jobs_perms, is_active=False)),
        ("active non-staff", UserFactory()),
        ("staff, no permission", staff_with()),
        ("view-only staff", staff_with(*[p for p in jobs_perms
                                         if p.codename.startswith("view_")])),
    ]
    out += [(f"staff + {p.codename}", staff_with(p)) for p in jobs_perms if p not in unserved]
    out.append(("staff + every permission of models without pages", staff_with(*unserved)))
    out.append(("superuser", StaffFactory(is_superuser=True)))
    return out


def client_for(user: Any) -> Client:
    client = Client(enforce_csrf_checks=True, HTTP_X_CSRFTOKEN=CSRF)
    client.cookies["csrftoken"] = CSRF
    if user is not None:
        client.force_login(user)
    return client


LOGIN = "/admin/login/"


def refused(response: Any, rule: access.Rule) -> bool:
    """403, 401 (the API), 404 where the rule hides the object, or the login redirect."""
    if response.status_code in (401, 403) or (rule.hides and response.status_code == 404):
        return True
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_every_route_answers_every_role_as_the_table_says(world):
    cast = roles()
    clients = {name: client_for(user) for name, user in cast}
    wrong: list[str] = []
    for key, route in sorted(walk()):
        kwargs = route_kwargs(route, world)
        url = url_of(key, route, kwargs)
        for method in access.METHODS:
            rule = access.rule_for(key, method)
            assert rule is not None, f"{key} {method} has no rule in jobs/ops/access.py"
            for name, user in cast:
                client = clients[name]
                response = client.get(url) if method == "GET" else client.post(url)
                if key == "admin:logout" and user is not None:
                    client.force_login(user)  # signed out by the request: sign back in
                who = user or AnonymousUser()
                status = response.status_code
                if not rule.served:
                    ok = not 200 <= status < 300
                elif rule.allows(who, **kwargs):
                    # 503 is healthz saying "unhealthy" (no cluster runs here); any other
                    # 5xx is a bug whoever asks.
                    ok = not refused(response, rule) and (status < 500 or
                                                          key == "healthz" and status == 503)
                else:
                    ok = refused(response, rule)
                if not ok:
                    where = response.get("Location", "")
                    wrong.append(f"{method} {url} ({key}) as {name}: {status} {where} — "
                                 f"table: {rule.says}, "
                                 f"{'allowed' if rule.allows(who, **kwargs) else 'refused'}")
    assert not wrong, "\n".join(wrong)


def test_a_post_without_the_csrf_token_is_refused_on_every_route(world):
    root = StaffFactory(is_superuser=True)
    client = Client(enforce_csrf_checks=True)
    client.force_login(root)
    for key, route in walk():
        url = url_of(key, route, route_kwargs(route, world))
        response = client.post(url)
        assert response.status_code == 403 and b"CSRF" in response.content, (key, url)


# --- The job-data rule ---------------------------------------------------------------------


def test_staff_without_view_job_see_no_job_data_anywhere(world):
    """Every other permission of the jobs app, but not jobs.view_job: every page either
    refuses or shows none of the job's arguments, result, error or traceback."""
    perms = Permission.objects.filter(content_type__app_label="jobs").exclude(
        codename="view_job")
    client = client_for(staff_with(*perms))
    job = world["job"]
    for key, route in walk():
        if key == "admin:logout":
            continue
        url = url_of(key, route, route_kwargs(route, world))
        body = client.get(url).content.decode(errors="replace")
        assert not [s for s in SECRETS if s in body], (key, url)
    for name in ("dashboard:job", "dashboard:job-live"):
        assert client.get(reverse(name, args=[job.pk])).status_code == 403
    for kind, fields in VALUE_FIELDS.items():
        pk = {"job": job.pk, "attempt": world["attempt"].pk, "step": world["step"].pk,
              "deadletter": world["letter"].pk}[kind]
        for field in fields:
            for name in ("dashboard:value", "admin:jobs_value"):
                assert client.get(reverse(name, args=[kind, pk, field])).status_code == 403
    assert client.get(reverse("jobs_api:job-status", args=[job.pk])).status_code == 404
    assert client.get(reverse("dashboard:overview")).status_code == 200  # figures stay


def test_the_owner_reads_their_own_jobs_status_and_a_reader_every_job(world):
    job = world["job"]
    url = reverse("jobs_api:job-status", args=[job.pk])
    body = client_for(world["owner"]).get(url).json()
    assert body["status"] == JobStatus.DEAD and "SECRET-ERROR" in body["error"]
    reader = staff_with(Permission.objects.get(codename="view_job"))
    assert client_for(reader).get(url).json()["id"] == str(job.pk)
    assert client_for(UserFactory()).get(url).status_code == 404


def test_a_reader_sees_the_job_data_on_the_job_page(world):
    reader = staff_with(Permission.objects.get(codename="view_job"))
    body = client_for(reader).get(reverse("dashboard:job", args=[world["job"].pk]))
    assert b"SECRET-ARG" in body.content and b"SECRET-ERROR" in body.content


# --- The docs print the table ------------------------------------------------------------------


def test_the_docs_state_the_table():
    text = DOCS.read_text()
    for route, method, says in access.table_rows():
        row = f"| `{route}` | {method} | {says} |"
        assert row in text, f"docs/security.md lacks the row {row}"
