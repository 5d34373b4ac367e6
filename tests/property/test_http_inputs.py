"""Hostile input over every HTTP entry point (issue 21, point 2): the dashboard's query
parameters and forms, every-match actions, step limits, queue pause, notes, the full-value
view, the status API and the admin's lists and schedule form.

The property, for each: the answer is a page (200, a redirect) or a refusal (400, 404, a
form error) that names the rule, never a 500; a refusal writes nothing. Requests are built
as raw bytes, the way a hostile client sends them: lone surrogates percent-encoded as the
invalid UTF-8 they become, NULs as %00, keys nobody expects.
"""

from urllib.parse import parse_qsl, quote

import pytest
from django import forms
from django.test import Client
from django.urls import reverse
from hypothesis import example, given
from hypothesis import strategies as st

from dashboard.forms import FILTER_FIELDS
from jobs.core import transitions
from jobs.core.transitions import ErrorInfo
from jobs.models import (
    DeadLetter,
    Job,
    OperatorAction,
    QueuePause,
    Schedule,
    Step,
)
from jobs.ops.search import OPERATION_TASK
from tests import strategies as hs
from tests.factories import JobFactory
from tests.ui.dashboard.factories import StepFactory, superuser

pytestmark = [pytest.mark.django_db, pytest.mark.property]
FORM = "application/x-www-form-urlencoded"
ANSWERS = {200, 302, 400, 404}


def enc(value: str) -> str:
    """Percent-encode any Python text, lone surrogates included (as invalid UTF-8)."""
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{enc(k)}={enc(v)}" for k, v in pairs)


@pytest.fixture
def root(db) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(superuser())
    return client


def dead_job(task: str = "tests.add") -> Job:
    job = JobFactory(task_name=task)
    claimed = transitions.claim(job.pk, worker_host="h", worker_pid=1, lease_seconds=30)
    transitions.fail(claimed, ErrorInfo("ValueError", "bad row 7", "Traceback"), retry_at=None)
    return job


def footprint() -> tuple:
    """What an operator's request could write, counted."""
    return (OperatorAction.objects.count(),
            QueuePause.objects.count(), Schedule.objects.count(),
            tuple(Job.objects.order_by("pk").values_list("status", flat=True)),
            DeadLetter.objects.filter(resolved_at__isnull=False).count())


def assert_answered(response, *allowed: int) -> None:
    allowed_codes = set(allowed) or ANSWERS
    assert response.status_code in allowed_codes, (response.status_code,
                                                   response.content[:500])


filter_pairs = st.lists(
    st.tuples(st.one_of(st.sampled_from([*FILTER_FIELDS, "after"]), hs.nasty_text),
              hs.hostile_param),
    max_size=4,
)


@given(pairs=filter_pairs)
@example(pairs=[("status", "dead"), ("args", '{"a": NaN}')])
@example(pairs=[("args", "[" * 10_000)])
@example(pairs=[("size", "1" * 5000)])
@example(pairs=[("after", "\ud800")])
@example(pairs=[("q", "\x00")])
def test_the_job_list_answers_any_filter_with_a_page_or_a_400(root, pairs):
    response = root.get(f"{reverse('dashboard:jobs')}?{query(pairs)}")
    assert_answered(response, 200, 400)


@given(value=hs.hostile_param, where=st.sampled_from(["dashboard", "admin"]))
@example(value="on", where="dashboard")
@example(value="false", where="dashboard")
@example(value="1", where="admin")
@example(value="\x00", where="admin")
@example(value="\ud800", where="dashboard")
def test_the_engine_jobs_switch_answers_any_value_and_shows_them_only_when_it_says_so(
        root, value, where):
    """`engine` (both job lists): a page or a 400, never a 500; the engine's own job is
    listed exactly when the value reads as yes (the dashboard's box: what a checkbox
    field reads as ticked; the admin's filter: its one choice, "1"), the project's
    job always."""
    mine = Job.objects.filter(task_name="tests.add").first() or JobFactory()
    engine = (Job.objects.filter(task_name=OPERATION_TASK).first()
              or JobFactory(task_name=OPERATION_TASK))
    url = reverse("dashboard:jobs") if where == "dashboard" else reverse(
        "admin:jobs_job_changelist")
    response = root.get(f"{url}?engine={enc(value)}")
    assert_answered(response, 200, 400)
    if response.status_code == 200:
        body = response.content.decode()
        asked = (forms.BooleanField(required=False).clean(value) if where == "dashboard"
                 else value == "1")
        assert str(mine.pk) in body
        assert (str(engine.pk) in body) is asked


