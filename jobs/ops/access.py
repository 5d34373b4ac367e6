"""Who may use which route: the one permission table, and the predicates that enforce it.

Every URL of the project (by its URL name; an unnamed route by its pattern) and
method maps to a `Rule` here. The rules are not a description kept next to the
code: the dashboard's views look their rule up in `ROUTES` by the name they were
reached under (`dashboard.access.guarded`), the admin's job pages call
`can_read_job_data` and `may_view_job_record`, the status API asks `readable_jobs`,
and the full-value view `values.value_text` checks `can_read_job_data`.
`tests/ui/test_permission_table.py` requests every route of the URLconf as every
role and holds the answers to this table; docs/security.md is printed from it.

A job's data is its arguments, result, error text and tracebacks (its steps' and
attempts' too). One rule decides who reads it wherever a page shows it: active
staff holding `jobs.view_job` (`can_read_job_data`), and, in the status API only,
the user who enqueued the job. Staff without `jobs.view_job` still see the
figures (overview counts, queues, workers, task figures) but no page that lists
or shows jobs, as in the admin.

Operator actions keep their checks where they are done (`operations.ACTIONS`,
`operations.can_edit_limits`, `operations.can_run_schedules`, `queues.can_pause`);
the rules of the routes that perform them call those same functions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from jobs.models import Job
from jobs.ops import operations
from jobs.ops import queues as op_queues

GET, POST = "GET", "POST"
METHODS = (GET, POST)
JOB_DATA_PERMISSION = "jobs.view_job"


# --- Predicates (what the views call) ------------------------------------------------


def anyone(user: Any) -> bool:
    """No check at all: pages that show nothing about any job (healthz, login)."""
    return True


def is_signed_in(user: Any) -> bool:
    """An active user with a session (Django drops an inactive user's session)."""
    return bool(user and user.is_authenticated and user.is_active)


def is_staff(user: Any) -> bool:
    """Active staff: the admin's own gate (AdminSite.has_permission) and the dashboard's."""
    return bool(is_signed_in(user) and user.is_staff)


def can_read_job_data(user: Any) -> bool:
    """Whether `user` may read jobs' arguments, results, error texts and tracebacks.

    The admin's rule for its job pages (jobs.view_job), applied to every screen
    that shows a job's data, so no page is a side door to what the admin refuses.
    """
    return bool(is_staff(user) and user.has_perm(JOB_DATA_PERMISSION))


def may_read_job(user: Any, job: Job) -> bool:
    """One job's data: its owner (Job.enqueued_by), or whoever reads all job data."""
    return can_read_job_data(user) or bool(
        is_signed_in(user) and job.enqueued_by_id is not None and job.enqueued_by_id == user.pk)


def readable_jobs(user: Any) -> QuerySet[Job]:
    """The jobs `user` may read as `may_read_job` says, as a queryset (one query)."""
    if can_read_job_data(user):
        return Job.objects.all()
    if not is_signed_in(user):
        return Job.objects.none()
    return Job.objects.filter(enqueued_by=user)


def _model_perm(user: Any, model: str, action: str) -> bool:
    return bool(is_staff(user) and user.has_perm(f"jobs.{action}_{model}"))


def may_view_job_record(user: Any, model: str) -> bool:
    """The admin pages of a model that holds job data (attempt, step, dead letter): its
    own view (or change) permission, and the right to read job data."""
    return can_read_job_data(user) and (
        _model_perm(user, model, "view") or _model_perm(user, model, "change"))


def may_change_job_record(user: Any, model: str) -> bool:
    """Saving such a record's admin form (a dead letter's note) shows it too."""
    return can_read_job_data(user) and _model_perm(user, model, "change")


def may_edit_step_limits(user: Any) -> bool:
    """Raising a step's limits (operations.can_edit_limits) on a page that shows the step."""
    return can_read_job_data(user) and operations.can_edit_limits(user)


def may_act(user: Any, action: str) -> bool:
    """A dashboard action on jobs: its permission (operations.ACTIONS), on pages that then
    show the jobs. An unknown action passes here and is the view's 404."""
    known = operations.ACTIONS.get(action)
    return can_read_job_data(user) and (known is None or known.allowed(user))


# --- Rules -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may use one route with one method.

    `check` is called with the user and the URL arguments named in `takes`.
    `hides`: a refused signed-in user gets 404, as for a missing object, so ids
    cannot be probed (the status API). `served` False: the method is not served
    to anyone (405, or refused before the method is looked at).
    """

    says: str
    check: Callable[..., bool]
    takes: tuple[str, ...] = ()
    hides: bool = False
    served: bool = True

    def allows(self, user: Any, **route_kwargs: Any) -> bool:
        """Whether `user` may use the route; `route_kwargs` are the URL's arguments."""
        if not self.served:
            return False
        return bool(self.check(user, *(route_kwargs[name] for name in self.takes)))


def _never(user: Any, *args: Any) -> bool:
    return False


ANYONE = Rule("anyone", anyone)
SIGNED_IN = Rule("any signed-in active user", is_signed_in)
STAFF = Rule("active staff", is_staff)
JOB_DATA = Rule("staff + jobs.view_job", can_read_job_data)
OWNER_OR_JOB_DATA = Rule(
    "the job's owner (enqueued_by), or staff + jobs.view_job; others get 404 (401 anonymous)",
    can_read_job_data, hides=True)
METRICS = Rule("staff, or the header Authorization: Bearer <JOBS['METRICS_TOKEN']>", is_staff)
ACT = Rule("staff + jobs.view_job + the action's permission (operations.ACTIONS)",
           may_act, takes=("action",))
STEP_LIMITS = Rule("staff + jobs.view_job + jobs.resume_job (operations.can_edit_limits)",
                   may_edit_step_limits)
PAUSE = Rule("staff + jobs.pause_queue (queues.can_pause)", op_queues.can_pause)
NOBODY = Rule("nobody, superusers neither (history is kept; the state machine writes)",
              _never)
NOT_SERVED = Rule("not served (405)", _never, served=False)


def _admin_act(user: Any, action: str) -> bool:
    known = operations.ACTIONS.get(action)
    return is_staff(user) and (known is None or known.allowed(user))


ADMIN_ACT = Rule("staff + the action's permission (operations.perform)", _admin_act,
                 takes=("action",))


def perm_rule(*perms: str) -> Rule:
    """Active staff holding any one of `perms` (Django's admin: change implies view)."""
    def check(user: Any) -> bool:
        return is_staff(user) and any(user.has_perm(p) for p in perms)

    return Rule("staff + " + " or ".join(perms), check)


def _record_view(model: str) -> Rule:
    return Rule(f"staff + jobs.view_job + jobs.view_{model} (or change)",
                lambda user: may_view_job_record(user, model))


def _record_change(model: str) -> Rule:
    return Rule(f"staff + jobs.view_job + jobs.change_{model}",
                lambda user: may_change_job_record(user, model))


_STEP_VIEW = Rule("staff + jobs.view_job + jobs.view_step (or change), or may edit limits",
                  lambda user: may_view_job_record(user, "step") or may_edit_step_limits(user))


def _model_admin(prefix: str, app_model: str, *, view: Rule, add: Rule, change: Rule,
                 delete: Rule) -> dict[str, dict[str, Rule]]:
    """The routes Django's ModelAdmin adds for one model, with the rule of each.

    The list's POST runs admin actions: each action also needs its own
    permission (`operations.ACTIONS`, `operations.can_run_schedules`).
    """
    name = f"admin:{app_model.replace('.', '_')}"
    return {
        f"{name}_changelist": {GET: view, POST: view},
        f"{name}_add": {GET: add, POST: add},
        f"{name}_history": {GET: view, POST: view},
        f"{name}_delete": {GET: delete, POST: delete},
        f"{name}_change": {GET: view, POST: change},
        # Unnamed: redirects <id>/ to <id>/change/, where the rule above applies.
        f"{prefix}{app_model.replace('.', '/')}/<path:object_id>/": {GET: STAFF, POST: STAFF},
    }


def _django_model(prefix: str, app_model: str, *, read_only: bool = False
                  ) -> dict[str, dict[str, Rule]]:
    app, model = app_model.split(".")
    change = NOBODY if read_only else perm_rule(f"{app}.change_{model}")
    return _model_admin(
        prefix, app_model, view=perm_rule(f"{app}.view_{model}", f"{app}.change_{model}"),
        add=NOBODY if read_only else perm_rule(f"{app}.add_{model}"), change=change,
        delete=NOBODY if read_only else perm_rule(f"{app}.delete_{model}"))


ADMIN = "admin/"
GET_ONLY = {POST: NOT_SERVED}
POST_ONLY = {GET: NOT_SERVED}

ROUTES: dict[str, dict[str, Rule]] = {
    # --- Open ------------------------------------------------------------------------
    "healthz": {GET: ANYONE, **GET_ONLY},  # counts and ages only, never a job
    "index": {GET: ANYONE, **GET_ONLY},  # the demo's front page: links, never a job
    "metrics": {GET: METRICS, **GET_ONLY},
    "favicon.ico": {GET: ANYONE, POST: ANYONE},  # a redirect to the static icon
    # --- Status API and the demo -------------------------------------------------------
    "jobs_api:job-status": {GET: OWNER_OR_JOB_DATA, **GET_ONLY},
    "demo:start-report": {POST: SIGNED_IN, **POST_ONLY},
    # --- Dashboard ---------------------------------------------------------------------
    "dashboard:overview": {GET: STAFF, **GET_ONLY},  # figures; causes only with view_job
    "dashboard:queues": {GET: STAFF, **GET_ONLY},
    "dashboard:queue-pause": {POST: PAUSE, **POST_ONLY},
    "dashboard:workers": {GET: STAFF, **GET_ONLY},  # job ids and task names, no data
    "dashboard:tasks": {GET: STAFF, **GET_ONLY},
    "dashboard:task": {GET: STAFF, **GET_ONLY},
    "dashboard:activity": {GET: STAFF, **GET_ONLY},
    "dashboard:operation": {GET: STAFF, **GET_ONLY},
    "dashboard:jobs": {GET: JOB_DATA, **GET_ONLY},  # shows each job's last error
    "dashboard:job": {GET: JOB_DATA, **GET_ONLY},
    "dashboard:job-live": {GET: JOB_DATA, **GET_ONLY},
    "dashboard:failures": {GET: JOB_DATA, **GET_ONLY},  # sample tracebacks
    "dashboard:value": {GET: JOB_DATA, **GET_ONLY},  # every kind of values.VALUE_FIELDS
    "dashboard:action": {POST: ACT, **POST_ONLY},
    "dashboard:bulk": {POST: ACT, **POST_ONLY},
    "dashboard:step-limits": {POST: STEP_LIMITS, **POST_ONLY},
    # --- Django's admin site -----------------------------------------------------------
    "admin:login": {GET: ANYONE, POST: ANYONE},
    # Signs out whoever is signed in; a visitor without a staff session goes to the index.
    "admin:logout": {POST: ANYONE, **POST_ONLY},
    "admin:index": {GET: STAFF, POST: STAFF},
    "admin:app_list": {GET: STAFF, POST: STAFF},  # the models the user may see (404: none)
    "admin:password_change": {GET: STAFF, POST: STAFF},
    "admin:password_change_done": {GET: STAFF, **GET_ONLY},
    "admin:jsi18n": {GET: STAFF, **GET_ONLY},
    # Only for a ForeignKey a ModelAdmin lists in autocomplete_fields: this project has none.
    "admin:autocomplete": {GET: NOBODY, **GET_ONLY},
    "admin:view_on_site": {GET: STAFF, POST: STAFF},  # 404 for models without a URL
    f"{ADMIN}(?P<url>.*)$": {GET: STAFF, POST: STAFF},  # the admin's catch-all 404
    # --- The jobs admin ----------------------------------------------------------------
    "admin:jobs_value": {GET: JOB_DATA, POST: JOB_DATA},  # as dashboard:value
    "admin:jobs_job_act": {POST: ADMIN_ACT, **POST_ONLY},
    **_model_admin(ADMIN, "jobs.job", view=JOB_DATA, add=NOBODY, change=NOBODY, delete=NOBODY),
    **_model_admin(ADMIN, "jobs.attempt", view=_record_view("attempt"), add=NOBODY,
                   change=NOBODY, delete=NOBODY),
    **_model_admin(ADMIN, "jobs.step", view=_STEP_VIEW, add=NOBODY, change=STEP_LIMITS,
                   delete=NOBODY),
    **_model_admin(ADMIN, "jobs.deadletter", view=_record_view("deadletter"), add=NOBODY,
                   change=_record_change("deadletter"), delete=NOBODY),
    # Schedules hold their own arguments, not a job's; "Run now" needs jobs.change_schedule
    # (operations.can_run_schedules).
    **_django_model(ADMIN, "jobs.schedule"),
    # The audit log; whoever started an operation may also open its own page.
    **_django_model(ADMIN, "jobs.operatoraction", read_only=True),
    **_django_model(ADMIN, "jobs.queuepause", read_only=True),
    **_django_model(ADMIN, "auth.user"),
    **_django_model(ADMIN, "auth.group"),
    "admin:auth_user_password_change": {GET: perm_rule("auth.change_user"),
                                        POST: perm_rule("auth.change_user")},
}


def rule_for(route: str, method: str) -> Rule | None:
    """The rule of `route` for `method`; None when the table has no entry (refuse it)."""
    return ROUTES.get(route, {}).get(method)


def table_rows() -> list[tuple[str, str, str]]:
    """(route, method, rule in words) for every entry, sorted: what the docs print."""
    return sorted((route, method, rule.says) for route, methods in ROUTES.items()
                  for method, rule in methods.items())
