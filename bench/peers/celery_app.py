"""Celery with the Redis broker, with or without django-celery-results (PEER decides).

Without results Celery writes nothing anywhere, so the no-op increments a Redis
counter for the benchmark to see it finish (one INCR, ~0.1 ms, on the same Redis).
"""

import os

import django
import redis
from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.peers.settings")
django.setup()

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
WITH_RESULTS = os.environ["PEER"] == "celery+results"
DONE_KEY = "bench:peers:done"
counter = redis.Redis.from_url(REDIS_URL)

app = Celery("bench_peers", broker=REDIS_URL)
app.conf.update(
    result_backend="django-db" if WITH_RESULTS else None,
    task_ignore_result=not WITH_RESULTS,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop() -> None:
    if not WITH_RESULTS:
        counter.incr(DONE_KEY)
