"""Hostile input at the front door (issue 21): `jobs.enqueue()` (arguments and every
option), `jobs.core.enqueue.enqueue_call` (a call given as data), Django's standard
task API (`Task.using(...).enqueue(...)` through jobs.backends, where any keyword is
the task's) and `@task(...)` registration.

The property, for every generated call: either what was given comes back exactly
(the Job row read back with Job.objects.get: same JSON types all the way down, 1 is
not 1.0 and True is not 1; the options as given), or the project's own error (a
jobs.exceptions.JobsError; for Django's API also its InvalidTaskError) names the
rule that was broken. A refusal writes nothing and leaves the caller's transaction
usable: each call runs inside transaction.atomic() and a query follows the refusal.

Which values must be kept and which refused is written out here (`*_verdict`,
`*_broken`), from the rules in docs/architecture.md ("What a job stores"), not read
back from the code.
"""

import json
import math
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from hypothesis import example, given
from hypothesis import strategies as st

from jobs import Backoff, enqueue, task
from jobs.core import registry
from jobs.exceptions import InvalidJobArguments, InvalidJobOption, JobsError
from jobs.models import Job
from tests import strategies as hs
from tests.framework import InvalidTask as InvalidTaskError
from tests.framework import task as django_task
from tests.strategies import same

pytestmark = [pytest.mark.django_db, pytest.mark.property]

OPTIONS = ("queue", "priority", "run_after", "max_attempts", "idempotency_key",
           "enqueued_by")
MAX_ARGUMENT_BYTES = 1_000_000  # JOBS['MAX_ARGUMENTS_BYTES']'s default
MAX_DELAY = timedelta(days=3650)  # JOBS['MAX_DELAY_DAYS']'s default
DEFAULT_MAX_ATTEMPTS = 3  # JOBS['DEFAULT_MAX_ATTEMPTS']'s default
WEEK = 7 * 24 * 3600
KEPT, REFUSED, EITHER = "kept", "refused", "either"


@task(name="property.enqueue.echo")
def echo(*args: Any, **kwargs: Any) -> None:
    """Takes anything, so only the storage rules decide."""


@django_task()
def standard_echo(*args: Any, **kwargs: Any) -> None:
    """The same, written against Django's task API."""


def _bad_text(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= c <= "\udfff" for c in text)


def _value_verdict(value: Any) -> tuple[str, int]:
    """Whether one argument is kept or refused by the rules, and how deep it nests.
    Iterative: the values to judge nest 10,000 deep."""
    verdict, deepest = KEPT, 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if item is None or isinstance(item, (bool, str)):
            if isinstance(item, str) and _bad_text(item):
                return REFUSED, deepest
        elif isinstance(item, int):
            bits = item.bit_length()
            if bits > 4300 * 3.33:  # past 4,300 digits: refused for sure
                return REFUSED, deepest
            if bits > 4300 * 3:
                verdict = EITHER
        elif isinstance(item, float):
            if (not math.isfinite(item) or abs(item) >= 1e16
                    or (item == 0.0 and math.copysign(1.0, item) < 0)):
                return REFUSED, deepest
        elif isinstance(item, list):
            stack.extend((x, depth + 1) for x in item)
        elif isinstance(item, dict):
            for key, x in item.items():
                if not isinstance(key, str) or _bad_text(key):
                    return REFUSED, deepest
                stack.append((x, depth + 1))
        else:  # tuple, set, bytes, objects: not plain JSON
            return REFUSED, deepest
    return verdict, deepest


def arguments_verdict(args: list[Any], kwargs: dict[str, Any]) -> str:
    """Kept, refused, or either (at the fuzzy edges of the depth and size bounds)."""
    verdicts = []
    for value in [*args, *kwargs.values()]:
        verdict, deepest = _value_verdict(value)
        if verdict == KEPT and deepest > 66:
            verdict = REFUSED
        elif verdict == KEPT and deepest > 60:
            verdict = EITHER
        verdicts.append(verdict)
    if any(_bad_text(k) for k in kwargs):
        verdicts.append(REFUSED)
    if REFUSED in verdicts:
        return REFUSED
    if EITHER in verdicts:
        return EITHER
    size = len(json.dumps([args, kwargs], ensure_ascii=False).encode())
    if size > MAX_ARGUMENT_BYTES:
        return REFUSED
    return KEPT if size < MAX_ARGUMENT_BYTES // 30 else EITHER  # the walk's estimate is coarse