@given(filters=st.one_of(hs.hostile_param, filter_pairs.map(query)), action=st.sampled_from(
    ["requeue", "cancel", "resolve"]), note=hs.nasty_text)
@example(filters="stauts=dead", action="cancel", note="")
@example(filters="%%%", action="cancel", note="")
@example(filters="status", action="cancel", note="")
@example(filters="", action="cancel", note="")
@example(filters="args=%7B%22a%22%3A1e400%7D", action="requeue", note="")
def test_an_every_match_action_starts_only_on_a_filter_read_exactly(root, filters, action, note):
    dead_job()
    before = footprint()
    body = query([("filters", filters), ("note", note)])
    response = root.post(reverse("dashboard:bulk", args=[action]), body, content_type=FORM)
    assert_answered(response, 200, 302, 400)
    if response.status_code != 302:
        assert footprint() == before  # refused or asked to confirm: nothing started
    else:
        # Started: every filter that was sent is in what it acts on (none dropped, so
        # none widened it), and there was one (no filter asks for the count first).
        sent = {k for k, _ in parse_qsl(filters, keep_blank_values=True)} - {"size"}
        stored = set(OperatorAction.objects.latest("pk").target["filter"])
        assert sent and {"since" if k == "last" else k for k in sent} <= stored, (sent, stored)


@given(ids=st.lists(hs.nasty_text, max_size=3), action=st.sampled_from(
    ["requeue", "cancel", "resume", "resolve", "explode"]), note=hs.nasty_text,
    origin=hs.nasty_text, filters=hs.hostile_param)
@example(ids=["not-a-uuid"], action="cancel", note="", origin="detail", filters="")
@example(ids=["\x00"], action="requeue", note="", origin="list", filters="")
def test_an_action_on_selected_jobs_answers_any_form_without_a_500(root, ids, action, note,
                                                                     origin, filters):
    job = dead_job()
    before = footprint()
    body = query([*(("ids", i) for i in ids), ("note", note), ("origin", origin),
                  ("filters", filters), ("confirmed", "1")])
    response = root.post(reverse("dashboard:action", args=[action]), body, content_type=FORM)
    assert_answered(response)
    if response.status_code in (400, 404):
        assert footprint() == before
    Job.objects.filter(pk=job.pk).get()  # still there, whatever happened to it


@given(text=hs.hostile_param)
@example(text='{"max_rows": 1e16}')
@example(text='{"max_rows": -0.0}')
@example(text='{"max_rows": ' + "9" * 5000 + "}")
@example(text='{"model": "\\ud800"}')
def test_step_limits_are_saved_exactly_or_refused_with_the_rule(root, text):
    step = StepFactory(job=dead_job(), limits={"max_rows": 500, "model": "small"})
    before = Step.objects.get(pk=step.pk).limits
    response = root.post(reverse("dashboard:step-limits", args=[step.job_id, step.pk]),
                         query([("limits", text)]), content_type=FORM)
    assert_answered(response, 302, 400)
    after = Step.objects.get(pk=step.pk).limits
    if response.status_code == 400:
        assert after == before
    else:
        assert set(after) == set(before)


@given(queue=hs.hostile_param, do=hs.nasty_text)
@example(queue=" padded", do="pause")
@example(queue="a/b", do="pause")
def test_pausing_a_queue_takes_a_valid_name_or_refuses_it(root, queue, do):
    before = set(QueuePause.objects.values_list("queue", flat=True))
    response = root.post(reverse("dashboard:queue-pause"), query([("queue", queue), ("do", do)]),
                         content_type=FORM)
    assert_answered(response, 302, 400)
    after = set(QueuePause.objects.values_list("queue", flat=True))
    if response.status_code == 400:
        assert after == before
    elif do == "pause":
        assert queue in after  # the name as sent, never trimmed or changed


@given(kind=hs.nasty_text, pk=hs.nasty_text, field=hs.nasty_text)
@example(kind="job", pk="\ud800", field="args")
@example(kind="job", pk="00000000-0000-0000-0000-000000000000", field="args")
@example(kind="attempt", pk="9" * 30, field="traceback")
def test_the_full_value_view_answers_any_path_with_a_value_or_a_404(root, kind, pk, field):
    parts = "/".join(enc(p) or "x" for p in (kind, pk, field))
    response = root.get(f"/dashboard/value/{parts}/")
    assert_answered(response, 200, 400, 404)


@given(name=hs.hostile_param)
@example(name="reports/daily")
@example(name="%2F")
@example(name="\x00")
def test_the_task_page_answers_any_name(root, name):
    response = root.get(f"/dashboard/tasks/{enc(name) or 'x'}/")
    assert_answered(response, 200, 400, 404)


