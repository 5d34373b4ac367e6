from django.core.management.base import BaseCommand

from jobs.worker.reaper import sweep


class Command(BaseCommand):
    help = "Retry or dead-letter running jobs whose worker stopped heartbeating."

    def handle(self, *args, **options):
        result = sweep()
        self.stdout.write(
            f"reaped {len(result.retried) + len(result.dead)}: "
            f"{len(result.retried)} retried, {len(result.dead)} dead-lettered"
        )
