"""No-op tasks for bench/bench_core.py.

`noop` is registered with our @task (a cluster imports this module through
JOBS_TASK_MODULES=bench.tasks); `noop_func` is the same no-op as a plain
function that django-q2's async_task refers to by dotted path.
"""

from jobs import task


@task(name="bench.noop")
def noop() -> None:
    return None


def noop_func() -> None:
    return None
