"""The one place errors become HTTP answers, always in Statsig's `{status, message}` shape."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from openautotune.domain.errors import (
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    NotFound,
    Unauthorized,
    Unavailable,
)
from openautotune.domain.json_limits import JsonProblem

log = logging.getLogger("openautotune.api")

INVALID_REQUEST = "Invalid request. Please check the request input and try again."
FORBIDDEN = "Forbidden resource"


class ApiError(Exception):
    """An HTTP-level refusal raised by the api package itself (auth, headers, envelopes)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, errors: list[FieldProblem] | None = None) -> Response:
    body: dict[str, Any] = {"status": status, "message": message}
    if errors is not None:
        body["errors"] = [{"property": p.property, "errorMessage": p.error_message} for p in errors]
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _status_of(error: DomainError) -> int:
    if isinstance(error, NotFound):
        return 404
    if isinstance(error, Forbidden):
        return 403
    if isinstance(error, Unauthorized):
        return 401
    if isinstance(error, Unavailable):
        return 503
    return 400  # InvalidInput, Conflict: Statsig answers both with 400


def _property(loc: tuple[Any, ...]) -> str:
    """`("body", "variants", 0, "name")` -> `"variants[0].name"`."""
    path = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or str(loc[0] if loc else "body")


def _problem(error: dict[str, Any]) -> FieldProblem:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return FieldProblem(_property(loc), f"Unknown field {str(loc[-1])!r}")
    if kind == "json_invalid":
        return FieldProblem("body", "The body is not valid JSON")
    message = str(error.get("msg", "is invalid"))
    return FieldProblem(_property(loc), message.removeprefix("Value error, "))


def json_problem(error: JsonProblem) -> FieldProblem:
    return FieldProblem(error.path or "body", error.message)


def validation_problems(errors: Any) -> list[FieldProblem]:
    return [_problem(error) for error in errors]


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, error: DomainError) -> Response:
        problems = error.problems if isinstance(error, InvalidInput) else None
        message = INVALID_REQUEST if problems is not None else error.message
        if isinstance(error, Forbidden) and not error.message:
            message = FORBIDDEN
        return error_response(_status_of(error), message, problems)

    @app.exception_handler(ApiError)
    async def _api(_request: Request, error: ApiError) -> Response:
        return error_response(error.status, error.message)

    @app.exception_handler(JsonProblem)
    async def _json_problem(_request: Request, error: JsonProblem) -> Response:
        # A body refused by domain.json_limits (api.json_body): nothing has run, nothing is written.
        return error_response(400, INVALID_REQUEST, [json_problem(error)])

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, error: RequestValidationError) -> Response:
        return error_response(400, INVALID_REQUEST, validation_problems(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, error: StarletteHTTPException) -> Response:
        message = error.detail if isinstance(error.detail, str) else "Request failed"
        if error.status_code == 404:
            message = "Not Found. The requested resource could not be found."
        return error_response(error.status_code, message)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        if isinstance(error, RecursionError):
            return error_response(400, "The body is nested too deeply")
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error")


__all__ = ["ApiError", "Conflict", "error_response", "install", "validation_problems"]
