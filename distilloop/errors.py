"""One exception root, a typed tree under it.

Every message says what was expected, what was got, and how to fix it; the CLI prints it on one line
and exits with code 2 (bad input) or 1 (a failure at run time).
"""

from __future__ import annotations


class DistilloopError(Exception):
    """Root of every error distilloop raises on purpose."""

    exit_code = 1


class UserInputError(DistilloopError):
    """Bad input from the user: a config, a data file, a command-line argument."""

    exit_code = 2


class ConfigError(UserInputError):
    """The campaign config is invalid."""


class DataError(UserInputError):
    """A data file is missing or malformed."""


class MissingExtraError(UserInputError):
    """An optional dependency is not installed; the message names the exact install command."""


class StoreError(DistilloopError):
    """The campaign store is missing, locked or from an incompatible version."""


class NotAStore(StoreError):
    """The store path holds nothing yet, a folder, an empty or another application's file: the user's to fix;
    exit code 2."""

    exit_code = 2


class StoreLocked(StoreError):
    """Another command is writing to the campaign store (one writer at a time); exit code 2."""

    exit_code = 2


class BudgetExhausted(DistilloopError):
    """A reservation would cross a budget cap; nothing was sent."""

    def __init__(self, message: str, *, scope: str = "campaign", resource: str = "usd") -> None:
        super().__init__(message)
        self.scope = scope
        self.resource = resource


class TeacherError(DistilloopError):
    """A teacher call failed (transport, API error, or an answer that cannot be parsed).

    ``maybe_billed``: the request reached the provider and may have been billed although no usable answer came
    back (a timeout, a connection dropped after sending, a 200 whose body is broken); the ensemble charges such a
    call at its expected cost, flagged as an estimate. ``spend``: what the failed call is known to have cost
    (e.g. the samples of a self-consistency call that did answer), when known."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None,
                 retry_after: float | None = None, maybe_billed: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.maybe_billed = maybe_billed
        self.spend: object | None = None


class InvalidAnswer(TeacherError):
    """The teacher answered, but not with a label from the label set (or not in the asked format)."""


class BatchPending(DistilloopError):
    """A teacher's provider batch has not finished yet; the round resumes with `distilloop run` later."""

    exit_code = 0

    def __init__(self, message: str, *, batches: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.batches = batches or {}


class ReviewError(DistilloopError):
    """The human-review backend failed (e.g. Label Studio unreachable)."""


class StudentError(DistilloopError):
    """The student could not be trained, evaluated or loaded."""


class TeachersFailed(DistilloopError):
    """Every teacher failed in a round (no key, an outage): the campaign stops instead of burning its rounds."""


class EngineError(DistilloopError):
    """A compute engine could not run: its cluster cannot be reached, or a worker failed."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``docker stop``, a scheduler's time limit) during a command: it stops as Ctrl-C stops
    (a campaign is checkpointed; ``run`` resumes it), with exit code 143."""
