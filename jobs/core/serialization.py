"""What may be stored in a job: JSON, strictly, and text the database accepts.

One walk decides whether a value can be stored exactly as given: no `default=`
hook, no NaN, no float that a JSON column gives back changed (-0.0, or 1e16 and
beyond, which jsonb returns as an integer), no coercion (a tuple would come
back a list, the key `1` would come back `"1"` and could merge with another
key), no text PostgreSQL refuses
(NUL) or that has no UTF-8 form (lone surrogates), a bounded depth and a
bounded size. It refuses with the path and the rule, where the value was
produced (at enqueue for arguments, in the worker for results), so nothing is
lost later in the database.

Text that must be stored whatever it holds (error messages, tracebacks) is
made storable instead: see `storable_text`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from jobs.exceptions import UnstorableValue

MAX_DEPTH = 64
# Python refuses to turn longer integers into text (sys.int_info.str_digits_check_threshold).
MAX_INT_DIGITS = 4300
# json writes floats from here on with an exponent ("1e+16"); PostgreSQL's jsonb stores
# them as numeric and gives back an integer (10000000000000000). One rule on every
# database, so a value that is accepted on SQLite is accepted on PostgreSQL too.
FLOAT_LIMIT = 1e16
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
CUT_MARKER = "… [cut: {n} more characters]"


def pretty_json(value: Any) -> str:
    """Indented, key-sorted JSON for people to read (admin, dashboard); not escaped."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def check_text(text: str, where: str) -> str:
    """Refuse text the database cannot hold unchanged: NUL bytes and lone surrogates."""
    if "\x00" in text:
        raise UnstorableValue(f"{where} contains a NUL character (\\x00), which the database "
                              "cannot store; remove it or encode the data (e.g. base64)")
    if (bad := _SURROGATE.search(text)) is not None:
        raise UnstorableValue(f"{where} contains the lone surrogate {bad.group()!a} at index "
                              f"{bad.start()}, which is not valid Unicode text")
    return text


def check_json(items: Iterable[tuple[str, Any]], what: str, max_bytes: int) -> None:
    """Refuse the first value of `items` ((path, value) pairs) that could not be stored
    exactly, or all of them together when their JSON exceeds `max_bytes`.

    The walk stops as soon as the size estimate passes the limit, so a 300 MB
    argument is refused in microseconds, not after it was serialized.
    """
    budget = [max_bytes]

    def spend(cost: int) -> None:
        budget[0] -= cost
        if budget[0] < 0:
            raise UnstorableValue(f"{what}: larger than the limit of {max_bytes:,} bytes as JSON")

    def walk(value: Any, path: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise UnstorableValue(f"{path} is nested more than {MAX_DEPTH} levels deep")
        if value is None or isinstance(value, bool):
            spend(5)
        elif isinstance(value, int):
            if value.bit_length() > MAX_INT_DIGITS * 3:  # ~0.3 digits per bit
                raise UnstorableValue(f"{path} is an integer of more than {MAX_INT_DIGITS} digits")
            spend(value.bit_length() // 3 + 2)
        elif isinstance(value, float):
            if not math.isfinite(value):
                name = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
                raise UnstorableValue(f"{path} is {name} ({value!r}), which JSON cannot "
                                      "represent")
            if abs(value) >= FLOAT_LIMIT:
                raise UnstorableValue(
                    f"{path} is the float {value!r}: a float of magnitude 1e16 or more comes "
                    "back from a JSON column as an integer; pass an int or a string")
            if value == 0.0 and math.copysign(1.0, value) < 0:
                raise UnstorableValue(f"{path} is -0.0, which a JSON column stores as 0.0; "
                                      "pass 0.0")
            spend(25)
        elif isinstance(value, str):
            spend(len(value) + 2)
            check_text(value, path)
        elif isinstance(value, list):
            spend(2)
            for i, item in enumerate(value):
                walk(item, f"{path}[{i}]", depth + 1)
                spend(1)
        elif isinstance(value, dict):
            spend(2)
            for key, item in value.items():
                if not isinstance(key, str):
                    raise UnstorableValue(
                        f"{path} has the key {key!r} ({type(key).__name__}): JSON object keys "
                        "are strings, and converting them could merge two keys; use str keys"
                    )
                spend(len(key) + 4)
                check_text(key, f"the key {key[:40]!r} of {path}")
                walk(item, f"{path}[{key[:40]!r}]", depth + 1)
        else:
            hint = " (pass a list)" if isinstance(value, (tuple, set, frozenset)) else ""
            raise UnstorableValue(
                f"{path} is a {type(value).__name__}, which cannot be stored as JSON{hint}; "
                "pass plain data (str, int, float, bool, None, list, dict with str keys), "
                "e.g. an id instead of a model instance"
            )

    for path, value in items:
        walk(value, path, 0)


def stored_json(value: Any, what: str, max_bytes: int) -> Any:
    """Return `value` as it will read back from a JSON column, or raise UnstorableValue."""
    check_json([(what, value)], what, max_bytes)
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    if len(text.encode()) > max_bytes:
        raise UnstorableValue(f"{what}: larger than the limit of {max_bytes:,} bytes as JSON")
    return json.loads(text)


def parse_json(text: str, what: str, max_bytes: int) -> Any:
    """JSON text an operator typed, as a JSON column will store it, or UnstorableValue
    naming the rule (never a JSONDecodeError, RecursionError or ValueError).

    Python's json takes what no column stores exactly (NaN, Infinity, 1e400 as
    inf) and fails on some text with errors no caller expects: an integer past
    MAX_INT_DIGITS digits (Python's own int limit) and nesting past the stack.
    """
    def refuse_constant(name: str) -> Any:
        raise UnstorableValue(f"{what} contains {name}, which JSON cannot represent "
                              "(use a number or null)")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise UnstorableValue(f"{what} contains an integer of more than {MAX_INT_DIGITS} "
                                  "digits")
        return int(digits)

    try:
        value = json.loads(text, parse_constant=refuse_constant, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise UnstorableValue(f"Not valid JSON: {exc.msg} (line {exc.lineno}, column "
                              f"{exc.colno})") from None
    except RecursionError:
        raise UnstorableValue(f"{what} is nested too deeply (more than {MAX_DEPTH} levels); "
                              "use a flatter JSON value") from None
    return stored_json(value, what, max_bytes)


def storable_text(text: str, limit: int) -> str:
    """`text` as the database will accept it, at most `limit` characters: NULs dropped,
    lone surrogates replaced, the rest cut with a marker saying how much."""
    text = _UNSTORABLE.sub(lambda m: "" if m.group() == "\x00" else "\ufffd", text)
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    while True:  # the marker's own length changes how much must be cut
        marker = CUT_MARKER.format(n=cut)
        kept = max(limit - len(marker), 0)
        if len(text) - kept == cut:
            return text[:kept] + marker
        cut = len(text) - kept


def describe(exc: BaseException) -> str:
    """str(exc), or a placeholder naming the failure when the exception's __str__ raises."""
    try:
        return str(exc)
    except Exception as failure:  # noqa: BLE001 - any failure of user code's __str__
        return f"<unprintable {type(exc).__name__}: its __str__ raised {type(failure).__name__}>"
