"""The one place where errors become HTTP responses (application/problem+json)."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from litestar import MediaType, Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap

from contracts.errors import ProblemDetail
from services.shared.errors import (
    AlreadyExistsError,
    ArchivedError,
    CommandRejectedError,
    ConcurrencyConflictError,
    ConflictError,
    ContractViolationError,
    DbtCommandError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    InfrastructureError,
    LockgateError,
    NotFoundError,
    UnauthenticatedError,
)

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first isinstance match wins.
_STATUS: tuple[tuple[type[LockgateError], HTTPStatus], ...] = (
    (AlreadyExistsError, HTTPStatus.CONFLICT),
    (ArchivedError, HTTPStatus.CONFLICT),
    (ConflictError, HTTPStatus.CONFLICT),
    (DbtCommandError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (IdempotencyKeyReusedError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (CommandRejectedError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (NotFoundError, HTTPStatus.NOT_FOUND),
    (ConcurrencyConflictError, HTTPStatus.PRECONDITION_FAILED),
    (ContractViolationError, HTTPStatus.UNPROCESSABLE_ENTITY),
    (ForbiddenError, HTTPStatus.FORBIDDEN),
    (UnauthenticatedError, HTTPStatus.UNAUTHORIZED),
    (InfrastructureError, HTTPStatus.SERVICE_UNAVAILABLE),
)


def status_for(exc: LockgateError) -> HTTPStatus:
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def problem(
    request: Request[Any, Any, Any],
    status: HTTPStatus,
    *,
    code: str,
    detail: str,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[ProblemDetail]:
    body = ProblemDetail(
        type=f"urn:lockgate:error:{code}",
        title=status.phrase,
        status=int(status),
        detail=detail,
        code=code,
        instance=request.url.path,
        request_id=request.scope.get("state", {}).get("request_id"),
        extra=extra or {},
    )
    return Response(body, status_code=int(status), media_type=PROBLEM_JSON, headers=headers)


def _lockgate_error(request: Request[Any, Any, Any], exc: LockgateError) -> Response[ProblemDetail]:
    status = status_for(exc)
    extra = {key: value for key, value in exc.details.items() if value is not None}
    headers = {"WWW-Authenticate": "Bearer"} if status == HTTPStatus.UNAUTHORIZED else None
    if status >= HTTPStatus.INTERNAL_SERVER_ERROR:
        log.error("request failed: %s", exc.message)
    return problem(request, status, code=exc.code, detail=exc.message, extra=extra, headers=headers)


def _validation_error(request: Request[Any, Any, Any], exc: ValidationException) -> Response[ProblemDetail]:
    extra = {"errors": exc.extra} if exc.extra else {}
    return problem(request, HTTPStatus.BAD_REQUEST, code="invalid_request", detail=exc.detail, extra=extra)


def _http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[ProblemDetail]:
    status = HTTPStatus(exc.status_code)
    code = status.phrase.lower().replace(" ", "_").replace("-", "_")
    return problem(request, status, code=code, detail=exc.detail or status.phrase)


def _unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[ProblemDetail]:
    log.exception("unhandled error", exc_info=exc)
    return problem(request, HTTPStatus.INTERNAL_SERVER_ERROR, code="internal_error", detail="internal server error")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    LockgateError: _lockgate_error,
    ValidationException: _validation_error,
    HTTPException: _http_error,
    Exception: _unexpected,
}

__all__ = ["EXCEPTION_HANDLERS", "PROBLEM_JSON", "MediaType", "problem", "status_for"]
