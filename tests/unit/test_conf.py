"""The JOBS setting: defaults written once, the environment maps onto them, typed strictly."""

import environ
import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs import conf


def env_of(**values: str) -> environ.Env:
    env = environ.Env()
    env.ENVIRON = dict(values)
    return env


def test_defaults_apply_when_nothing_is_set(settings):
    settings.JOBS = {}
    js = conf.get()
    assert (js.default_timeout, js.default_max_attempts, js.default_queue) == (600, 3, "default")
    assert js.served_queues() == ("default",)


def test_a_changed_setting_is_read_again(settings):
    settings.JOBS = {"DEFAULT_TIMEOUT": 120, "QUEUES": ["reports", "emails"]}
    assert conf.get().default_timeout == 120
    assert conf.get().served_queues() == ("reports", "emails")
    settings.JOBS = {}
    assert conf.get().default_timeout == 600


def test_the_environment_sets_only_what_it_names_parsed_by_the_defaults_type():
    given = conf.from_env(env_of(JOBS_DEFAULT_TIMEOUT="120", JOBS_QUEUES="default,reports",
                                 JOBS_BACKOFF_CAP="30.5", UNRELATED="x"))
    assert given == {"DEFAULT_TIMEOUT": 120, "QUEUES": ["default", "reports"],
                     "BACKOFF_CAP": 30.5}


def test_a_malformed_environment_value_is_refused_naming_the_variable():
    with pytest.raises(ValueError):
        conf.from_env(env_of(JOBS_DEFAULT_TIMEOUT="ten"))


def test_a_float_for_a_whole_number_is_refused_not_rounded(settings):
    settings.JOBS = {"DEFAULT_MAX_ATTEMPTS": 2.7}
    with pytest.raises(ImproperlyConfigured, match="JOBS_DEFAULT_MAX_ATTEMPTS"):
        conf.get()


def test_q_cluster_uses_our_broker_and_lets_the_environment_override():
    q = conf.q_cluster_from_env(env_of(Q_WORKERS="4", Q_CLUSTER_NAME="reports"))
    assert q["broker_class"] == conf.BROKER
    assert (q["workers"], q["name"]) == (4, "reports")
    assert q["retry"] > q["timeout"]  # django-q2 must never re-deliver a running job
    assert conf.q_cluster(workers=8)["workers"] == 8


def test_q_bulk_q_recycle_and_q_queue_limit_come_from_the_environment_as_integers():
    q = conf.q_cluster_from_env(env_of(Q_BULK="8", Q_RECYCLE="20000", Q_QUEUE_LIMIT="4"))
    assert (q["bulk"], q["recycle"], q["queue_limit"]) == (8, 20000, 4)
    # Unset, the reservation size is the database's (jobs.worker.reservation), and a
    # cluster holds one reserved job in django-q2's queue, not workers squared.
    assert conf.q_cluster_from_env(env_of())["bulk"] is None
    assert conf.q_cluster_from_env(env_of())["queue_limit"] == 1


def test_jobs_database_names_the_engines_alias_and_django_q2s_orm_follows_it():
    assert conf.from_env(env_of(JOBS_DATABASE="jobs")) == {"DATABASE": "jobs"}
    assert conf.q_cluster_from_env(env_of(JOBS_DATABASE="jobs"))["orm"] == "jobs"
    assert conf.q_cluster_from_env(env_of())["orm"] == "default"
