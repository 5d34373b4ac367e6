"""Hostile text in the Schedule admin form and in the step-limits form (admin and
dashboard): a form error naming the rule, never a 500, nothing written (issue 21,
points 2 and 3)."""

import html
import json

import pytest
from django.urls import reverse

from jobs.models import Schedule, Step, StepStatus
from jobs.ops.operations import validate_limits
from jobs.scheduling.firing import create_schedule
from tests.factories import JobFactory, StaffFactory

pytestmark = pytest.mark.django_db
ADD = reverse("admin:jobs_schedule_add")
DEEP = "[" * 40_000 + "]" * 40_000  # past every supported Python's recursion limit; < 100,000 chars
HUGE = "9" * 5000


def form_data(**overrides):
    return {
        "name": "nightly", "task_name": "tests.add", "args": "[1, 2]", "kwargs": "{}",
        "cron": "0 2 * * *", "time_zone": "Europe/Berlin", "enabled": "on",
        "overlap_policy": "skip", "misfire_policy": "run_once", "jitter_seconds": "0",
        **overrides,
    }


@pytest.fixture
def root(client):
    client.force_login(StaffFactory(username="root", is_superuser=True))
    client.raise_request_exception = False  # a 500 shows as a 500, not as a raise
    return client


def form_errors(response):
    assert response.status_code == 200, response.status_code
    return {f: " ".join(e) for f, e in response.context["adminform"].form.errors.items()}


SCHEDULE_CASES = [
    ("args", '["\\ud800", 2]', "lone surrogate"),
    ("args", '[1, "\\udfff"]', "lone surrogate"),
    ("kwargs", '{"\\ud800": 1}', "lone surrogate"),
    ("args", '["\\u0000", 2]', "NUL character"),
    ("args", DEEP, "nested too deeply"),
    ("kwargs", '{"b": ' + "[" * 70 + "]" * 70 + "}", "nested more than 64 levels"),
    ("args", "[" + HUGE + ", 2]", "integer of more than 4300 digits"),
    ("kwargs", '{"b": -' + HUGE + "}", "integer of more than 4300 digits"),
    ("args", "[1, " + "7" * 4200 + "]", "integer of more than 4300 digits"),
    ("args", "[NaN, 2]", "NaN, which JSON cannot represent"),
    ("args", "[1, -Infinity]", "-Infinity, which JSON cannot represent"),
    ("args", "[1, 1e400]", "Infinity (inf), which JSON cannot represent"),
    ("args", "[1, 2", "Not valid JSON"),
    ("args", '{"a": 1}', "args must be a JSON list"),
    ("kwargs", "[1]", "kwargs must be a JSON object"),
    ("kwargs", '{"queue": "x"}', "enqueue() option names"),
    ("name", "x" * 101, "at most 100 characters"),
    ("cron", "\\ud800 * * * *", "Invalid cron expression"),
    ("cron", "1-" + "9" * 90 + " * * * *", "Invalid cron expression"),
    ("cron", "x" * 101, "at most 100 characters"),
    ("time_zone", "\\ud800", "Unknown time zone"),
    ("time_zone", "../../etc/passwd", "Unknown time zone"),
    ("time_zone", "CEST", "Unknown time zone"),
    ("overlap_policy", "\\ud800", "Select a valid choice"),
    ("jitter_seconds", HUGE, "Enter a whole number"),
    ("jitter_seconds", "99999999999", "less than or equal to"),
    ("jitter_seconds", "-1", "greater than or equal to 0"),
    ("task_name", "\\ud800", "Select a valid choice"),
]


@pytest.mark.parametrize(("field", "text", "rule"), SCHEDULE_CASES)
@pytest.mark.parametrize("preview", [False, True])
def test_schedule_add_form_refuses_hostile_text_with_a_field_error(root, field, text, rule,
                                                                    preview):
    data = form_data(**{field: text}, **({"_preview": "1"} if preview else {}))
    errors = form_errors(root.post(ADD, data))
    assert set(errors) == {field}, errors
    assert rule in errors[field], errors[field]
    assert not Schedule.objects.exists()


