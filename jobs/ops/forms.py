"""The Django forms both screens read an operator's edits with.

An edit of a step's limits (`StepLimitsForm`) is read the same way in the
admin and on the dashboard, and the Schedule admin reads its JSON arguments
with the same strict field (`LimitsField`). Kept apart from
`jobs.ops.presentation`: a form parses and checks input, it draws nothing.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from jobs.core import serialization
from jobs.exceptions import UnstorableValue
from jobs.models import Step
from jobs.ops.operations import validate_limits


class LimitsField(forms.JSONField):
    """Strict JSON text, with an error that says where it broke and which rule, never a 500.

    Parsing and checking are `serialization.parse_json`'s, so what the field
    returns reads back unchanged from the column. The Schedule admin's args and
    kwargs use it too; `what` names the value in errors.
    """

    MAX_CHARS = 10_000
    what = "limits"

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and len(value) > self.MAX_CHARS:
            raise ValidationError(f"{self.what.capitalize()} are at most {self.MAX_CHARS:,} "
                                  "characters of JSON.", code="too_long")
        if not isinstance(value, str) or not value.strip():
            return super().to_python(value)
        try:
            # The text is bounded by MAX_CHARS; the byte limit only backs that up.
            stored = serialization.parse_json(value, self.what, 4 * self.MAX_CHARS + 16)
        except UnstorableValue as exc:
            raise ValidationError(f"{exc}.", code="invalid") from None
        # As Django's JSONField: a JSON string stays distinguishable from submitted text.
        return forms.fields.JSONString(stored) if isinstance(stored, str) else stored

    def bound_data(self, data: Any, initial: Any) -> Any:
        """Redisplay submitted text as it was typed: Django would parse it again and
        print the result, which fails for what to_python refuses (a huge integer,
        deep nesting) or cannot be rendered (an escaped lone surrogate)."""
        if self.disabled or not isinstance(data, str):
            return super().bound_data(data, initial)
        return forms.fields.InvalidJSONInput(data)


class StepLimitsForm(forms.ModelForm):
    """Reads and checks an edit of `Step.limits`; the admin and the dashboard both use it.

    Parsing is LimitsField's, checking is `operations.validate_limits`'s. The
    form never writes: it leaves the instance as loaded, and the screens save
    through `operations.save_step_limits`, which checks the permission and
    writes the limits column only.
    """

    class Meta:
        model = Step
        fields = ["limits"]
        field_classes = {"limits": LimitsField}

    def clean_limits(self) -> dict[str, Any]:
        return validate_limits(self.instance.limits or {}, self.cleaned_data.get("limits"))

    def _post_clean(self) -> None:
        # A ModelForm would copy the value onto the instance here; saving is
        # save_step_limits' job alone, which validates against the stored limits.
        pass
