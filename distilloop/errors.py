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


class BudgetExhausted(DistilloopError):
    """A reservation would cross a budget cap; nothing was sent."""

    def __init__(self, message: str, *, scope: str = "campaign", resource: str = "usd") -> None:
        super().__init__(message)
        self.scope = scope
        self.resource = resource


class TeacherError(DistilloopError):
    """A teacher call failed (transport, API error, or an answer that cannot be parsed)."""

    def __init__(self, message: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.status = status


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


class EngineError(DistilloopError):
    """A compute engine could not run: its cluster cannot be reached, or a worker failed."""
