"""`manage.py install_schedules`: create the built-in maintenance schedules (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.scheduling.builtins import BUILTINS, install_builtins


class Command(BaseCommand):
    help = "Create the built-in schedules that are missing (see docs/schedules.md)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset", action="store_true",
            help="Also restore existing built-in schedules to their default cron, "
                 "time zone and arguments, and enable them.",
        )

    def handle(self, *args: Any, reset: bool, **options: Any) -> None:
        done = install_builtins(reset=reset)
        for builtin in BUILTINS:
            self.stdout.write(f"{builtin.name}: {done[builtin.name]} "
                              f"({builtin.cron} {builtin.time_zone}, task {builtin.task_name})")
