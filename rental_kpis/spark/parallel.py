"""Independent Spark writes of one step run side by side, from threads of the driver.

Why: on a small input a Spark job is mostly fixed cost on the driver (planning, code
generation, scheduling, one thread of Python and py4j), so one job at a time leaves a core
idle; on a large one a CSV read in ``multiLine`` mode is one task per file, so one dataset at
a time uses one core. Spark schedules jobs submitted from several threads of one application
concurrently ("Scheduling Within an Application", Spark's job-scheduling guide), and PySpark
gives each Python thread its own JVM thread, so the jobs' local properties (SQL execution
ids, observations) stay apart. Measured in benchmarks/README.md (issue 15).

The results are those of running the tasks one after the other: each task is independent
of the others, every task runs to its end, and when any raises, the exception of the first
failing task in the given order is raised, as the sequential loop would have raised it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import TypeVar

from pyspark.sql import SparkSession

T = TypeVar("T")

# How often an interrupted wait cancels the jobs that the tasks may still start.
_CANCEL_EVERY_SECONDS = 0.2
# How often the waiting thread returns to the interpreter to see an interruption.
_POLL_SECONDS = 0.5


def run_parallel(spark: SparkSession, tasks: Mapping[str, Callable[[], T]]) -> dict[str, T]:
    """Run ``tasks`` (name -> function of no argument) in threads; return name -> result.

    A single task runs in the calling thread, with nothing to gain from a thread. When the
    caller is interrupted while waiting (Ctrl-C, or SIGTERM turned into an exception), every
    job of the session is cancelled until each task has stopped, so no task goes on writing
    after the interruption has propagated.
    """
    names = list(tasks)
    if len(names) <= 1:
        return {name: tasks[name]() for name in names}
    with ThreadPoolExecutor(len(names), thread_name_prefix="rental_kpis") as pool:
        futures = {name: pool.submit(tasks[name]) for name in names}
        try:
            # a wait with a timeout, again and again: the main thread gets back to Python
            # between waits, so Ctrl-C (or _thread.interrupt_main) is seen within a second
            while wait(futures.values(), timeout=_POLL_SECONDS).not_done:
                pass
        except BaseException:
            _stop(spark, list(futures.values()))
            raise
    for name in names:  # the first failure in the given order, as a loop would raise it
        error = futures[name].exception()
        if error is not None:
            raise error
    return {name: futures[name].result() for name in names}


def _stop(spark: SparkSession, futures: list[Future]) -> None:
    """Cancel the session's jobs until every task has returned or raised."""
    while True:
        spark.sparkContext.cancelAllJobs()
        _, pending = wait(futures, timeout=_CANCEL_EVERY_SECONDS)
        if not pending:
            return
