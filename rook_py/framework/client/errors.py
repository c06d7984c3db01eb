"""Typed API errors built from, and rendered to, ``metav1.Status``.

Both sides of the wire use this module: the client turns a Status body into an exception,
and the envtest emulator turns an exception into a Status body, so the two cannot drift.
Reason/code pairs and message wording follow k8s.io/apimachinery/pkg/api/errors/errors.go.
"""

from __future__ import annotations

from typing import Any, ClassVar

JSON = dict[str, Any]


class ApiError(Exception):
    """An error answered by the API server (or synthesised by the client for a transport failure)."""

    code: ClassVar[int] = 500
    reason: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        details: JSON | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = code if code is not None else type(self).code
        self.details: JSON = details or {}
        if retry_after is None and "retryAfterSeconds" in self.details:
            retry_after = float(self.details["retryAfterSeconds"])
        self.retry_after = retry_after

    @property
    def causes(self) -> list[JSON]:
        causes: list[JSON] = self.details.get("causes") or []
        return causes

    def to_status(self) -> JSON:
        status: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.status_code,
        }
        details = dict(self.details)
        if self.retry_after is not None and "retryAfterSeconds" not in details:
            details["retryAfterSeconds"] = max(1, round(self.retry_after))
        if details:
            status["details"] = details
        return status

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status_code}, {self.message!r})"


class BadRequest(ApiError):
    code = 400
    reason = "BadRequest"


class Unauthorized(ApiError):
    code = 401
    reason = "Unauthorized"


class Forbidden(ApiError):
    code = 403
    reason = "Forbidden"


class NotFound(ApiError):
    code = 404
    reason = "NotFound"


class MethodNotAllowed(ApiError):
    code = 405
    reason = "MethodNotAllowed"


class NotAcceptable(ApiError):
    code = 406
    reason = "NotAcceptable"


class AlreadyExists(ApiError):
    code = 409
    reason = "AlreadyExists"


class Conflict(ApiError):
    code = 409
    reason = "Conflict"


class Gone(ApiError):
    code = 410
    reason = "Gone"


class Expired(Gone):
    """410 with reason Expired: a watch or list resourceVersion older than the retained history."""

    reason = "Expired"


class RequestEntityTooLarge(ApiError):
    code = 413
    reason = "RequestEntityTooLarge"


class UnsupportedMediaType(ApiError):
    code = 415
    reason = "UnsupportedMediaType"


class Invalid(ApiError):
    code = 422
    reason = "Invalid"


class TooManyRequests(ApiError):
    code = 429
    reason = "TooManyRequests"


class InternalError(ApiError):
    code = 500
    reason = "InternalError"


class ServiceUnavailable(ApiError):
    code = 503
    reason = "ServiceUnavailable"


class ServerTimeout(ApiError):
    code = 504
    reason = "Timeout"


class TransportError(ApiError):
    """No answer from the server (connection refused/reset, read timeout). Not a metav1.Status."""

    code = 0
    reason = "TransportError"


_BY_REASON: dict[str, type[ApiError]] = {
    cls.reason: cls
    for cls in (
        BadRequest, Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable,
        AlreadyExists, Conflict, Gone, Expired, RequestEntityTooLarge, UnsupportedMediaType,
        Invalid, TooManyRequests, InternalError, ServiceUnavailable, ServerTimeout,
    )
}
_BY_REASON["ServerTimeout"] = ServerTimeout

_BY_CODE: dict[int, type[ApiError]] = {
    400: BadRequest, 401: Unauthorized, 403: Forbidden, 404: NotFound, 405: MethodNotAllowed,
    406: NotAcceptable, 409: Conflict, 410: Gone, 413: RequestEntityTooLarge,
    415: UnsupportedMediaType, 422: Invalid, 429: TooManyRequests, 500: InternalError,
    503: ServiceUnavailable, 504: ServerTimeout,
}


def from_status(status: JSON | None, code: int, *, retry_after: float | None = None) -> ApiError:
    """Build the typed error for a response: reason first, then HTTP code (as apimachinery does)."""
    status = status if isinstance(status, dict) else {}
    reason = status.get("reason") or ""
    status_code = int(status.get("code") or code)
    cls = _BY_REASON.get(reason) or _BY_CODE.get(status_code) or ApiError
    message = status.get("message") or f"the server responded with the status code {status_code}"
    return cls(message, code=status_code, details=status.get("details"), retry_after=retry_after)


# Constructors with apiserver wording, for the emulator and for tests.

def _details(name: str | None, group: str, kind: str) -> JSON:
    details: JSON = {"kind": kind}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return details


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> NotFound:
    return NotFound(f'{_qualified(resource, group)} "{name}" not found',
                    details=_details(name, group, resource))


def already_exists(resource: str, group: str, name: str) -> AlreadyExists:
    return AlreadyExists(f'{_qualified(resource, group)} "{name}" already exists',
                         details=_details(name, group, resource))


def conflict(resource: str, group: str, name: str, why: str) -> Conflict:
    return Conflict(f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {why}',
                    details=_details(name, group, resource))


STALE_OBJECT = "the object has been modified; please apply your changes to the latest version and try again"


def invalid(kind: str, group: str, name: str, causes: list[JSON]) -> Invalid:
    """``causes`` are ``{"reason": "FieldValueInvalid", "message": ..., "field": ...}`` dicts."""
    qualified = f"{kind}.{group}" if group else kind
    parts = [f"{c.get('field')}: {c.get('message')}" if c.get("field") else str(c.get("message"))
             for c in causes]
    summary = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details = _details(name, group, kind)
    details["causes"] = causes
    return Invalid(f'{qualified} "{name}" is invalid: {summary}', details=details)


def expired(requested: str, oldest: str | int) -> Expired:
    return Expired(f"too old resource version: {requested} ({oldest})")


RESOURCE_VERSION_TOO_LARGE = "ResourceVersionTooLarge"


def too_large_resource_version(requested: int | str, current: int | str) -> ServerTimeout:
    """kube-apiserver's answer when a read asks for a revision its watch cache has not reached
    (apimachinery storage.NewTooLargeResourceVersionError)."""
    return ServerTimeout(f"Timeout: Too large resource version: {requested}, current: {current}",
                         details={"causes": [{"reason": RESOURCE_VERSION_TOO_LARGE,
                                              "message": "Too large resource version"}],
                                  "retryAfterSeconds": 1})


def is_too_large_resource_version(exc: ApiError) -> bool:
    """client-go's isTooLargeResourceVersionError: the 504 above, by its cause or, from older
    servers, by its message."""
    if exc.status_code != ServerTimeout.code:
        return False
    return (any(c.get("reason") == RESOURCE_VERSION_TOO_LARGE for c in exc.causes)
            or "Too large resource version" in exc.message)
