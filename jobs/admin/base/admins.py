"""The ModelAdmin bases every jobs admin extends.

`GuardedAdmin` refuses malformed input with a 400 before any query (the
request guard, `jobs.ops.guards`, as a method decorator) and runs Django's
own transactions on the engine's database; `LargeTableAdmin` adds the
defaults of a table that grows to millions of rows: the estimated count,
no second COUNT(*), no facets, no adding or deleting history.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import method_decorator

from jobs import database
from jobs.admin.base.pagination import EstimatedCountPaginator
from jobs.ops.guards import check_selected_ids, refuses_unstorable_input


class GuardedAdmin(admin.ModelAdmin):
    """Every page of every jobs admin refuses malformed input with a 400 before any query:
    a NUL in `?queue=`, a forged action with a selected id that is no id, an
    oversized value (`jobs.ops.guards.refuses_unstorable_input`)."""

    @method_decorator(refuses_unstorable_input)
    def changelist_view(self, request: HttpRequest,
                        extra_context: dict | None = None) -> HttpResponse:
        if request.method == "POST":
            check_selected_ids(self.model, request.POST.getlist(helpers.ACTION_CHECKBOX_NAME))
        return super().changelist_view(request, extra_context)

    @method_decorator(refuses_unstorable_input)
    def changeform_view(self, request: HttpRequest, object_id: str | None = None,
                        form_url: str = "", extra_context: dict | None = None) -> HttpResponse:
        # Django's own transaction here is on the router's database, not the engine's.
        with database.atomic():
            return super().changeform_view(request, object_id, form_url, extra_context)

    @method_decorator(refuses_unstorable_input)
    def history_view(self, request: HttpRequest, object_id: str,
                     extra_context: dict | None = None) -> HttpResponse:
        return super().history_view(request, object_id, extra_context)

    @method_decorator(refuses_unstorable_input)
    def delete_view(self, request: HttpRequest, object_id: str,
                    extra_context: dict | None = None) -> HttpResponse:
        with database.atomic():
            return super().delete_view(request, object_id, extra_context)


class LargeTableAdmin(GuardedAdmin):
    """Defaults for the tables that grow to millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False  # no second, unfiltered COUNT(*)
    show_facets = admin.ShowFacets.NEVER  # facet counts are a COUNT per choice
    list_per_page = 50

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        # History is the truth; old jobs leave through the purge_finished schedule.
        return False
