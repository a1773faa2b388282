"""Every exception the pipeline raises on purpose, in one place.

Step scripts catch ``InputError`` and print its message as one line: a user who points the
pipeline at bad input gets a sentence naming the dataset, the URI and the columns, not a trace.
"""

from __future__ import annotations


class RentalKpisError(Exception):
    """Base class of the project's own errors."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: one line, as on the command line."""
        return [f"{type(self).__name__}: {self}"]


class InputError(RentalKpisError):
    """The input is not what SPEC §1 promises: the step cannot run on it."""


class MissingDatasetError(InputError):
    def __init__(self, dataset: str, uri: str) -> None:
        super().__init__(f"dataset {dataset!r}: no input files at {uri}")
        self.dataset, self.uri = dataset, uri


class MissingColumnsError(InputError):
    def __init__(self, dataset: str, uri: str, missing: list[str], available: list[str]) -> None:
        super().__init__(
            f"dataset {dataset!r} at {uri}: header lacks required column(s) "
            f"{', '.join(missing)} (found: {', '.join(available) or 'nothing'})"
        )
        self.dataset, self.uri, self.missing, self.available = dataset, uri, missing, available


class UsageError(RentalKpisError, ValueError):
    """A command or notebook parameter that cannot work (a backend without a bucket, …)."""


class UnknownName(UsageError):
    """A table, stage or query name that the project does not define."""


class NoRunYet(RentalKpisError):
    """A lake or state machine without the succeeded run a command needs."""


class NotebookOrder(UsageError):
    """A notebook opened before the one that makes what it needs: names the notebook to run
    first (and the command that does the same)."""


class AwsUnavailable(UsageError):
    """No AWS credentials, or none that STS accepts: the aws backend cannot start."""


class StepFailed(RentalKpisError):
    """A pipeline step (a spark-submit process) exited non-zero."""

    def __init__(self, step: str, returncode: int, detail: str, log: str | None = None) -> None:
        where = f" (full log: {log})" if log else ""
        super().__init__(f"step {step} failed with exit code {returncode}: {detail}{where}")
        self.step, self.returncode, self.detail, self.log = step, returncode, detail, log


class CatalogError(RentalKpisError):
    """The catalog is missing or does not know a table a query needs."""


class QueryFailed(RentalKpisError):
    """A named query failed (on the local engine or on Athena)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"query {name} failed: {reason}")
        self.name, self.reason = name, reason


class LakeBusy(RentalKpisError):
    """Another run holds the lake's lock."""


class NotebookFailed(RentalKpisError):
    """A walkthrough notebook raised: which one, the error, and where its executed copy is."""

    def __init__(self, notebook: str, error: str, executed: str) -> None:
        self.notebook = notebook
        self.executed = executed
        super().__init__(f"notebook {notebook} failed: {error} (executed copy: {executed})")


class RunFailed(RentalKpisError):
    """A pipeline run on AWS (a state machine execution) ended without succeeding."""

    def __init__(self, run_id: str, status: str, error: str | None, cause: str | None) -> None:
        self.run_id, self.status = run_id, status
        super().__init__(f"run {run_id} {status}: {error or 'no error name'}: {cause or ''}")


class EmrStepFailed(RentalKpisError):
    """An EMR step ended in a state other than COMPLETED; says where its log is."""

    def __init__(self, step: str, state: str, reason: str, log: str) -> None:
        self.step, self.state, self.reason, self.log = step, state, reason, log
        why = f": {reason}" if reason else ""
        super().__init__(f"EMR step {step} ended {state}{why} (log: {log})")


class CrawlFailed(RentalKpisError):
    """The Glue crawl asked for did not start, did not finish, or did not succeed."""


class TeardownIncomplete(RentalKpisError):
    """Teardown met something it could not remove: what is left, and what to do about it."""

    def __init__(self, removed: list[str], problems: list[str]) -> None:
        self.removed, self.problems = removed, problems
        super().__init__("teardown incomplete: " + "; ".join(problems))


# ---------------------------------------------------------------- names, paths and the lake
# What a user typed that cannot name anything, or a lake that cannot be used: each is one
# line and exit 2 in the CLI. Raised at the edge where the name becomes a path or the
# filesystem / DuckDB refuses, never by catching everything.


class InvalidRunId(UsageError):
    """A run id outside the one pattern (``layout.RUN_ID``): it would become a path."""


class LakeUnusable(RentalKpisError):
    """The local lake cannot be used: a URI, a file, or a folder the OS refuses to write."""


class RunRecordDamaged(RentalKpisError):
    """A run record (``runs/<run_id>/run.json``) that is not one: truncated, not a JSON object,
    or without the run id, outcome, start time and stages every record has."""


class RunIdTaken(UsageError):
    """A run id already used on the lake: a finished run's record and results are kept as they
    are, never rewritten by a second run of the same id."""


class TablesReplaced(RentalKpisError):
    """The tables a run's Spark steps wrote were replaced (by another run) before the run's
    later stages, or its report, could use them."""


def os_error_text(error: OSError) -> str:
    """``Permission denied: /lake/x`` from an OSError, without Python's ``[Errno 13]`` noise."""
    reason = error.strerror or type(error).__name__
    where = error.filename if error.filename is not None else ""
    return f"{reason}: {where}" if where else reason


class Interrupted(RentalKpisError):
    """A signal (SIGTERM from ``timeout`` or CI, SIGINT from Ctrl-C, SIGHUP) stopped a command
    after its children were stopped and its run recorded as interrupted."""

    def __init__(self, signum: int, what: str = "") -> None:
        import signal

        self.signum = signum
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        super().__init__(f"{what + ' ' if what else ''}interrupted by {name}")
