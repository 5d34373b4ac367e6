"""Every due time fires exactly once, whatever the first run time (issue 21, point 1).

The next run after a firing is computed from the fired slot (the stored
next_run_at), never from the tick time; an off-grid next run fires as its own
slot and is followed by the next cron time after it. The misfire policy still
skips the times missed during an outage.
"""

from datetime import UTC, datetime, timedelta

import pytest

from jobs.models import Job, MisfirePolicy, OverlapPolicy, Schedule
from jobs.scheduling.firing import MISFIRE_GRACE, create_schedule, fire_due, plan_fire

T = datetime(2026, 1, 5, 19, 38, tzinfo=UTC)


def at(minutes=0, seconds=0.0):
    return T + timedelta(minutes=minutes, seconds=seconds)


def make(cron, due, **fields):
    fields.setdefault("overlap_policy", OverlapPolicy.ALLOW)
    schedule = create_schedule("s", "tests.noop", cron, "UTC", **fields)
    Schedule.objects.filter(pk=schedule.pk).update(next_run_at=due)
    schedule.refresh_from_db()
    return schedule


def fired_slots(schedule):
    keys = Job.objects.filter(idempotency_key__startswith=f"schedule:{schedule.pk}:")
    prefix = f"schedule:{schedule.pk}:"
    return sorted(datetime.fromisoformat(k.removeprefix(prefix))
                  for k in keys.values_list("idempotency_key", flat=True))


# --- the pure plan ---------------------------------------------------------------------


def test_plan_the_next_run_follows_the_slot_not_the_tick():
    # The reproduction: next run 19:38:59.95, tick 19:39:00.15.
    due = at(seconds=59.95)
    assert plan_fire("* * * * *", "UTC", due, at(1, 0.15)) == (due, at(1))


def test_plan_an_on_grid_slot_fired_late_but_in_grace_is_followed_by_the_next_cron_time():
    assert plan_fire("* * * * *", "UTC", at(0), at(1)) == (at(0), at(1))
    assert plan_fire("* * * * *", "UTC", at(0), at(0, 59.9)) == (at(0), at(1))


def test_plan_an_outage_still_skips_to_the_latest_missed_time():
    # Down from 19:38 to 22:43:30: one slot (22:43), the next after it in the future.
    now = at(185, 30)
    assert now - at(0) > MISFIRE_GRACE
    assert plan_fire("* * * * *", "UTC", at(0), now) == (at(185), at(186))
    assert plan_fire("0 * * * *", "UTC", at(0), now) == (at(142), at(202))  # 22:00, 23:00


def test_plan_an_off_grid_slot_missed_with_no_cron_time_since_fires_itself():
    due = at(0, 30)  # 19:38:30, daily at 19:39 would be the next cron time
    fire_at, following = plan_fire("39 19 * * *", "UTC", due, at(0, 59))
    assert (fire_at, following) == (due, at(1))


# --- the real firing, with a controlled clock ------------------------------------------


def test_a_cron_time_between_an_off_grid_next_run_and_the_tick_fires(db):
    s = make("* * * * *", at(0, 59.95))
    assert fire_due(now=at(1, 0.15)) == 1
    s.refresh_from_db()
    assert s.next_run_at == at(1)  # from the fired slot; the tick's 19:40 would lose 19:39
    assert fire_due(now=at(1, 0.65)) == 1  # the next tick fires 19:39:00
    s.refresh_from_db()
    assert s.next_run_at == at(2)
    assert fire_due(now=at(1, 1.15)) == 0
    assert fired_slots(s) == [at(0, 59.95), at(1)]


def test_a_slot_fired_up_to_the_grace_late_does_not_swallow_the_next_cron_time(db):
    s = make("* * * * *", at(0))
    assert fire_due(now=at(1)) == 1  # 60 s late: still on time
    assert fire_due(now=at(1, 0.5)) == 1
    assert fire_due(now=at(1, 1.0)) == 0
    assert fired_slots(s) == [at(0), at(1)]
    s.refresh_from_db()
    assert s.next_run_at == at(2)


@pytest.mark.parametrize("policy", [MisfirePolicy.RUN_ONCE, MisfirePolicy.SKIP])
def test_an_outage_is_not_replayed_only_its_latest_on_time_slot_fires(db, policy):
    """Both policies: 22:43 is 30 s old at the tick, so on time; 19:38..22:42 stay skipped."""
    s = make("* * * * *", at(0), misfire_policy=policy)
    fire_due(now=at(185, 30))
    fire_due(now=at(185, 31))
    assert fired_slots(s) == [at(185)]
    s.refresh_from_db()
    assert s.next_run_at == at(186)
