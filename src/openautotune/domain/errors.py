"""Typed domain errors. `api/errors.py` alone turns them into Statsig's `{status, message}` shape."""

from __future__ import annotations

from dataclasses import dataclass


class DomainError(Exception):
    """Base of every error the domain and services raise on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(DomainError):
    """The named thing does not exist (404)."""


class Conflict(DomainError):
    """The request is well-formed but clashes with the current state (400 in Statsig's API)."""


class Forbidden(DomainError):
    """The caller may not do this (403)."""


class Unauthorized(DomainError):
    """The caller did not present a usable key (401)."""


class Unavailable(DomainError):
    """A store the request needs cannot be used right now (503); nothing was stored or acknowledged."""


@dataclass(frozen=True)
class FieldProblem:
    """One invalid field: `property` is the field path as the client named it."""

    property: str
    error_message: str


class InvalidInput(DomainError):
    """One or more fields are invalid (400 with `errors: [{property, errorMessage}]`)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("Invalid request. Please check the request input and try again.")
        self.problems = problems

    @classmethod
    def field(cls, property: str, error_message: str) -> InvalidInput:
        return cls([FieldProblem(property, error_message)])
