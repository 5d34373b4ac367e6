"""What bench/peers/run.py needs to know of each system, in one place.

A System says which interpreter and settings it runs under, how to start its
workers, and (inside a child process, after django.setup()) how to enqueue a
no-op, count finished jobs and empty its tables. Only the methods of the system
being measured import its packages, so this module loads in either virtualenv.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PEERS_PY = ROOT / "bench" / "peers" / ".venv" / "bin" / "python"
PROJECT_PY = ROOT / ".venv" / "bin" / "python"
WORKERS = 2


@dataclass(frozen=True)
class System:
    name: str
    db_slug: str  # its own database: bench_peer_<slug> (or <slug>.sqlite3)
    database_backed: bool = True
    sqlite: bool = False  # also measured on SQLite
    note: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)

    # --- outside the child: processes ---------------------------------------------

    @property
    def ours(self) -> bool:
        return self.name == "ours"

    @property
    def python(self) -> Path:
        return PROJECT_PY if self.ours else PEERS_PY

    def env(self) -> dict[str, str]:
        if self.ours:
            return {"DJANGO_SETTINGS_MODULE": "config.settings", "JOBS_TASK_MODULES": "bench.tasks",
                    "Q_WORKERS": str(WORKERS), "Q_CLUSTER_NAME": "default", **self.extra_env}
        return {"DJANGO_SETTINGS_MODULE": "bench.peers.settings", "PEER": self.name,
                **self.extra_env}

    def manage(self) -> list[str]:
        if self.ours:
            return [str(self.python), str(ROOT / "manage.py")]
        return [str(self.python), "-m", "django"]

    def worker_commands(self, clusters: int = 1) -> list[list[str]]:
        """The worker processes, WORKERS jobs at a time in all (per cluster, for ours)."""
        if self.ours and clusters > 1:  # as bench/bench_scale.py: one queue, named clusters
            return [[*self.manage(), "qcluster", "--name", f"bench-{i}", "--queues", "default"]
                    for i in range(clusters)]
        if clusters != 1:
            raise ValueError(f"{self.name} runs as one set of workers, not {clusters} clusters")
        if self.name in ("ours", "django-q2"):
            return [[*self.manage(), "qcluster"]]
        if self.name == "django-tasks-db":
            # One job at a time per db_worker process; 50 ms poll when idle.
            return [[*self.manage(), "db_worker", "--interval", "0.05", "--worker-id", f"w{i}"]
                    for i in range(WORKERS)]
        if self.name == "procrastinate":
            return [[*self.manage(), "procrastinate", "worker", "--concurrency", str(WORKERS)]]
        return [[str(self.python), "-m", "celery", "-A", "bench.peers.celery_app", "worker",
                 "--concurrency", str(WORKERS), "--pool", "prefork", "--without-gossip",
                 "--without-mingle", "--without-heartbeat", "--loglevel", "WARNING"]]

    # --- inside the child (Django set up) -----------------------------------------

    def enqueuer(self) -> Any:
        """A zero-argument callable enqueuing one no-op; returns a token for finished()."""
        if self.ours:
            import bench.tasks  # noqa: F401 - registers bench.noop
            from jobs import enqueue

            return lambda: enqueue("bench.noop").pk
        if self.name == "django-q2":
            from django_q.tasks import async_task

            return lambda: async_task("bench.peers.tasks_q.noop")
        if self.name == "django-tasks-db":
            from bench.peers.tasks_dt import noop

            return lambda: noop.enqueue().id
        if self.name == "procrastinate":
            from bench.peers.tasks_procrastinate import noop

            return lambda: noop.defer()
        from bench.peers.celery_app import DONE_KEY, counter, noop

        if self.name == "celery+results":
            return lambda: noop.delay().id

        def put() -> int:
            before = int(counter.get(DONE_KEY) or 0)
            noop.delay()
            return before

        return put

    def done_count(self, enqueued: int) -> int:
        """How many of the `enqueued` jobs finished, read the way each system records it.

        django-q2 prunes saved results to its save_limit (250), so its count is what
        left django_q_ormq: a row goes only after its result was saved.
        """
        if self.name == "django-q2":
            return enqueued - _scalar("SELECT count(*) FROM django_q_ormq")
        if self.name == "celery":
            from bench.peers.celery_app import DONE_KEY, counter

            return int(counter.get(DONE_KEY) or 0)
        sql = {
            "ours": "SELECT count(*) FROM jobs_job WHERE status = 'succeeded'",
            "django-tasks-db": "SELECT count(*) FROM django_tasks_database_dbtaskresult"
                               " WHERE status = 'SUCCESSFUL'",
            "procrastinate": "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'",
            "celery+results": "SELECT count(*) FROM django_celery_results_taskresult"
                              " WHERE status = 'SUCCESS'",
        }[self.name]
        return _scalar(sql)

    def finished(self, token: Any) -> bool:
        if self.name == "celery":
            return self.done_count(0) > token
        if self.ours:  # UUID keys through the ORM: SQLite stores them as hex
            from jobs.models import Job, JobStatus

            return Job.objects.filter(pk=token, status=JobStatus.SUCCEEDED).exists()
        if self.name == "django-tasks-db":
            from django_tasks import TaskResultStatus
            from django_tasks_db.models import DBTaskResult

            return DBTaskResult.objects.filter(
                pk=token, status=TaskResultStatus.SUCCESSFUL).exists()
        sql = {
            "django-q2": "SELECT 1 FROM django_q_task WHERE id = %s",
            "procrastinate": "SELECT 1 FROM procrastinate_jobs WHERE id = %s"
                             " AND status = 'succeeded'",
            "celery+results": "SELECT 1 FROM django_celery_results_taskresult"
                              " WHERE task_id = %s AND status = 'SUCCESS'",
        }[self.name]
        return _scalar(sql, [str(token) if self.name != "procrastinate" else token]) is not None

    def reset(self) -> None:
        """Empty the system's queue and result tables (and Redis for Celery)."""
        from django.db import connection

        if self.name.startswith("celery"):
            from bench.peers.celery_app import counter

            counter.flushdb()
        tables = {
            "ours": ["jobs_job", "jobs_attempt", "jobs_deadletter", "jobs_step"],
            "django-q2": ["django_q_ormq", "django_q_task"],
            "django-tasks-db": ["django_tasks_database_dbtaskresult"],
            "procrastinate": ["procrastinate_jobs", "procrastinate_events"],
            "celery+results": ["django_celery_results_taskresult"],
            "celery": [],
        }[self.name]
        with connection.cursor() as cursor:
            for table in tables:
                if connection.vendor == "postgresql":
                    cursor.execute(f"TRUNCATE {table} CASCADE")
                else:
                    cursor.execute("PRAGMA foreign_keys = OFF")
                    cursor.execute(f"DELETE FROM {table}")
                    cursor.execute("PRAGMA foreign_keys = ON")
            if connection.vendor == "postgresql":
                cursor.execute("ANALYZE")


def _scalar(sql: str, params: list[Any] | None = None) -> Any:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        row = cursor.fetchone()
    return row[0] if row else None


SYSTEMS = [
    System("ours", "ours", sqlite=True, note="Job-table broker, every attempt recorded"),
    System("django-tasks-db", "tasksdb", sqlite=True, note="db_worker x2, 50 ms interval"),
    System("procrastinate", "procrastinate", note="LISTEN/NOTIFY, concurrency 2"),
    System("django-q2", "djangoq2", sqlite=True, note="ORM broker, results saved"),
    System("celery", "celery", database_backed=False, note="Redis broker, no result record"),
    System("celery+results", "celeryresults", database_backed=False,
           note="Redis broker + django-celery-results"),
]
BY_NAME = {s.name: s for s in SYSTEMS}
