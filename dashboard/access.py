"""Who may open a dashboard page: the rule `jobs.ops.access.ROUTES` gives its URL name."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from jobs.ops import access
from jobs.ops.guards import refuses_unstorable_input


def route_name(request: HttpRequest) -> str:
    """The name the table knows the route by: its application namespace and URL name,
    so a project that includes the dashboard under another instance name keeps the rules."""
    match = request.resolver_match
    if match is None or not match.url_name:
        return ""
    return ":".join([*match.app_names, match.url_name])


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Enforce the table's rule for the route and method the request came by.

    A route the table does not know is refused, never open by default.
    Anonymous visitors go to the admin login (and come back); a signed-in user
    the rule refuses gets 403; malformed input gets 400. An HTMX request whose
    session expired gets an HX-Redirect to the login page, so the login form
    replaces the page instead of being swapped into a fragment.
    `request.job_data_visible` tells templates whether to show job data
    (`access.can_read_job_data`), for pages that any staff may open.
    """

    checked = refuses_unstorable_input(view)  # malformed input: 400 before any query

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            login = reverse("admin:login")
            if request.htmx:
                current = request.htmx.current_url_abs_path or request.get_full_path()
                return HttpResponseClientRedirect(redirect_to_login(current, login).url)
            return redirect_to_login(request.get_full_path(), login)
        name = route_name(request)
        rule = access.rule_for(name, request.method or "")
        if rule is None:
            raise PermissionDenied(f"No permission rule for {name or request.path!r}.")
        if not rule.allows(user, **kwargs):
            raise PermissionDenied(f"This page needs: {rule.says}.")
        request.job_data_visible = access.can_read_job_data(user)
        return checked(request, *args, **kwargs)

    return wrapped
