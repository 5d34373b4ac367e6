"""Threads that race on their own database connections, for concurrency tests."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def race(step: Callable[[int, int], object], rounds: int, racers: int = 2) -> dict[int, list]:
    """Call step(racer, round) in `racers` threads, all starting each round together.

    Returns what each racer's calls returned, in order. Any exception in a racer
    stops the race and is raised here; each thread closes its own connection.
    """
    barrier = threading.Barrier(racers)
    results: dict[int, list] = {i: [] for i in range(racers)}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            for r in range(rounds):
                barrier.wait(timeout=30)
                results[i].append(step(i, r))
        except BaseException as exc:  # raised below, in the test's thread
            errors.append(exc)
            barrier.abort()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(racers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    if errors:
        raise errors[0]
    return results
