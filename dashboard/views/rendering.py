"""How every dashboard view answers: the whole page, or the HTMX fragment of it.

A page answers an HTMX swap with just its fragment (templates/dashboard/
partials/) and any other request with the whole page, so every URL works with
JavaScript off, as a bookmark, and after the back button. That choice is made
here once (`page_or_fragment`), with the htmx-specific answers django-htmx
provides (`stop_polling`, `reswap`) and the flash message every action says
its outcome with.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django_htmx.http import HTMX_STOP_POLLING

# A flash's level -> the messages framework's, for the answer that redirects instead.
LEVELS = {"success": messages.SUCCESS, "warning": messages.WARNING, "error": messages.ERROR}


def is_fragment(request: HttpRequest) -> bool:
    """True for an HTMX swap; a history restore needs the whole page."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def page_or_fragment(request: HttpRequest, page: str, fragment: str, context: dict[str, Any],
                     *, status: int = 200, answer: bool = False) -> HttpResponse:
    """Render `fragment` for an HTMX swap, the whole `page` otherwise.

    `answer`: any HTMX request gets the fragment, history restore or not: the
    answer to a form the page posted, swapped in where the operator is looking.
    """
    partial = is_fragment(request) or (answer and bool(request.htmx))
    return render(request, fragment if partial else page, context, status=status)


def stop_polling(response: HttpResponse) -> HttpResponse:
    """Mark a polled fragment as the last: htmx stops polling on django-htmx's
    HTMX_STOP_POLLING (286), belt and braces beside a fragment without a trigger."""
    response.status_code = HTMX_STOP_POLLING
    return response


def setting(name: str, default: float) -> float:
    """A DASHBOARD_* setting (poll intervals), or its default."""
    return getattr(settings, name, default)


def flash(text: str, level: str = "success") -> dict[str, str]:
    """An outcome to show on top of the page (or beside a form): text and level."""
    return {"text": text, "level": level}


def add_message(request: HttpRequest, said: dict[str, str]) -> None:
    """The flash, for the page a redirect leads to (no HTMX: no fragment to carry it)."""
    messages.add_message(request, LEVELS[said["level"]], said["text"])
