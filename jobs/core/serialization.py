"""What may be stored in a job: JSON, strictly.

No `default=` hook and no NaN: a value comes back out of the database exactly
as it went in, or it is refused where it was produced (at enqueue for
arguments, in the worker for results).
"""

import json
from typing import Any


def pretty_json(value: Any) -> str:
    """Indented, key-sorted JSON for people to read (admin, dashboard); not escaped."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def stored_json(value: Any, what: str) -> Any:
    """Return `value` as it will read back from a JSON column; TypeError names `what`."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} is a {type(value).__name__}, which cannot be stored as JSON: {exc}"
        ) from None
