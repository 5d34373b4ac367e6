"""Load a realistic, production-shaped data set of jobs (bench/dataset.py).

    .venv/bin/python bench/generate_jobs.py --jobs 1000000 --attempts-per-job 3

For benchmarks and for trying the admin on a table of the size it was built
for, into the database of DATABASE_URL (config.settings, as manage.py; or
DJANGO_SETTINGS_MODULE). A script of this project's bench, not a management
command: the wheel ships the apps, not their benchmark fixtures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--attempts-per-job", type=int, default=3)
    parser.add_argument("--days", type=int, default=30,
                        help="Finished jobs are spread over this many days.")
    parser.add_argument("--chunk", type=int, default=200_000,
                        help="Jobs per INSERT statement on PostgreSQL.")
    parser.add_argument("--no-vacuum", action="store_true",
                        help="Only ANALYZE afterwards (PostgreSQL).")
    args = parser.parse_args(argv)
    if args.jobs < 0 or args.attempts_per_job < 1:
        parser.error("--jobs must be >= 0 and --attempts-per-job >= 1")
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from bench.dataset import generate

    generate(args.jobs, args.attempts_per_job, days=args.days, chunk=args.chunk,
             vacuum=not args.no_vacuum, say=lambda line: print(line, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