ARGUMENT_RULES = r"args\[|kwargs\[|key|nested|larger than the limit"


@contextmanager
def callers_transaction() -> Iterator[None]:
    """The caller's transaction: every example's rows go with it."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def outcome(call: Callable[[], Any], *errors: type[Exception]) -> tuple[Any, Exception | None]:
    """What `call` returned, or the error it raised (one of `errors` only), after
    checking that the refusal wrote nothing and the transaction still answers."""
    before = Job.objects.count()
    try:
        return call(), None
    except errors as exc:
        assert Job.objects.count() == before  # nothing written; the transaction is usable
        return None, exc


arguments = st.one_of(hs.hostile_values, hs.huge_values)
keywords = st.dictionaries(hs.nasty_text.filter(lambda k: k not in OPTIONS), arguments,
                           max_size=3)


@given(args=st.lists(arguments, max_size=3), kwargs=keywords)
@example(args=[1, 1.0, True, 0, 0.0, None, "", " padded"], kwargs={"a/b": "?#%"})
@example(args=[1e16], kwargs={})
@example(args=[-0.0], kwargs={})
@example(args=[2.0 ** 53 + 1], kwargs={})
@example(args=[math.nan], kwargs={})
@example(args=["a\x00"], kwargs={})
@example(args=[], kwargs={"a\x00": 1})
@example(args=[], kwargs={"k": {"\ud800": 1}})
@example(args=[hs.deep(100)], kwargs={})
@example(args=[10 ** 4300], kwargs={})
@example(args=["x" * 1_000_001], kwargs={})
@example(args=[{1: "int key"}], kwargs={})
@example(args=[(1, 2)], kwargs={})
def test_enqueue_keeps_arguments_exactly_or_refuses_them(args, kwargs):
    verdict = arguments_verdict(args, kwargs)
    with callers_transaction():
        job, refused = outcome(lambda: enqueue(echo, *args, **kwargs), JobsError)
        if refused is None:
            stored = Job.objects.get(pk=job.pk)
            assert verdict != REFUSED, (args, kwargs)
            assert same(stored.args, args) and same(stored.kwargs, kwargs)
    if refused is not None:
        assert isinstance(refused, InvalidJobArguments), refused
        assert re.search(ARGUMENT_RULES, str(refused)), refused
        assert verdict != KEPT, refused


@given(args=st.lists(st.integers(-3, 3), max_size=3),
       kwargs=st.dictionaries(st.sampled_from(["a", "b", "c", "", "a\x00", "A", "b "]),
                              st.integers(-3, 3), max_size=3))
@example(args=[1], kwargs={"b": 2, "c": 3})
@example(args=[1, 2], kwargs={"a": 3})
def test_unknown_missing_or_repeated_keywords_are_refused(args, kwargs):
    """tests.add(a, b): exactly a and b, each once, positionally or by keyword."""
    taken = {"a", "b"} & set(["a", "b"][:len(args)])
    fits = (len(args) <= 2 and set(kwargs) <= {"a", "b"} and not taken & set(kwargs)
            and taken | set(kwargs) == {"a", "b"})
    with callers_transaction():
        job, refused = outcome(lambda: enqueue("tests.add", *args, **kwargs), JobsError)
        if refused is None:
            stored = Job.objects.get(pk=job.pk)
            assert same(stored.args, args) and same(stored.kwargs, kwargs)
    assert (refused is None) == fits, refused
    if refused is not None:
        assert isinstance(refused, InvalidJobArguments)
        assert "Arguments do not fit task 'tests.add'" in str(refused)


def queue_ok(queue: Any) -> bool:
    """The queue-name rule, written out."""
    return (isinstance(queue, str) and 1 <= len(queue) <= 64 and queue == queue.strip()
            and queue.isprintable())


def run_after_ok(value: Any, now: datetime) -> bool:
    if value is None:
        return True
    if isinstance(value, timedelta):
        return timedelta(0) <= value <= MAX_DELAY
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            return False
        try:
            value.astimezone(UTC)
        except OverflowError:
            return False
        return value - now <= MAX_DELAY
    return False


def _int_in(value: Any, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def options_broken(options: dict[str, Any], now: datetime) -> set[str]:
    """The enqueue() options that break their rule (None means "the default")."""
    rules = {
        "queue": lambda v: queue_ok(v),
        "priority": lambda v: _int_in(v, -1000, 1000),
        "max_attempts": lambda v: _int_in(v, 1, 1000),
        "run_after": lambda v: run_after_ok(v, now),
        "idempotency_key": lambda v: isinstance(v, str) and 1 <= len(v) <= 255
        and not _bad_text(v),
        "enqueued_by": lambda v: v == "saved",
    }
    return {name: None for name, value in options.items()
            if value is not None and not rules[name](value)}.keys()


@given(
    queue=st.one_of(st.none(), hs.queue_names, hs.option_values),
    priority=st.one_of(st.none(), st.integers(-1001, 1001), hs.option_values),
    max_attempts=st.one_of(st.none(), st.integers(-1, 1001), hs.option_values),
    run_after=st.one_of(st.none(), hs.timedeltas, hs.datetimes, hs.option_values),
    idempotency_key=st.one_of(st.none(), hs.nasty_text, hs.option_values,
                              st.sampled_from(["k" * 255, "k" * 256, " k", "k/?#%"])),
    enqueued_by=st.sampled_from([None, "saved", "unsaved", "alice"]),
)
@example(queue=" padded", priority=None, max_attempts=None, run_after=None,
         idempotency_key=None, enqueued_by=None)
@example(queue="a/b?#%", priority=1000, max_attempts=1000, run_after=timedelta(days=3650),
         idempotency_key="k" * 255, enqueued_by="saved")
@example(queue=None, priority=True, max_attempts=1.0, run_after=10 ** 10000,
         idempotency_key=10 ** 10000, enqueued_by="unsaved")
@example(queue=None, priority=None, max_attempts=None,
         run_after=datetime(1, 1, 1, tzinfo=UTC), idempotency_key=None, enqueued_by=None)
@example(queue=None, priority=None, max_attempts=None,
         run_after=datetime(1, 1, 1, tzinfo=hs.dt.timezone(timedelta(hours=14))),
         idempotency_key=None, enqueued_by=None)
@example(queue=None, priority=10 ** 10000, max_attempts=math.nan, run_after=math.inf,
         idempotency_key="\ud800", enqueued_by=None)
def test_enqueue_options_are_kept_or_refused_naming_the_option(
        queue, priority, max_attempts, run_after, idempotency_key, enqueued_by):
    users = get_user_model()
    with callers_transaction():
        who = {None: None, "alice": "alice", "saved": users.objects.create(username="saved"),
               "unsaved": users(username="unsaved")}[enqueued_by]
        given_options = {"queue": queue, "priority": priority, "max_attempts": max_attempts,
                         "run_after": run_after, "idempotency_key": idempotency_key,
                         "enqueued_by": enqueued_by}
        before = timezone.now()
        broken = options_broken(given_options, before)
        job, refused = outcome(lambda: enqueue(
            echo, queue=queue, priority=priority, max_attempts=max_attempts,
            run_after=run_after, idempotency_key=idempotency_key, enqueued_by=who),
            JobsError)
        after = timezone.now()
        if refused is None:
            stored = Job.objects.get(pk=job.pk)
            assert not broken, broken
            assert stored.queue == (queue if queue is not None else "default")
            assert stored.priority == (priority if priority is not None else 0)
            assert stored.max_attempts == (max_attempts or DEFAULT_MAX_ATTEMPTS)
            assert stored.idempotency_key == idempotency_key
            assert stored.enqueued_by_id == (who.pk if who is not None else None)
            if isinstance(run_after, datetime):
                # A time already past means "now" (jobs.core.enqueue): kept exactly otherwise.
                assert stored.run_after == max(run_after, stored.created_at)
            else:
                delay = run_after or timedelta(0)
                assert before + delay <= stored.run_after <= after + delay
    if refused is not None:
        assert isinstance(refused, InvalidJobOption), refused
        assert str(refused).split()[0] in broken, (refused, broken)


# Django's API keeps a task's arguments apart from its job's options: any keyword name,
# job options' included, is the task's own (jobs.backends).
any_keywords = st.dictionaries(st.one_of(st.sampled_from(OPTIONS), hs.nasty_text), arguments,
                               max_size=3)


@given(
    args=st.lists(arguments, max_size=2),
    kwargs=any_keywords,
    priority=st.one_of(st.none(), st.integers(-101, 101), hs.option_values),
    queue_name=st.one_of(st.none(), hs.queue_names, hs.option_values),
    run_after=st.one_of(st.none(), hs.datetimes, hs.option_values),
)
@example(args=[], kwargs={}, priority=None, queue_name=" padded", run_after=None)
@example(args=[], kwargs={}, priority=None, queue_name="a/b", run_after=None)
@example(args=[1e16], kwargs={}, priority=None, queue_name=None, run_after=None)
@example(args=[], kwargs={}, priority=math.nan, queue_name=None, run_after=None)
@example(args=[], kwargs={}, priority=1.0, queue_name=None, run_after="tomorrow")
@example(args=[], kwargs={}, priority=None, queue_name=5, run_after=None)
@example(args=[], kwargs={"queue": " padded", "priority": 1e16, "max_attempts": 0},
         priority=None, queue_name=None, run_after=None)
def test_django_tasks_enqueue_keeps_or_refuses_the_same_way(
        args, kwargs, priority, queue_name, run_after):
    """Task.using(...).enqueue(...) through jobs.backends: Django's InvalidTaskError for
    a task that cannot be built, our own errors for what cannot be stored."""
    now = timezone.now()
    broken = set()
    if priority is not None and not _int_in(priority, -100, 100):
        broken.add("priority")
    if queue_name is not None and not queue_ok(queue_name):
        broken.add("queue_name")
    if run_after is not None and not (isinstance(run_after, datetime)
                                      and run_after_ok(run_after, now)):
        broken.add("run_after")
    verdict = arguments_verdict(args, kwargs)

    def call() -> Any:
        return standard_echo.using(priority=priority, queue_name=queue_name,
                                   run_after=run_after).enqueue(*args, **kwargs)

    with mock.patch.dict(registry._registry), callers_transaction():
        result, refused = outcome(call, JobsError, InvalidTaskError)
        if refused is None:
            stored = Job.objects.get(pk=result.id)
            assert not broken and verdict != REFUSED, (broken, verdict)
            assert same(stored.args, args) and same(stored.kwargs, kwargs)
            assert stored.queue == (queue_name if queue_name is not None else "default")
            assert stored.priority == (priority if priority is not None else 0)
            assert stored.max_attempts == 1  # the backend's, whatever the keywords say
            if run_after is not None:  # a time already past means "now"
                assert stored.run_after == max(run_after, stored.created_at)
    if refused is not None:
        message = str(refused)
        named = [o for o in broken if o in message]
        assert named or (verdict != KEPT and re.search(ARGUMENT_RULES, message)), \
            (refused, broken, verdict)


def steps_broken(steps: Any) -> bool:
    if not isinstance(steps, (list, tuple)):
        return True
    if not all(isinstance(s, str) and 1 <= len(s) <= 200 and not _bad_text(s) for s in steps):
        return True
    return len(set(steps)) != len(steps)


def task_name_ok(name: str) -> bool:
    """The task-name rule, written out: a word character, then word characters and
    . - : < >; at most 200."""
    allowed = set("_.-:<>")
    return (isinstance(name, str) and 1 <= len(name) <= 200
            and (name[0].isalnum() or name[0] == "_")
            and all(c.isalnum() or c in allowed for c in name))


REGISTRATION_RULES = {
    "name": r"is not a valid task name|already registered",
    "queue": r"^queue must be",
    "priority": r"^priority must be",
    "max_attempts": r"^max_attempts must be",
    "timeout": r"timeout must be",
    "atomic": r"atomic must be|cannot also be atomic",
    "backoff": r"backoff must be",
    "steps": r"steps must be|step names must be|step name .* contains|cannot also be atomic",
}


@given(
    name=st.one_of(st.none(), hs.task_names),
    queue=st.one_of(st.none(), hs.queue_names, hs.option_values),
    priority=st.one_of(st.integers(-1001, 1001), hs.option_values),
    max_attempts=st.one_of(st.none(), st.integers(-1, 1001), hs.option_values),
    timeout=st.one_of(st.none(), st.integers(-1, WEEK + 1), hs.option_values),
    atomic=st.one_of(st.none(), st.booleans(), hs.option_values),
    backoff=st.one_of(st.none(), st.just(Backoff(base=1.0, factor=1.0, cap=1.0)),
                      hs.option_values),
    steps=st.one_of(st.just(()), st.lists(hs.nasty_text, max_size=3),
                    st.lists(hs.nasty_text, max_size=3).map(tuple), hs.nasty_text,
                    hs.option_values),
)
@example(name="reports/daily", queue=None, priority=0, max_attempts=None, timeout=None,
         atomic=None, backoff=None, steps=())
@example(name="", queue=None, priority=0, max_attempts=None, timeout=None, atomic=None,
         backoff=None, steps=())
@example(name="x" * 200, queue="x" * 64, priority=1000, max_attempts=1000, timeout=WEEK,
         atomic=False, backoff=None, steps=["a"])
@example(name=None, queue=" padded", priority=0, max_attempts=None, timeout=True,
         atomic="no", backoff="fast", steps="abc")
@example(name=None, queue=None, priority=0, max_attempts=None, timeout=10 ** 30,
         atomic=None, backoff=None, steps=["a\x00"])
@example(name="tests.add", queue=None, priority=0, max_attempts=None, timeout=None,
         atomic=True, backoff=None, steps=["a"])
def test_task_registration_keeps_options_or_refuses_naming_them(
        name, queue, priority, max_attempts, timeout, atomic, backoff, steps):
    def work() -> None: ...

    default_name = f"{work.__module__}.{work.__qualname__}"
    broken = set()
    if name is not None and (not task_name_ok(name) or name in registry.registered_tasks()):
        broken.add("name")
    if queue is not None and not queue_ok(queue):
        broken.add("queue")
    if not _int_in(priority, -1000, 1000):
        broken.add("priority")
    if max_attempts is not None and not _int_in(max_attempts, 1, 1000):
        broken.add("max_attempts")
    if timeout is not None and not _int_in(timeout, 1, WEEK):
        broken.add("timeout")
    if atomic is not None and not isinstance(atomic, bool):
        broken.add("atomic")
    if backoff is not None and not isinstance(backoff, Backoff):
        broken.add("backoff")
    if steps_broken(steps):
        broken.add("steps")
    elif steps and atomic is True:
        broken |= {"steps", "atomic"}

    with mock.patch.dict(registry._registry):
        before = registry.registered_tasks()
        try:
            registered = task(name=name, queue=queue, priority=priority,
                              max_attempts=max_attempts, timeout=timeout, atomic=atomic,
                              backoff=backoff, steps=steps)(work)
        except JobsError as exc:
            assert registry.registered_tasks() == before
            assert any(re.search(REGISTRATION_RULES[o], str(exc)) for o in broken), \
                (exc, broken)
            return
        assert not broken, broken
        assert registry.get_task(registered.name) is registered
        assert registered.name == (name if name is not None else default_name)
        assert (registered.queue, registered.priority, registered.max_attempts,
                registered.timeout, registered.backoff) == (queue, priority, max_attempts,
                                                            timeout, backoff)
        assert type(registered.priority) is int
        assert registered.steps == tuple(steps)
        assert registered.atomic is (not steps if atomic is None else atomic)


# --- enqueue_call: a call held as data (issue 23) -------------------------------------

not_a_list = st.one_of(st.none(), st.integers(), hs.nasty_text, st.dictionaries(
    st.text(max_size=3), st.integers(), max_size=2), st.sets(st.integers(), max_size=2))
not_str_keys = st.dictionaries(st.one_of(st.integers(), st.none(), st.tuples(st.integers()),
                                         st.booleans()), st.integers(), min_size=1, max_size=2)


@given(
    args=st.one_of(st.lists(arguments, max_size=2),
                   st.lists(arguments, max_size=2).map(tuple), not_a_list),
    kwargs=st.one_of(any_keywords, not_str_keys,
                     st.dictionaries(st.one_of(hs.nasty_text, st.integers()), st.integers(),
                                     max_size=3),
                     st.lists(st.integers(), max_size=2), hs.nasty_text, st.none()),
)
@example(args=(1, "a"), kwargs={"queue": "q", "priority": 5})
@example(args="ab", kwargs={})
@example(args=[], kwargs={1: "int key"})
@example(args=[], kwargs=[("a", 1)])
def test_enqueue_call_keeps_a_call_given_as_data_or_refuses_it(args, kwargs):
    """`enqueue_call(task, args, kwargs)`: a list or tuple and a dict with str keys,
    kept exactly (every key the task's, job options' names included), or
    InvalidJobArguments naming what is wrong."""
    from jobs.core.enqueue import enqueue_call

    shape_ok = isinstance(args, (list, tuple)) and isinstance(kwargs, dict) and all(
        isinstance(k, str) for k in kwargs)
    verdict = arguments_verdict(list(args), kwargs) if shape_ok else REFUSED
    with callers_transaction():
        job, refused = outcome(lambda: enqueue_call(echo, args, kwargs), JobsError)
        if refused is None:
            stored = Job.objects.get(pk=job.pk)
            assert verdict != REFUSED, (args, kwargs)
            assert same(stored.args, list(args)) and same(stored.kwargs, kwargs)
            # No keyword became an option: the job's are echo's defaults.
            assert (stored.queue, stored.priority, stored.max_attempts,
                    stored.idempotency_key) == ("default", 0, DEFAULT_MAX_ATTEMPTS, None)
    if refused is not None:
        assert isinstance(refused, InvalidJobArguments), refused
        assert verdict != KEPT, refused
        if not shape_ok:
            assert re.match(r"(args|kwargs)( keys)? must be", str(refused)), refused
        else:
            assert re.search(ARGUMENT_RULES, str(refused)), refused


# Not "self": Django's own Task.enqueue(self, *args, **kwargs) takes that name first.
keyword_names = st.one_of(
    st.sampled_from([*OPTIONS, "args", "kwargs", "context", "task", "backend",
                     "queue_name", "takes_context", "func"]),
    hs.plain_text.filter(lambda name: name != "self"),
)


@given(kwargs=st.dictionaries(keyword_names, st.one_of(st.integers(-5, 5), hs.plain_text),
                              max_size=4))
@example(kwargs={name: i for i, name in enumerate(OPTIONS)})
def test_any_keyword_name_reaches_the_task_through_djangos_api(kwargs):
    """Any keyword argument, named like a job option or not, is the task's: stored as
    given, handed to the task by the worker, and shown by the result; the job's
    options stay the task's and the backend's."""
    from jobs.worker.runner import run_job
    from tests.framework import TaskResultStatus, default_task_backend
    from tests.testapp.standard_tasks import keywords as echo_keywords

    with callers_transaction():
        result = echo_keywords.enqueue(**kwargs)
        assert result.kwargs == kwargs
        job = Job.objects.get(pk=result.id)
        assert (job.queue, job.priority, job.max_attempts, job.idempotency_key,
                job.enqueued_by_id, job.run_after) == ("default", 0, 1, None, None,
                                                       job.created_at)
        run_job(result.id)
        done = default_task_backend.get_result(result.id)
        assert done.status == TaskResultStatus.SUCCESSFUL, done.errors
        assert done.kwargs == kwargs and done.return_value == kwargs


@given(options=st.one_of(
    st.fixed_dictionaries({"MAX_ATTEMPTS": st.one_of(st.integers(-2, 1002), hs.option_values)}),
    st.dictionaries(st.one_of(st.sampled_from(["MAX_ATTEMPTS", "max_attempts", "QUEUES"]),
                              hs.nasty_text), st.integers(1, 3), max_size=2),
    hs.option_values,
))
@example(options={"MAX_ATTEMPTS": True})
@example(options={"MAX_ATTEMPTS": 1000})
@example(options={"MAX_ATTEMPTS": 1.0})
def test_the_backends_options_are_kept_or_refused_naming_the_setting(options):
    """TASKS[alias]['OPTIONS'] of jobs.backends.JobsBackend: a dict whose only key is
    MAX_ATTEMPTS, an int (not a bool) from 1 to 1000; anything else refused when the
    backend is built, with InvalidJobOption naming the setting."""
    from jobs.backends import JobsBackend

    value = options.get("MAX_ATTEMPTS", 1) if isinstance(options, dict) else None
    fine = (isinstance(options, dict) and set(options) <= {"MAX_ATTEMPTS"}
            and _int_in(value, 1, 1000))
    try:
        backend = JobsBackend("x", {"QUEUES": [], "OPTIONS": options})
    except InvalidJobOption as exc:
        assert not fine, exc
        assert str(exc).startswith("TASKS['x']['OPTIONS']"), exc
    else:
        assert fine, options
        assert backend.max_attempts == value
