"""The HTTP request guard: malformed input is a 400, never a database error.

Every admin page, dashboard view and API call refuses a query or form value
no screen could use (a NUL, a lone surrogate, 100,000 characters) before any
query sees it. `refuses_unstorable_input` is the guard as a view decorator
(`django.utils.decorators.method_decorator` applies it to a ModelAdmin's
views); `reject_unstorable_input` is the same check as a call, for a view
that answers the refusal in its own format (the JSON status API).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import BadRequest, ValidationError
from django.http import HttpRequest, HttpResponse

from jobs.core.serialization import check_text
from jobs.exceptions import UnstorableValue

MAX_PARAMETER_CHARS = 100_000


def reject_unstorable_input(request: HttpRequest) -> None:
    """Raise BadRequest (HTTP 400) for any query or form value no screen could use.

    A NUL or a lone surrogate cannot reach PostgreSQL (the query fails, the
    page would be a 500), and no field takes 100,000 characters: refused once
    here, for every admin page, dashboard view and API call, instead of in
    each filter and form.
    """
    for source in (request.GET, request.POST):
        for key, values in source.lists():
            for text in (key, *values):
                if len(text) > MAX_PARAMETER_CHARS:
                    raise BadRequest(f"parameter {key[:40]!r} is longer than "
                                     f"{MAX_PARAMETER_CHARS:,} characters")
                try:
                    check_text(text, f"parameter {key[:40]!r}")
                except UnstorableValue as exc:
                    raise BadRequest(str(exc)) from None


def check_selected_ids(model: type, values: list[str]) -> None:
    """Raise BadRequest unless every selected id is a valid primary key of `model`
    (a forged admin action with `_selected_action=abc` would be a 500)."""
    pk = model._meta.pk
    for value in values:
        try:
            pk.to_python(value)
        except ValidationError:
            raise BadRequest(f"selected id {value[:40]!r} is not a valid {model.__name__} id"
                             ) from None




def refuses_unstorable_input(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate a view so that `reject_unstorable_input` runs before it: BadRequest (a
    400, with the project's handler400 saying why) instead of the view's first query."""

    @wraps(view)
    def guarded_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        reject_unstorable_input(request)
        return view(request, *args, **kwargs)

    return guarded_view
