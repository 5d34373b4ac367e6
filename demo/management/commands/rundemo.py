"""One command for the embedded demo: database, admin user, demo jobs, web server and cluster.

The cluster runs under demo.supervisor: when it dies the terminal says how (exit code
or signal), it is reaped and restarted after a short backoff, and after five quick
deaths in a row the demo stops restarting it and says so. Ctrl-C stops both.
"""

import os
import secrets
import signal
import sys
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo import tasks
from demo.supervisor import Supervisor
from jobs import enqueue
from jobs.models import Job, Schedule
from jobs.scheduling.firing import create_schedule


def addresses(addrport: str) -> str:
    """Every address a newcomer needs, one a line."""
    base = f"http://{addrport}"
    return (f"Demo page:  {base}/\n"
            f"Dashboard:  {base}/dashboard/\n"
            f"Admin:      {base}/admin/jobs/job/\n"
            f"Health:     {base}/healthz\n"
            f"Metrics:    {base}/metrics (staff)")


class Command(BaseCommand):
    help = "Migrate, create a demo admin, enqueue demo jobs, run the web server and a cluster."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")
        parser.add_argument("--no-server", action="store_true",
                            help="Prepare data and exit (used by tests).")

    def handle(self, *args, addrport: str, no_server: bool, **options):
        call_command("migrate", interactive=False, verbosity=0)
        username, password = self._demo_admin()
        created = self._demo_jobs()
        call_command("install_schedules", verbosity=0)
        self._demo_schedule()
        self.stdout.write(self.style.SUCCESS(
            f"Demo admin: username {username!r}, password {password}\n"
            f"Enqueued {created} demo jobs (one succeeds after a retry, two end dead, "
            "a five-step import succeeds and another dies at its third step, and a "
            "one-minute index rebuild shows its progress live)."
        ))
        self.stdout.write(addresses(addrport))
        if no_server:
            return
        # Ctrl-C or SIGTERM stops both, even when started with SIGINT ignored.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        # Watched: a cluster that dies is reported, reaped and restarted (demo.supervisor).
        cluster = Supervisor(
            [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster"],
            env=os.environ.copy(), say=lambda line: self.stderr.write(self.style.ERROR(line)))
        cluster.start()
        try:
            # insecure=True: serve static files (admin CSS, vendored htmx) in the demo.
            call_command("runserver", addrport, use_reloader=False, insecure_serving=True)
        except KeyboardInterrupt:
            pass
        finally:
            self.stdout.write("Stopping the cluster...")
            cluster.stop()

    def _demo_admin(self) -> tuple[str, str]:
        """The demo admin; its password is set once (or whenever DEMO_ADMIN_PASSWORD is
        given), so a second `make run` does not log out a browser that is still open."""
        username = os.environ.get("DEMO_ADMIN_USER", "admin")
        chosen = os.environ.get("DEMO_ADMIN_PASSWORD")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@example.com"}
        )
        user.is_staff = user.is_superuser = True
        if created or chosen:
            password = chosen or secrets.token_urlsafe(9)
            user.set_password(password)
        else:
            password = ("unchanged since the first run (run with DEMO_ADMIN_PASSWORD=... "
                        "to set a new one)")
        user.save()
        return username, password

    def _demo_jobs(self) -> int:
        # Idempotency keys make a second `make run` add nothing twice.
        specs = [
            (tasks.add, (2, 3), {}, "demo:add"),
            (tasks.build_report, (7,), {"rows": 250}, "demo:report"),
            (tasks.flaky_fetch, ("https://example.com/feed",), {"fail_times": 1}, "demo:flaky"),
            (tasks.charge_card, (1042,), {}, "demo:charge"),
            (tasks.import_feed, ("partners.csv",), {}, "demo:import"),
            (tasks.add, (40, 2), {}, "demo:later"),
            (tasks.rebuild_index, ("products",), {}, "demo:rebuild"),
            (tasks.import_catalog, ("spring-catalog.csv",), {}, "demo:catalog-ok"),
            (tasks.import_catalog, ("partner-catalog.csv",), {"max_rows": 500},
             "demo:catalog-fails"),
        ]
        before = self._count()
        for t, args, kwargs, key in specs:
            run_after = timedelta(minutes=10) if key == "demo:later" else None
            enqueue(t, *args, idempotency_key=key, run_after=run_after, **kwargs)
        return self._count() - before

    @staticmethod
    def _demo_schedule() -> None:
        if not Schedule.objects.filter(name="demo-every-minute").exists():
            create_schedule("demo-every-minute", "demo.add", "* * * * *", "Europe/Berlin",
                            args=[1, 1])

    @staticmethod
    def _count() -> int:
        return Job.objects.count()
