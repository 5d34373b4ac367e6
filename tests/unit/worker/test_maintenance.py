"""The maintenance thread: periodic work that survives database outages, and a reaper
that gives live workers' heartbeats one lease to catch up after the database returns."""

import threading
import time

from django.db import OperationalError

from jobs.worker import maintenance
from tests.cluster import wait_for


class FakeDatabase:
    def __init__(self) -> None:
        self.up = True
        self.reaped_at: list[float] = []
        self.fired_at: list[float] = []

    def call(self, record: list[float]) -> None:
        if not self.up:
            raise OperationalError("server closed the connection unexpectedly")
        record.append(time.monotonic())


def test_after_an_outage_the_reaper_waits_one_lease_and_the_scheduler_does_not(
    settings, monkeypatch
):
    settings.JOBS = {**settings.JOBS, "LEASE_SECONDS": 1.0}
    db = FakeDatabase()
    monkeypatch.setattr(maintenance, "periodic", lambda: [
        ("reaper", lambda: db.call(db.reaped_at), 0.0),
        ("scheduler", lambda: db.call(db.fired_at), 0.0),
    ])
    monkeypatch.setattr(maintenance, "close_old_connections", lambda: None)
    stop = threading.Event()
    thread = threading.Thread(target=maintenance.run_forever, args=(stop, 0.01), daemon=True)
    thread.start()
    try:
        assert wait_for(lambda: db.reaped_at, timeout=2, interval=0.01)  # reaps while up
        db.up = False
        time.sleep(0.2)  # an outage of a few ticks
        back = time.monotonic()
        db.up = True
        assert wait_for(lambda: any(t >= back for t in db.fired_at), timeout=2, interval=0.01)
        assert wait_for(lambda: any(t >= back for t in db.reaped_at), timeout=3, interval=0.01)
    finally:
        stop.set()
        thread.join(timeout=2)
    first_fire = min(t for t in db.fired_at if t >= back)
    first_reap = min(t for t in db.reaped_at if t >= back)
    assert first_fire - back < 0.2  # the scheduler resumes at once
    assert first_reap - back >= 1.0  # the reaper only after one lease
    assert first_reap - back < 2.0
