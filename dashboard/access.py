"""Who may open the dashboard: active staff only."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django_htmx.http import HttpResponseClientRedirect

from jobs.ops.presentation import reject_unstorable_input


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Anonymous visitors go to the admin login (and come back); non-staff get 403;
    malformed input gets 400.

    An HTMX request whose session expired gets an HX-Redirect to the login page,
    so the login form replaces the page instead of being swapped into a fragment.
    """

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:
            login = reverse("admin:login")
            if request.htmx:
                current = request.htmx.current_url_abs_path or request.get_full_path()
                return HttpResponseClientRedirect(redirect_to_login(current, login).url)
            return redirect_to_login(request.get_full_path(), login)
        if not (user.is_active and user.is_staff):
            raise PermissionDenied("The dashboard is for staff only.")
        reject_unstorable_input(request)  # 400 before any query sees the value
        return view(request, *args, **kwargs)

    return wrapped
