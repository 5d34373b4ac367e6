"""Template names for what `jobs.ops.presentation` renders, plus small dashboard filters.

`{% status_dot status "step" %}` and `{{ delta|duration }}` are presentation's
own functions under template names, so a status or a duration reads the same
here as in the admin.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import template
from django.urls import reverse
from django.utils.safestring import SafeString

from jobs.core import serialization
from jobs.ops import presentation, step_runs

register = template.Library()

# {% status_dot status [kind] [label] %}: kind "job", "step" or "attempt".
register.simple_tag(presentation.status_dot, name="status_dot")
# {{ delta|duration }}: "850 ms", "4.2 s", "5 min 3 s", "2 h 10 min", "3 d 4 h", "—".
register.filter("duration", presentation.duration_text)
# {% progress_text current total message %}: "700/1200 row 700", the figures said once.
register.simple_tag(step_runs.progress_text, name="progress_text")
# {{ job.pk|short_id }}: the last 8 hex digits, what the lists show and search finds.
register.filter("short_id", presentation.short_id)


@register.filter
def pretty_json(value: Any) -> str:
    """JSON for a <pre>; the template still escapes it."""
    return serialization.pretty_json(value)


@register.filter
def percent(fraction: float | None) -> str:
    return "" if fraction is None else f"{fraction * 100:.0f}"


@register.filter
def between(end: Any, start: Any) -> timedelta | None:
    """end - start for two datetimes, None when either is missing."""
    return end - start if end and start else None


@register.simple_tag
def bounded(value: Any, kind: str, pk: Any, field: str, as_json: bool = False) -> SafeString:
    """A long value's bounded preview, with a link to the whole of it (shared rendering)."""
    text = presentation.json_text(value) if as_json else value
    url = reverse("dashboard:value", args=[kind, pk, field])
    return presentation.bounded_pre(text, url, "traceback" if field == "traceback" else "")
