"""SQLite's WAL checkpoints leave the request path (jobs.dialect.sqlite).

These run on every database the suite runs on: each opens its own SQLite file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from django.db.utils import ConnectionHandler
from django.test import override_settings

from jobs.dialect import sqlite

ROW = "x" * 3000  # about one page per row


@pytest.fixture
def opened():
    """Opens SQLite files and closes them after the test (Python 3.13 warns of an
    unclosed connection, and warnings are errors here)."""
    connections: list[sqlite3.Connection] = []

    def open_file(path: Path, wal: bool = True) -> sqlite3.Connection:
        db = sqlite3.connect(path, isolation_level=None)
        connections.append(db)
        if wal:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE t (v TEXT)")
        return db

    yield open_file
    for db in connections:
        db.close()


def _frames(db: sqlite3.Connection) -> int:
    # A checkpoint of nothing (TRUNCATE would reset the log): PASSIVE reports the log size.
    return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def test_a_tuned_connection_leaves_the_checkpoint_to_the_background(tmp_path: Path,
                                                                     opened) -> None:
    db = opened(tmp_path / "a.sqlite3")
    sqlite.tune(db.cursor())
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 10_000
    for _ in range(1500):  # past SQLite's own threshold of 1,000 pages
        db.execute("INSERT INTO t VALUES (?)", (ROW,))
    size = (tmp_path / "a.sqlite3-wal").stat().st_size
    assert size > 1000 * 4096, "a commit checkpointed by itself below the threshold"

    frames, copied = sqlite.checkpoint(db.cursor())
    assert frames >= 1500 and copied == frames
    db.execute("INSERT INTO t VALUES (?)", (ROW,))
    assert _frames(db) < 10, "after a full checkpoint the log starts again from its beginning"


def test_an_untuned_connection_checkpoints_inside_its_commits(tmp_path: Path, opened) -> None:
    """The cost the module removes: SQLite's default makes a commit copy the log."""
    db = opened(tmp_path / "b.sqlite3")
    for _ in range(1500):
        db.execute("INSERT INTO t VALUES (?)", (ROW,))
    assert _frames(db) < 1000


@override_settings(JOBS={"SQLITE_AUTOCHECKPOINT_PAGES": 0})
def test_zero_keeps_sqlites_own_threshold(tmp_path: Path, opened) -> None:
    db = opened(tmp_path / "c.sqlite3")
    sqlite.tune(db.cursor())
    assert db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000


def test_every_new_django_sqlite_connection_is_tuned(tmp_path: Path, django_db_blocker) -> None:
    handler = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3",
                                             "NAME": str(tmp_path / "d.sqlite3")}})
    conn = handler["default"]
    try:
        with django_db_blocker.unblock(), conn.cursor() as cursor:
            cursor.execute("PRAGMA wal_autocheckpoint")
            assert cursor.fetchone()[0] == 10_000
    finally:
        conn.close()


def test_other_databases_are_left_alone() -> None:
    class Other:
        vendor = "postgresql"

        @property
        def connection(self) -> None:
            pytest.fail("no statement may be sent to another database")

    sqlite.on_connection_created(sender=None, connection=Other())


def test_checkpoint_outside_wal_mode_copies_nothing(tmp_path: Path, opened) -> None:
    db = opened(tmp_path / "e.sqlite3", wal=False)
    assert sqlite.checkpoint(db.cursor()) == (0, 0)
