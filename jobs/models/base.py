"""Every engine model's rows live in the engine's database (`jobs.database`), whatever
the project's DATABASE_ROUTERS say: a read routed to a replica that lags would lie
about a job's state."""

from __future__ import annotations

from typing import Any

from django.db import models

from jobs import database


class EngineManager(models.Manager):
    """Querysets on the engine's alias: `Job.objects...`, `create()`, `update()`,
    `delete()`, and related managers (`job.steps.all()`), which Django builds on the
    default manager's class and which keep the database of the queryset they get."""

    def get_queryset(self) -> models.QuerySet:
        return self._queryset_class(model=self.model, using=database.alias(), hints=self._hints)

    @property
    def db(self) -> str:
        return database.alias()


class EngineModel(models.Model):
    objects = EngineManager()

    class Meta:
        abstract = True

    def save(self, *args: Any, using: str | None = None, **kwargs: Any) -> None:
        super().save(*args, using=using or database.alias(), **kwargs)

    def delete(self, using: str | None = None, keep_parents: bool = False) -> tuple[int, dict]:
        return super().delete(using=using or database.alias(), keep_parents=keep_parents)


# Django reaches a related row (`attempt.job`), `refresh_from_db()` and a save's UPDATE
# through the base manager, by default a plain one that asks the router; each engine
# model's is its `objects` (Django takes the abstract parent's). Set here rather than
# as Meta.base_manager_name, which migrations would record for every model.
EngineModel._meta.base_manager_name = "objects"
