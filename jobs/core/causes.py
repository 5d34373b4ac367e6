"""What a failure is *about*: its cause, the key that groups failures.

Two jobs fail for the same reason when they run the same task and raise the
same class with the same message once the parts that vary per job are taken
out: numbers, ids, hex digests and quoted values. `ValueError: bad row 7 in
'a.csv'` and `ValueError: bad row 12 in 'b.csv'` are one cause, `ValueError:
bad row <n> in '…'`. The cause is computed once, when the failure is recorded
(jobs.core.transitions), and stored on the job, so grouping a million jobs is
an index scan, not a pass over their messages.
"""

from __future__ import annotations

import re

MAX_CAUSE = 300  # characters stored on the job (Job.failure_cause)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Quoted values first: what is inside them may look like anything below.
    (re.compile(r"(?<!\w)'(?:[^'\\\n]|\\.){0,500}'(?!\w)"), "'…'"),
    (re.compile(r'"(?:[^"\\\n]|\\.){0,500}"'), '"…"'),
    (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b", re.I),
     "<id>"),
    (re.compile(r"\b0x[0-9a-f]+\b", re.I), "<hex>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{12,}\b", re.I), "<hex>"),  # digests, long ids
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "<email>"),
    (re.compile(r"[-+]?\d+(?:[.,:]\d+)*"), "<n>"),
    (re.compile(r"\s+"), " "),
)


def normalize(message: str) -> str:
    """`message` with what varies per occurrence replaced by placeholders."""
    text = message[:4000]  # the first lines say what it is; a huge message is not slower
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return text.strip()


def cause(error_class: str, message: str) -> str:
    """The stored cause: `ErrorClass: normalized message`, bounded."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    text = f"{error_class}: {normalize(first_line)}" if first_line else error_class
    return text if len(text) <= MAX_CAUSE else text[: MAX_CAUSE - 1] + "…"
