"""jobs.ops.presentation, lookups and forms: what the admin and the dashboard both show,
count and read, decided once."""

import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from jobs.models import Attempt, AttemptStatus, Job, JobStatus, Step, StepStatus
from jobs.ops import lookups, presentation
from jobs.ops.forms import StepLimitsForm
from jobs.ops.lookups import COUNT_CAP, TIME_RANGES, CappedCount, capped_count, id_search
from jobs.ops.presentation import duration_text, short_id, status_dot, status_info
from tests.factories import AttemptFactory, JobFactory

S = JobStatus


# --- Durations ------------------------------------------------------------------------


@pytest.mark.parametrize(("delta", "text"), [
    (None, "—"),
    (timedelta(0), "0 ms"),
    (timedelta(seconds=-3), "0 ms"),  # clocks that disagree: never "-3 s"
    (timedelta(microseconds=999), "0 ms"),
    (timedelta(milliseconds=850), "850 ms"),
    (timedelta(microseconds=999_999), "999 ms"),  # truncated, not rounded up to "1000 ms"
    (timedelta(seconds=1), "1.0 s"),
    (timedelta(seconds=4.25), "4.2 s"),
    (timedelta(seconds=9, microseconds=999_999), "9.9 s"),
    (timedelta(seconds=10), "10 s"),
    (timedelta(seconds=59, microseconds=990_000), "59 s"),  # never "60 s"
    (timedelta(seconds=60), "1 min"),
    (timedelta(minutes=5), "5 min"),
    (timedelta(minutes=5, seconds=3), "5 min 3 s"),
    (timedelta(minutes=59, seconds=59), "59 min 59 s"),
    (timedelta(hours=1), "1 h"),
    (timedelta(hours=2, minutes=10, seconds=59), "2 h 10 min"),
    (timedelta(hours=23, minutes=59), "23 h 59 min"),
    (timedelta(days=1), "1 d"),
    (timedelta(days=3, hours=4, minutes=59), "3 d 4 h"),
    (timedelta(days=400), "400 d"),
])
def test_duration_text(delta, text):
    assert duration_text(delta) == text


# --- Statuses -------------------------------------------------------------------------


def test_every_status_of_every_kind_has_words_and_a_colour():
    for kind, choices in (("job", JobStatus), ("step", StepStatus),
                          ("attempt", AttemptStatus)):
        for status in choices:
            label, colour = status_info(status, kind)
            assert label == status.label
            assert colour in presentation.STATUS_COLOURS.values(), (kind, status)


def test_steps_and_attempts_borrow_the_job_colour_that_means_the_same():
    colour = {s: status_info(s)[1] for s in S}
    assert status_info(StepStatus.FAILED, "step")[1] == colour[S.DEAD]
    assert status_info(AttemptStatus.TIMED_OUT, "attempt")[1] == colour[S.DEAD]
    assert status_info(AttemptStatus.INTERRUPTED, "attempt")[1] == colour[S.RETRYING]
    assert status_info(StepStatus.PENDING, "step")[1] == colour[S.QUEUED]
    # The kind picks the vocabulary: "failed" is an attempt's or a step's, never a job's.
    assert status_info("failed", "attempt")[0] == "Failed"
    assert status_info("failed", "job") == ("failed", presentation.UNKNOWN_COLOUR)


def test_the_dot_says_its_status_in_words():
    html = status_dot(S.RETRYING)
    assert '<span class="status-label">Waiting to retry</span>' in html
    assert f'style="color:{presentation.STATUS_COLOURS[S.RETRYING]}"' in html
    assert 'aria-hidden="true"' in html  # the dot is decoration beside the words


def test_a_dot_without_words_carries_them_as_its_accessible_name():
    html = status_dot(StepStatus.FAILED, "step", False)
    assert 'role="img" aria-label="Failed" title="Failed"' in html
    assert "status-label" not in html and "aria-hidden" not in html


def test_the_dot_escapes_what_it_does_not_know():
    evil = '"><script>alert(1)</script>'
    assert status_info(evil) == (evil, presentation.UNKNOWN_COLOUR)
    for html in (status_dot(evil), status_dot(evil, "attempt", False)):
        assert "<script>" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "&quot;&gt;" in html  # cannot close the class or aria-label attribute


# --- Capped counts --------------------------------------------------------------------


@pytest.mark.django_db
def test_capped_count_at_the_cap_and_one_past_it():
    Job.objects.bulk_create([Job(task_name="tests.add") for _ in range(3)])
    at_cap = capped_count(Job.objects.all(), cap=3)
    assert at_cap == CappedCount(value=3, capped=False, cap=3)
    assert at_cap.text == "3"
    JobFactory()
    past = capped_count(Job.objects.all(), cap=3)
    assert past == CappedCount(value=3, capped=True, cap=3)
    assert past.text == str(past) == "more than 3"
    assert capped_count(Job.objects.filter(status=S.DEAD), cap=3).text == "0"


@pytest.mark.django_db
def test_capped_count_reads_at_most_cap_plus_one_rows_in_one_query():
    Job.objects.bulk_create([Job(task_name="tests.add") for _ in range(10)])
    with CaptureQueriesContext(connection) as queries:
        counted = capped_count(Job.objects.order_by("-created_at"), cap=4)
    assert counted.capped and counted.value == 4
    [query] = queries.captured_queries
    sql = query["sql"].upper()
    assert "COUNT(*)" in sql and "LIMIT 5" in sql and "ORDER BY" not in sql


