"""Independent writes of a step run in parallel threads (``spark.parallel``, issue 15) and
behave as the sequential loop did: results by name, the first failure in the given order,
and an interruption that leaves no job running behind it."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from rental_kpis.spark.parallel import run_parallel


def it_returns_each_tasks_result_under_its_name_in_the_given_order(spark):
    results = run_parallel(
        spark,
        {
            "big": lambda: spark.range(1000).count(),
            "small": lambda: spark.range(10).count(),
            "python": lambda: "no job",
        },
    )
    assert list(results) == ["big", "small", "python"]
    assert results == {"big": 1000, "small": 10, "python": "no job"}


def it_raises_the_first_failure_in_the_given_order_not_the_first_in_time(spark):
    second_failed = threading.Event()
    finished: list[str] = []

    def first() -> None:
        second_failed.wait(30)  # fails after "second" has failed
        raise ValueError("first task")

    def second() -> None:
        second_failed.set()
        raise KeyError("second task")

    def third() -> int:
        count = spark.range(100).count()
        finished.append("third")  # runs to its end although others failed
        return count

    with pytest.raises(ValueError, match="first task"):
        run_parallel(spark, {"first": first, "second": second, "third": third})
    assert finished == ["third"]


def it_runs_a_single_task_in_the_calling_thread(spark):
    caller = threading.current_thread()
    assert run_parallel(spark, {"only": threading.current_thread}) == {"only": caller}


def it_cancels_the_jobs_of_an_interrupted_wait_and_leaves_the_session_usable(spark):
    """Ctrl-C while the tasks run: the KeyboardInterrupt propagates only once every task
    has stopped (its endless job cancelled), no stage is left running in the JVM, and the
    session still runs jobs.

    The endless job sleeps in Python workers, which Spark kills with a cancelled task: a
    JVM-only loop (``spark.range(...)`` summed) has no interruption check in its generated
    code and would go on burning both cores after its job was cancelled."""
    stopped: list[str] = []
    context = spark.sparkContext

    def endless() -> None:
        try:
            context.parallelize(range(2), 2).map(lambda _: time.sleep(3600)).collect()
        finally:
            stopped.append(threading.current_thread().name)

    threading.Timer(3.0, _thread.interrupt_main).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_parallel(spark, {"a": endless, "b": endless})
    assert len(stopped) == 2
    assert time.monotonic() - started < 60
    deadline = time.monotonic() + 30
    while context.statusTracker().getActiveStageIds() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert context.statusTracker().getActiveStageIds() == []
    assert spark.range(3).count() == 3
