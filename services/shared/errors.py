"""The one error hierarchy. Domain code raises these; ``services.api.errors`` maps them to HTTP in one place."""

from __future__ import annotations

from typing import Any, ClassVar


class LockgateError(Exception):
    """Base of every error Lockgate reports to a caller. ``code`` is stable and machine-readable."""

    code: ClassVar[str] = "lockgate_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class CommandRejectedError(LockgateError):
    """A business rule said no. Nothing was written."""

    code = "command_rejected"


class AlreadyExistsError(CommandRejectedError):
    code = "already_exists"


class ConflictError(CommandRejectedError):
    """The target's state does not allow the command now (an illegal transition, a stale plan): 409."""

    code = "conflict"


class ArchivedError(CommandRejectedError):
    """The command targets something that has been archived."""

    code = "archived"


class NotFoundError(LockgateError):
    code = "not_found"


class ConcurrencyConflictError(LockgateError):
    """The stream is not at the version the caller expected (If-Match miss or a lost race). Nothing was written."""

    code = "concurrency_conflict"

    def __init__(self, message: str, *, stream_id: str, expected: int | None, actual: int | None) -> None:
        super().__init__(message, stream_id=stream_id, expected=expected, actual=actual)
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual


class IdempotencyKeyReusedError(CommandRejectedError):
    """An idempotency key that was already used for a different stream."""

    code = "idempotency_key_reused"


class ContractViolationError(LockgateError):
    """Input does not match its contract (msgspec validation); the message keeps the JSON path."""

    code = "contract_violation"


class ArtifactError(ContractViolationError):
    """A dbt artifact Lockgate cannot ingest: not JSON, the wrong kind or version, or a graph it cannot keep
    (duplicate or dangling unique_ids, NUL characters, runaway nesting). The message names the artifact and
    the offending node or JSON path."""

    code = "invalid_artifact"


class ForbiddenError(LockgateError):
    """The caller may not do this, e.g. act on a tenant that is not theirs."""

    code = "forbidden"


class UnauthenticatedError(LockgateError):
    code = "unauthenticated"


class InfrastructureError(LockgateError):
    """PostgreSQL, NATS or another backing service is unavailable."""

    code = "infrastructure_unavailable"


class DbtCommandError(LockgateError):
    """A dbt command failed (non-zero exit or timeout). The message names the command and ends with dbt's output."""

    code = "dbt_command_failed"

    def __init__(self, message: str, *, command: str, returncode: int | None, output_tail: str) -> None:
        super().__init__(message, command=command, returncode=returncode, output_tail=output_tail)
        self.command = command
        self.returncode = returncode
        self.output_tail = output_tail