@pytest.mark.django_db
def test_capped_count_defaults_to_the_shared_cap_read_at_call_time(monkeypatch):
    assert COUNT_CAP == 10_000
    monkeypatch.setattr(lookups, "COUNT_CAP", 1)
    JobFactory()
    JobFactory()
    assert capped_count(Job.objects.all()) == CappedCount(1, True, 1)


# --- Time ranges ----------------------------------------------------------------------


def test_time_ranges_are_shortest_first_and_start_where_they_say():
    assert list(TIME_RANGES) == ["15m", "1h", "24h", "7d"]
    assert lookups.time_range_choices()[1] == ("1h", "Last hour")
    now = timezone.now()
    assert TIME_RANGES["24h"].start(now) == now - timedelta(hours=24)
    deltas = [r.delta for r in TIME_RANGES.values()]
    assert deltas == sorted(deltas)


# --- Id search ------------------------------------------------------------------------


A = uuid.UUID("1234abcd-0000-4000-8000-000000000000")
B = uuid.UUID("1234abcd-ffff-4fff-bfff-ffffffffffff")
BELOW = uuid.UUID("1234abcc-ffff-4fff-bfff-ffffffffffff")
ABOVE = uuid.UUID("1234abce-0000-4000-8000-000000000000")


@pytest.fixture
def jobs(db):
    return {u: JobFactory(id=u) for u in (A, B, BELOW, ABOVE)}


def found(term, field="pk"):
    q = id_search(term, field)
    assert q is not None, term
    return set(Job.objects.filter(q).values_list("pk", flat=True))


def test_a_whole_uuid_in_any_spelling(jobs):
    assert found(str(A)) == {A}
    assert found(A.hex) == {A}
    assert found(str(A).upper()) == {A}
    assert found(f"  {A}  ") == {A}


def test_several_whole_uuids_separated_by_spaces_or_commas(jobs):
    assert found(f"{A}, {ABOVE}") == {A, ABOVE}
    assert found(f"{A},{BELOW} {ABOVE.hex}") == {A, BELOW, ABOVE}


def test_a_prefix_is_a_range_that_holds_exactly_the_ids_starting_with_it(jobs):
    assert found("1234abcd") == {A, B}  # both ends of the range are inside
    assert found("1234abcc") == {BELOW}
    assert found("1234abce") == {ABOVE}
    assert found("1234ABCD-FFFF") == {B}  # as the lists show it: dashes, any case
    assert found("1234abcd0000400080000000000000") == {A}  # 30 digits
    assert found("1234abcd", field="id") == {A, B}


def test_the_prefix_is_a_range_on_the_index_beside_the_tail(jobs):
    sql = str(Job.objects.filter(id_search("1234abcd")).query).upper()
    assert ">=" in sql and "<=" in sql  # the prefix: a range the primary key answers
    assert "RIGHT(" in sql or "SUBSTR(" in sql  # the tail: job_id_tail_idx's expression
    assert " LIKE " not in sql


TAIL = uuid.UUID("0190aaaa-bbbb-7ccc-8ddd-00009876fedc")


def test_the_lists_show_the_random_tail_and_search_finds_it(jobs):
    job = JobFactory(id=TAIL)
    assert short_id(job.pk) == "9876fedc"
    assert found("9876fedc") == {TAIL}
    assert found("9876FEDC") == {TAIL}
    assert found("00009876fedc") == set()  # longer runs are prefixes only
    assert found("9876fedc", field="id") == {TAIL}
    assert found("1234abcd") == {A, B}  # a prefix still finds only its own


@pytest.mark.parametrize("term", [
    "",
    "   ",
    "1234abc",  # 7 digits: too short to be a useful prefix
    "1234abcg",  # not hex
    "reports.build",
    "1234abcd 1234abce",  # several prefixes: only whole ids may be several
    f"{A} 1234abce",  # a whole id and a prefix
])
def test_what_is_not_an_id_gives_none(term):
    assert id_search(term) is None


def test_a_related_field_can_be_searched(jobs):
    attempt = AttemptFactory(job=jobs[A])
    AttemptFactory(job=jobs[ABOVE])
    assert list(Attempt.objects.filter(id_search("1234abcd", "job_id"))) == [attempt]


# --- The limits form ------------------------------------------------------------------


@pytest.fixture
def step(db):
    return Step.objects.create(job=JobFactory(status=S.DEAD), position=1, name="transform",
                               status=StepStatus.FAILED, limits={"max_rows": 500, "ratio": 0.5})


def test_the_limits_form_merges_a_valid_edit_and_leaves_the_instance_alone(step):
    form = StepLimitsForm({"limits": '{"max_rows": 5000}'}, instance=step)
    assert form.is_valid(), form.errors
    assert form.cleaned_data["limits"] == {"max_rows": 5000, "ratio": 0.5}
    assert step.limits == {"max_rows": 500, "ratio": 0.5}  # saving is save_step_limits' job


@pytest.mark.parametrize(("posted", "error"), [
    ('{"max_rows": 5000', "Not valid JSON: Expecting ',' delimiter (line 1, column 18)."),
    ("", "Limits must be a JSON object"),
    ("[1]", "Limits must be a JSON object"),
    ('"max_rows"', "Limits must be a JSON object"),
    ('{"max_rowz": 1}', "Unknown limit(s) ['max_rowz']"),
    ('{"max_rows": true}', "must be of type int"),
    ('{"ratio": 0}', "must be positive"),
])
def test_the_limits_form_refuses_with_a_field_error(step, posted, error):
    form = StepLimitsForm({"limits": posted}, instance=step)
    assert not form.is_valid()
    [message] = form.errors["limits"]
    assert error in message
    step.refresh_from_db()
    assert step.limits == {"max_rows": 500, "ratio": 0.5}