@given(pairs=st.lists(st.tuples(hs.nasty_text, hs.hostile_param), max_size=3))
def test_the_status_api_answers_any_query_with_json(root, pairs):
    job = dead_job()
    response = root.get(f"/api/jobs/{job.pk}/status/?{query(pairs)}")
    assert_answered(response, 200, 400)
    assert response["Content-Type"] == "application/json"


@given(pairs=st.lists(st.tuples(st.one_of(
    st.sampled_from(["status__exact", "queue", "task", "q", "created", "o", "p", "e",
                     "task_name", "enabled", "resolved", "engine"]), hs.nasty_text),
    hs.hostile_param), max_size=3),
    model=st.sampled_from(["job", "attempt", "deadletter", "schedule", "step",
                           "operatoraction"]))
@example(pairs=[("q", "\x00")], model="job")
@example(pairs=[("o", "99")], model="job")
@example(pairs=[("p", "9" * 5000)], model="deadletter")
def test_every_admin_list_answers_any_query_without_a_500(root, pairs, model):
    dead_job()
    response = root.get(f"{reverse(f'admin:jobs_{model}_changelist')}?{query(pairs)}")
    assert_answered(response, 200, 302, 400)


SCHEDULE_FIELDS = ["name", "task_name", "args", "kwargs", "cron", "time_zone",
                   "overlap_policy", "misfire_policy", "jitter_seconds"]


@given(field=st.sampled_from(SCHEDULE_FIELDS), text=hs.hostile_param)
@example(field="args", text='["\\ud800"]')
@example(field="args", text="[" * 10_000)
@example(field="kwargs", text='{"a": ' + "9" * 5000 + "}")
@example(field="args", text="[1e16, 2]")
@example(field="jitter_seconds", text="9" * 5000)
@example(field="name", text=" padded")  # found by the hunt profile: it was saved trimmed
@example(field="cron", text=" 0 2 * * *")
def test_the_schedule_form_saves_exactly_or_answers_a_form_error(root, field, text):
    data = {"name": "nightly", "task_name": "tests.add", "args": "[1, 2]", "kwargs": "{}",
            "cron": "0 2 * * *", "time_zone": "Europe/Berlin", "enabled": "on",
            "overlap_policy": "skip", "misfire_policy": "run_once", "jitter_seconds": "0",
            field: text}
    before = Schedule.objects.count()
    response = root.post(reverse("admin:jobs_schedule_add"), query(list(data.items())),
                         content_type=FORM)
    assert_answered(response, 200, 302, 400)
    if response.status_code == 302:
        saved = Schedule.objects.latest("pk")
        assert saved.name == data["name"] and saved.cron == data["cron"]
        saved.delete()
    else:
        assert Schedule.objects.count() == before


@given(model=st.sampled_from(["job", "deadletter"]), action=st.one_of(st.sampled_from(
    ["requeue_selected", "resume_selected", "cancel_selected", "resolve_selected"]),
    hs.nasty_text), ids=st.lists(hs.nasty_text, max_size=3), note=hs.nasty_text,
    across=hs.nasty_text, confirm=st.sampled_from(["yes", "", "\x00"]),
    query_pairs=st.lists(st.tuples(hs.nasty_text, hs.hostile_param), max_size=2))
@example(model="job", action="cancel_selected", ids=[], note="", across="1", confirm="",
         query_pairs=[("stauts", "dead")])
@example(model="deadletter", action="resolve_selected", ids=["1"], note="a\x00b",
         across="0", confirm="yes", query_pairs=[])
@example(model="job", action="requeue_selected", ids=["\ud800"], note="", across="0",
         confirm="", query_pairs=[])
def test_an_admin_action_answers_any_form_and_refusals_write_nothing(
        root, model, action, ids, note, across, confirm, query_pairs):
    job = dead_job()
    letter = DeadLetter.objects.get(job=job)
    real = str(job.pk if model == "job" else letter.pk)
    before = footprint()
    body = query([("action", action), *(("_selected_action", i or real) for i in ids),
                  ("select_across", across), ("note", note), ("confirm", confirm),
                  ("index", "0")])
    url = f"{reverse(f'admin:jobs_{model}_changelist')}?{query(query_pairs)}"
    response = root.post(url, body, content_type=FORM)
    assert_answered(response, 200, 302, 400)
    if response.status_code == 400:
        assert footprint() == before
    if across == "1" and query_pairs and response.status_code == 302:
        # Select-all under a filter the background action cannot take starts nothing.
        keys = {k for k, _ in query_pairs} - {"o", "p", "e", "_changelist_filters", "q",
                                               "status__exact", "queue", "task", "created"}
        if keys:
            assert not OperatorAction.objects.exists()
