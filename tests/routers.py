"""A project's usual primary/replica router, for tests that check the engine ignores it."""

from typing import Any


class PrimaryReplicaRouter:
    """Every read to `replica`, every write to `default`: what a project with a read
    replica installs. The engine must not follow it (jobs.database)."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return "replica"

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True
