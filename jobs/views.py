"""The project-wide 400 page: it says why the request was refused.

Django's own answers "Bad Request (400)" and nothing more, so an operator who
pasted a link with a NUL or a 100,000-character filter learns nothing. Set
`handler400 = "jobs.views.bad_request"` in the root URLconf (the README's
install section does). Only the reasons this project wrote (`BadRequest`) are
shown, escaped and cut; anything else Django refuses as suspicious (a forged
Host header, say) keeps the plain page, so no configuration leaks.
"""

from __future__ import annotations

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse
from django.template import loader

MAX_REASON_CHARS = 500


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = ""
    if isinstance(exception, BadRequest):
        reason = str(exception)
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[:MAX_REASON_CHARS] + "…"
    body = loader.render_to_string("jobs/400.html", {"reason": reason}, request)
    return HttpResponse(body, status=400, content_type="text/html; charset=utf-8")
