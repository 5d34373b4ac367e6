"""The whole of a long value a page previews, for whoever may read it.

A page shows a bounded preview (`jobs.ops.presentation.bounded_pre`) and links
to the whole value; the admin's and the dashboard's value views both read it
here, so which fields are served and who may read them is decided once.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError

from jobs.core import serialization
from jobs.models import Attempt, Job, Step
from jobs.ops.access import can_read_job_data

# What a page may preview and link to in full, per kind of row: JSON values are shown
# indented, text as it is.
VALUE_FIELDS: dict[str, dict[str, bool]] = {
    "job": {"args": True, "kwargs": True, "result": True},
    "attempt": {"error_message": False, "traceback": False},
    "step": {"result": True, "error_message": False, "traceback": False, "limits": True},
}
_VALUE_MODELS = {"job": Job, "attempt": Attempt, "step": Step}


def value_text(kind: str, pk: str, field: str, *, user: Any) -> str | None:
    """The whole value of an allowed field, as a page shows it; None if there is none.

    Every field served here is job data (arguments, results, errors, tracebacks,
    a step's limits), so `user` must pass `access.can_read_job_data`, whichever
    screen asks: PermissionDenied otherwise, before any row is read.
    """
    if not can_read_job_data(user):
        raise PermissionDenied("Reading a job's data needs the permission jobs.view_job.")
    is_json = VALUE_FIELDS.get(kind, {}).get(field)
    if is_json is None:
        return None
    model = _VALUE_MODELS[kind]
    try:
        row = model.objects.filter(pk=model._meta.pk.to_python(pk)).values(field).first()
    except ValidationError:
        return None
    if row is None:
        return None
    # As presentation.json_text draws it on the page, indented.
    return serialization.pretty_json(row[field]) if is_json else row[field]
