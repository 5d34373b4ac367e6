"""`{% dashboard_url "dashboard:jobs" as url %}`: a link from the admin to the dashboard,
only where the project installed the dashboard's URLs.

The jobs app must not import the dashboard (the layers: admin beside dashboard, neither
below the other) and the dashboard is optional, so its pages are found by URL name: a
project without them gets "" and the admin shows no link, rather than an error.
"""

from __future__ import annotations

from typing import Any

from django import template
from django.urls import NoReverseMatch, reverse

register = template.Library()


@register.simple_tag
def dashboard_url(name: str = "dashboard:overview", *args: Any) -> str:
    """The URL of the dashboard's page `name` (with `args`), or "" where it is not installed."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""
