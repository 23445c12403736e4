from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from apscheduler.job import Job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from django.db import connection, connections

from django_metronome.jobstores import DjangoJobStore

BERLIN = ZoneInfo("Europe/Berlin")


#: Set on a test item whose call failed, so fixtures can add what they know.
FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


def pytest_report_header(config: pytest.Config) -> str:
    return f"database: {connection.vendor}"


def server_db_only() -> pytest.MarkDecorator:
    """Skip on SQLite: the test needs a database server it can disconnect from."""
    return pytest.mark.skipif(
        connection.vendor == "sqlite", reason="needs a database server (PostgreSQL or MariaDB)"
    )


def wait_for(condition: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s: {condition}")
        time.sleep(interval)


class TidyBackgroundScheduler(BackgroundScheduler):
    """
    APScheduler's BackgroundScheduler, closing its thread's database connection on exit.

    The stock loop queries the store once more after shutdown() and never closes
    the connection it opened, which keeps test databases from being dropped.
    """

    def _main_loop(self) -> None:
        try:
            super()._main_loop()
        finally:
            connections.close_all()


@pytest.fixture
def processes(tmp_path: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Real scheduler subprocesses on the test database, stopped (and checked) afterwards."""
    from tests.proctools import Processes

    procs = Processes(tmp_path)
    yield procs
    codes = procs.stop()
    if request.node.stash.get(FAILED, False):
        print(procs.logs())
    # Every process must have stopped cleanly: a crash there is a bug too.
    assert procs.clean_exits(codes), procs.logs()


@pytest.fixture
def scheduler() -> BackgroundScheduler:
    """An APScheduler scheduler that is never started: jobs need one to exist."""
    return BackgroundScheduler(timezone=BERLIN)


@pytest.fixture
def store(db: None, scheduler: BackgroundScheduler) -> Iterator[DjangoJobStore]:
    jobstore = DjangoJobStore()
    jobstore.start(scheduler, "default")
    yield jobstore
    jobstore.shutdown()


@pytest.fixture
def make_job(scheduler: BackgroundScheduler) -> Callable[..., Job]:
    def make(
        func: Any = "tests.testapp.jobs:noop",
        *,
        id: str = "téstïd",
        next_run_time: datetime | None = datetime(2026, 11, 25, 8, 0, tzinfo=BERLIN),
        trigger: Any = None,
        args: Any = (),
        kwargs: Any = None,
        **options: Any,
    ) -> Job:
        options.setdefault("executor", "default")
        options.setdefault("misfire_grace_time", 1)
        options.setdefault("coalesce", True)
        options.setdefault("max_instances", 1)
        options.setdefault("name", "a job")
        return Job(
            scheduler,
            id=id,
            func=func,
            trigger=trigger or DateTrigger(datetime(2026, 11, 25, 8, 0), timezone=BERLIN),
            args=args,
            kwargs=kwargs or {},
            next_run_time=next_run_time,
            **options,
        )

    return make
