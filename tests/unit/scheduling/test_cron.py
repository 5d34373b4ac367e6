"""Cron and time-zone math (jobs.scheduling.cron): DST gaps and repeats, the runs
before and after a time, how a run is shown. Pure: no database."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.scheduling.cron import format_run, last_run_at_or_before, next_run_after, upcoming
from jobs.scheduling.firing import fire_due
from tests.schedules import T0, local


class TestTimeZonesAndDst:
    @pytest.mark.parametrize(
        ("tz", "day", "substitute_utc"),
        [
            # 02:00 does not exist: the clock jumps from 02:00 to 03:00 local.
            ("Europe/Berlin", date(2026, 3, 29), datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
            ("America/New_York", date(2026, 3, 8), datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        ],
    )
    def test_spring_forward_fires_once_at_the_first_instant_after_the_gap(
        self, tz, day, substitute_utc
    ):
        start = datetime.combine(day - timedelta(days=2), datetime.min.time(), ZoneInfo(tz))
        runs = upcoming("0 2 * * *", tz, 5, after=start)
        assert [local(r, tz) for r in runs] == [
            datetime.combine(day - timedelta(days=2), datetime.min.time()).replace(hour=2),
            datetime.combine(day - timedelta(days=1), datetime.min.time()).replace(hour=2),
            datetime.combine(day, datetime.min.time()).replace(hour=3),  # the substitute
            datetime.combine(day + timedelta(days=1), datetime.min.time()).replace(hour=2),
            datetime.combine(day + timedelta(days=2), datetime.min.time()).replace(hour=2),
        ]
        assert runs[2] == substitute_utc
        assert all(r.tzinfo is UTC for r in runs)

    @pytest.mark.parametrize(
        ("tz", "cron", "day", "first_utc"),
        [
            # 02:00-03:00 happens twice in Berlin, 01:00-02:00 twice in New York.
            ("Europe/Berlin", "0 2 * * *", date(2026, 10, 25),
             datetime(2026, 10, 25, 0, 0, tzinfo=UTC)),
            ("America/New_York", "30 1 * * *", date(2026, 11, 1),
             datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ],
    )
    def test_fall_back_fires_once_at_the_first_occurrence(self, tz, cron, day, first_utc):
        start = datetime.combine(day - timedelta(days=1), datetime.min.time(), ZoneInfo(tz))
        runs = upcoming(cron, tz, 3, after=start)
        on_the_day = [r for r in runs if r.astimezone(ZoneInfo(tz)).date() == day]
        assert on_the_day == [first_utc]
        # The local wall time is the same on all three days, on both sides of the change.
        assert len({local(r, tz).time() for r in runs}) == 1
        assert runs[1] - runs[0] == timedelta(hours=24)
        assert runs[2] - runs[1] == timedelta(hours=25)  # the day with the extra hour

    def test_last_run_mirrors_next_run(self):
        tz = "Europe/Berlin"
        at = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
        assert last_run_at_or_before("0 2 * * *", tz, at) == datetime(2026, 3, 29, 1, 0,
                                                                        tzinfo=UTC)
        assert last_run_at_or_before("0 * * * *", "UTC", T0) == T0

    def test_naive_datetimes_are_refused(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            next_run_after("0 * * * *", "UTC", datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="timezone-aware"):
            fire_due(now=datetime(2026, 1, 1))

    @pytest.mark.parametrize("zone", ["UTC", "Etc/UTC"])
    def test_a_utc_schedule_says_its_time_once(self, zone):
        when = datetime(2026, 6, 1, 21, 15, tzinfo=UTC)
        assert format_run(when, zone) == "2026-06-01 21:15 UTC"

    @pytest.mark.parametrize(("zone", "expected"), [
        ("Europe/Berlin", "2026-06-01 23:15 CEST (Europe/Berlin) = 2026-06-01 21:15 UTC"),
        # Zero offset but another zone's name: both are said, the zone is not UTC in winter.
        ("Europe/London", "2026-01-01 21:15 GMT (Europe/London) = 2026-01-01 21:15 UTC"),
    ])
    def test_another_zone_shows_local_time_then_utc(self, zone, expected):
        month = 1 if zone == "Europe/London" else 6
        when = datetime(2026, month, 1, 21, 15, tzinfo=UTC)
        assert format_run(when, zone) == expected