@pytest.mark.parametrize(("field", "text", "rule"), SCHEDULE_CASES)
def test_schedule_change_form_refuses_hostile_text_and_keeps_the_row(root, field, text, rule):
    s = create_schedule("nightly", "tests.add", "0 2 * * *", "Europe/Berlin", args=[1, 2])
    before = Schedule.objects.filter(pk=s.pk).values().get()
    response = root.post(reverse("admin:jobs_schedule_change", args=[s.pk]),
                         form_data(**{field: text}))
    assert rule in form_errors(response)[field]
    assert Schedule.objects.filter(pk=s.pk).values().get() == before


def test_a_schedule_argument_that_stores_exactly_is_saved(root):
    big = int("7" * 3000)  # under the limit: must come back exactly
    response = root.post(ADD, form_data(args=json.dumps([big, "\\ud800 as text"])))
    assert response.status_code == 302
    assert Schedule.objects.get().args == [big, "\\ud800 as text"]


# --- step limits ---------------------------------------------------------------------


LIMITS = {"max_rows": 500, "ratio": 0.5, "model": "small", "strict": True}
LIMIT_CASES = [
    ('{"max_rows": ' + HUGE + "}", "integer of more than 4300 digits"),
    ('{"max_rows": ' + "9" * 4301 + "}", "integer of more than 4300 digits"),
    ('{"max_rows": ' + "9" * 4000 + "}", "integer of more than 4300 digits"),
    ('{"ratio": NaN}', "NaN, which JSON cannot represent"),
    ('{"ratio": Infinity}', "Infinity, which JSON cannot represent"),
    ('{"ratio": 1e999}', "Infinity (inf), which JSON cannot represent"),
    ('{"model": "\\u0000"}', "NUL character"),
    ('{"model": "\\ud800"}', "lone surrogate"),
    ('{"\\ud800": 1}', "lone surrogate"),
    ('{"max_rows": true}', "must be of type int"),
    ('{"strict": 1}', "must be of type bool"),
    ('{"ratio": false}', "must be of type float"),
    ('{"max_rows": 0}', "must be positive"),
    ('{"max_rows": 1.5}', "must be of type int"),
    # Within the 10,000 characters limits may have: refused by the JSON parser's recursion
    # limit up to Python 3.12 ("nested too deeply"), by the 64-level rule on 3.13, whose
    # parser goes ~10,000 levels deep ("nested more than 64 levels").
    ("[" * 5000 + "]" * 5000, "nested "),
    ('{"model": ' + "[" * 70 + "]" * 70 + "}", "nested more than 64 levels"),
]


@pytest.fixture
def step(db):
    return Step.objects.create(job=JobFactory(), position=1, name="transform",
                               status=StepStatus.FAILED, limits=LIMITS)


@pytest.mark.parametrize(("text", "rule"), LIMIT_CASES)
def test_admin_step_limits_refuse_hostile_json_with_a_form_error(root, step, text, rule):
    response = root.post(reverse("admin:jobs_step_change", args=[step.pk]), {"limits": text})
    assert rule in form_errors(response)["limits"]
    step.refresh_from_db()
    assert step.limits == LIMITS


@pytest.mark.parametrize(("text", "rule"), LIMIT_CASES)
def test_dashboard_step_limits_refuse_hostile_json_with_a_400(root, step, text, rule):
    url = reverse("dashboard:step-limits", args=[step.job_id, step.pk])
    response = root.post(url, {"limits": text})
    assert response.status_code == 400
    assert rule in html.unescape(response.content.decode())
    step.refresh_from_db()
    assert step.limits == LIMITS


@pytest.mark.parametrize(("proposed", "rule"), [
    ({"ratio": float("nan")}, "NaN"),
    ({"ratio": float("inf")}, "inf"),
    ({"model": "a\x00b"}, "NUL character"),
    ({"model": "\ud800"}, "lone surrogate"),
    ({"max_rows": 10 ** 5000}, "integer of more than 4300 digits"),
])
def test_validate_limits_refuses_what_could_not_be_stored(proposed, rule):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=rule):
        validate_limits(LIMITS, proposed)
