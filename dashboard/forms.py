"""Input the dashboard accepts, validated before any query runs.

A malformed filter (unknown status, bad date, forged cursor) becomes a form
error shown to the operator with HTTP 400, never a 500 from the database.
The time ranges are `jobs.ops.lookups.TIME_RANGES`, the admin's too; an
edit of a step's limits is read by `jobs.ops.forms.StepLimitsForm`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl
from uuid import UUID

from django import forms
from django.core.exceptions import ValidationError
from django.http import QueryDict

from dashboard.queries import DEFAULT_PAGE_SIZE, PAGE_SIZES, Cursor
from jobs.core.queues import check_name
from jobs.exceptions import InvalidJobOption, InvalidQueueName
from jobs.models import JobStatus
from jobs.ops.lookups import TIME_RANGES, time_range_choices
from jobs.ops.search import LETTERS, MAX_ARGS_CHARS, parse_args_filter

# The filter fields that make up a shareable list URL (the cursor is added per page).
FILTER_FIELDS = ("status", "queue", "task", "cause", "letter", "last", "since", "until", "q",
                 "args", "engine", "size")


class JobFilterForm(forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *JobStatus.choices], required=False)
    queue = forms.CharField(max_length=64, required=False)
    task = forms.CharField(max_length=200, required=False)
    # A failure group's cause (jobs.ops.failures), exactly as stored; set by its links.
    cause = forms.CharField(max_length=300, required=False, widget=forms.HiddenInput)
    letter = forms.ChoiceField(label="Dead letter", required=False,
                               choices=[("", "Any"), *LETTERS.items()])
    last = forms.ChoiceField(
        label="Created", required=False,
        choices=[("", "Any time"), *time_range_choices()],
    )
    since = forms.DateTimeField(
        label="From", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    until = forms.DateTimeField(
        label="To", required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    q = forms.CharField(
        label="Search", max_length=255, required=False,
        widget=forms.TextInput(attrs={
            "type": "search", "placeholder": "job id or idempotency key"}),
    )
    args = forms.CharField(
        label="Arguments", max_length=MAX_ARGS_CHARS, required=False,
        widget=forms.TextInput(attrs={"placeholder": '{"user_id": 42}'}),
    )
    # The engine's own jobs (an operation's) are left out unless this is ticked, or the
    # task or the search names them (jobs.ops.search.hide_engine_jobs).
    engine = forms.BooleanField(label="Engine's own jobs", required=False)
    size = forms.TypedChoiceField(
        label="Per page", required=False, coerce=int, empty_value=DEFAULT_PAGE_SIZE,
        choices=[(n, n) for n in PAGE_SIZES], initial=DEFAULT_PAGE_SIZE,
    )
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, data: QueryDict | None = None, **kwargs: Any) -> None:
        # Unbound fields show their initial value, bound ones what was sent: without
        # this the "Per page" box shows 25 while the page has 50, and the next
        # change of any filter submits 25.
        if data is not None and not data.get("size"):
            data = data.copy()
            data["size"] = str(DEFAULT_PAGE_SIZE)
        super().__init__(data, **kwargs)

    def clean_last(self) -> timedelta | None:
        value = self.cleaned_data["last"]
        return TIME_RANGES[value].delta if value else None

    def clean_args(self) -> dict[str, Any] | None:
        try:
            return parse_args_filter(self.cleaned_data["args"])
        except InvalidJobOption as exc:
            raise ValidationError(str(exc)) from None

    def clean_after(self) -> Cursor | None:
        value = self.cleaned_data["after"]
        if not value:
            return None
        try:
            return Cursor.decode(value)
        except ValueError:
            raise ValidationError(
                "This page link is malformed; start again from the first page."
            ) from None

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and since >= until:
            self.add_error("until", "“To” must be later than “From”.")
        return data

    def querystring(self, **extra: str) -> str:
        """The current filters as a query string (what the URL and page links carry)."""
        qd = QueryDict(mutable=True)
        for name in FILTER_FIELDS:
            value = self.data.get(name)
            if value and not (name == "size" and value == str(DEFAULT_PAGE_SIZE)):
                qd[name] = value
        for name, value in extra.items():
            if value:
                qd[name] = value
        return qd.urlencode()


class ActionForm(forms.Form):
    """An action's form; the action itself is in the URL and given here as `action`.

    Resolving dead letters needs a note saying why they are handled."""

    note = forms.CharField(required=False, max_length=500)

    def __init__(self, data: QueryDict, *, action: str) -> None:
        super().__init__(data)
        self.action = action

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if self.action == "resolve" and not data.get("note", "").strip():
            raise ValidationError("Resolving dead letters needs a note: say why they are "
                                  "handled.")
        return data


class BulkActionForm(ActionForm):
    """Selected job ids plus where to report back."""

    filters = forms.CharField(required=False, widget=forms.HiddenInput)
    # "list" re-renders the list, "detail" the job page the action came from.
    origin = forms.ChoiceField(choices=[("list", "list"), ("detail", "detail")], required=False)
    # Set once the operator agreed to "Requeue 3 jobs?" (JS dialog or the confirm page).
    confirmed = forms.BooleanField(required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        raw = self.data.getlist("ids") if hasattr(self.data, "getlist") else []
        try:
            data["ids"] = list(dict.fromkeys(UUID(str(v)) for v in raw))
        except ValueError:
            raise ValidationError("A selected job id is not a valid UUID.") from None
        if not data["ids"]:
            raise ValidationError("Select at least one job.")
        return data


class QueuePauseForm(forms.Form):
    queue = forms.CharField(max_length=64, strip=False)  # " emails" is refused, not trimmed
    do = forms.ChoiceField(choices=[("pause", "pause"), ("resume", "resume")])

    def clean_queue(self) -> str:
        try:
            return check_name(self.cleaned_data["queue"])
        except InvalidQueueName as exc:
            raise ValidationError(str(exc)) from None

    def problem(self) -> str:
        return "Nothing changed: " + "; ".join(
            f"{name}: {' '.join(errors)}" for name, errors in self.errors.items())


# The filters that narrow which jobs match; "size" only pages the list, and "engine"
# widens it (an operation never acts on the engine's own jobs: jobs.ops.bulk).
MATCH_FIELDS = tuple(name for name in FILTER_FIELDS if name not in ("size", "engine"))


class BulkAllForm(ActionForm):
    """An action on every job matching the filters (in `filters`, a list query string).

    The filter text is read strictly, because a filter that is dropped widens
    the action: an unknown or misspelled key (`stauts=dead`), a key without a
    value, a key given twice or text that is no query string (`%%%`) is refused
    with the reason, never ignored. No filter at all means every job: that
    needs `every` set to the number of jobs the operator was shown.
    """

    filters = forms.CharField(required=False, max_length=4000, strip=False)
    every = forms.IntegerField(required=False, min_value=0, max_value=10 ** 12,
                               widget=forms.HiddenInput)

    def clean_filters(self) -> dict[str, Any]:
        text = self.cleaned_data["filters"]
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                              errors="strict", max_num_fields=2 * len(FILTER_FIELDS))
        except ValueError:
            raise ValidationError(
                "The filters are not a list query string (like status=dead&queue=emails); "
                "nothing was started.") from None
        keys = [key for key, _ in pairs]
        unknown = sorted({k for k in keys if k not in FILTER_FIELDS})
        if unknown:
            raise ValidationError(
                f"Unknown filter {', '.join(map(repr, unknown))}: the filters are "
                f"{', '.join(MATCH_FIELDS)}.")
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValidationError(f"The filter {', '.join(map(repr, twice))} is given twice.")
        empty = sorted(k for k, value in pairs if not value)
        if empty:
            raise ValidationError(f"The filter {', '.join(map(repr, empty))} has no value.")
        listed = JobFilterForm(QueryDict(text))
        if not listed.is_valid():
            raise ValidationError([f"{name}: {' '.join(errors)}"
                                   for name, errors in listed.errors.items()])
        blank = sorted(k for k in keys if k != "size" and not listed.cleaned_data.get(k))
        if blank:  # " " is stripped to nothing: dropped, it would widen the action
            raise ValidationError(f"The filter {', '.join(map(repr, blank))} is blank.")
        return listed.cleaned_data

    def problems(self) -> list[str]:
        return [f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
                for name, errors in self.errors.items()]

    @staticmethod
    def narrows(filters: dict[str, Any]) -> bool:
        """Whether the cleaned filters select less than every job."""
        return any(filters.get(name) for name in MATCH_FIELDS)
