"""`manage.py schedules list` and `manage.py schedules run NAME`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.exceptions import JobsError
from jobs.models import Schedule
from jobs.scheduling import cron, firing


class Command(BaseCommand):
    help = "List schedules with their next runs, or run one now."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Every schedule and its next runs.")
        listing.add_argument("--count", type=int, default=3,
                             help="How many upcoming runs to show (default 3).")
        run = sub.add_parser(
            "run", help="Enqueue one job for a schedule now; its timetable is unaffected."
        )
        run.add_argument("name")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list(options["count"])
        else:
            self._run(options["name"])

    def _list(self, count: int) -> None:
        rows = list(Schedule.objects.select_related("last_job"))
        if not rows:
            self.stdout.write("No schedules. `manage.py install_schedules` adds the built-in ones.")
        for s in rows:
            state = "enabled" if s.enabled else "DISABLED"
            self.stdout.write(f"{s.name}  [{state}]  {s.task_name}  {s.cron} ({s.time_zone})")
            if s.enabled and s.next_run_at:
                following = cron.upcoming(s.cron, s.time_zone, max(count - 1, 0),
                                               after=s.next_run_at)
                for when in [s.next_run_at, *following][:count]:
                    self.stdout.write(f"    next: {cron.format_run(when, s.time_zone)}")
            if s.last_run_at:
                job = s.last_job
                self.stdout.write(f"    last: {cron.format_run(s.last_run_at, s.time_zone)}"
                                  + (f"  job {job.pk} [{job.status}]" if job else ""))
            if s.last_error:
                self.stdout.write(self.style.ERROR(f"    error: {s.last_error}"))

    def _run(self, name: str) -> None:
        schedule = Schedule.objects.filter(name=name).first()
        if schedule is None:
            raise CommandError(f"No schedule named {name!r}; see `manage.py schedules list`.")
        try:
            job = firing.run_now(schedule)
        except JobsError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Enqueued job {job.pk} for schedule {name}."))
