"""Admission webhooks: AdmissionReview v1 in, AdmissionReview v1 out.

After controller-runtime pkg/webhook/admission (``Webhook``, ``CustomDefaulter``,
``CustomValidator``, ``Denied``/``Errored``/``PatchResponseFromRaw``):

* ``defaulting_webhook(defaulter)``: the defaulter mutates a copy of the object in place; the
  answer carries the RFC 6902 patch from the original to the copy (no patch when nothing changed);
* ``validating_webhook(validator)``: create / update (with the old object) / delete; the validator
  returns warnings, or raises ``FieldErrors`` (answered 422 Invalid with apimachinery's
  ``field.ErrorList`` wording: ``spec.consul.replicas: Invalid value: 2: must be odd``),
  ``Denied`` (403 Forbidden) or an ``ApiError`` (its own status). Warnings travel with a denial.

Handlers must have no side effects: ``request.dry_run`` is true when the API server will not
persist the object, and the configurations declare ``sideEffects: None``.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rook_py.framework.client import errors
from rook_py.framework.webhook.jsonpatch import diff

JSON = dict[str, Any]
REVIEW_API_VERSION = "admission.k8s.io/v1"

CREATE, UPDATE, DELETE, CONNECT = "CREATE", "UPDATE", "DELETE", "CONNECT"

# apimachinery pkg/util/validation/field/errors.go: ErrorType -> its String()
_ERROR_TYPES = {
    "FieldValueNotFound": "Not found", "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value", "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value", "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long", "FieldValueTooMany": "Too many",
    "InternalError": "Internal error", "FieldValueTypeInvalid": "Invalid value",
}
# Types whose body never shows the value (ErrorBody's first case).
_VALUELESS = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong", "InternalError"}
_OMITTED: Any = object()


def format_value(value: Any) -> str:
    """A bad value as apimachinery prints it: strings quoted, numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class FieldError:
    """One ``field.Error``: ``type`` is the metav1 cause type (``FieldValueInvalid``...)."""

    type: str
    field: str
    bad_value: Any = _OMITTED
    detail: str = ""

    def body(self) -> str:
        text = _ERROR_TYPES.get(self.type, self.type)
        if self.type not in _VALUELESS and self.bad_value is not _OMITTED:
            text = f"{text}: {format_value(self.bad_value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


def invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", field, value, detail)


def required(field: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", field, detail=detail)


def forbidden(field: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", field, detail=detail)


def not_supported(field: str, value: Any, allowed: Sequence[str]) -> FieldError:
    quoted = ", ".join(json.dumps(a) for a in allowed)
    return FieldError("FieldValueNotSupported", field, value, f"supported values: {quoted}")


class FieldErrors(Exception):
    """A validator's refusal with field paths (answered as a 422 ``Invalid`` Status)."""

    def __init__(self, errs: Sequence[FieldError], warnings: Sequence[str] = ()) -> None:
        if not errs:
            raise ValueError("FieldErrors needs at least one error")
        self.errors = list(errs)
        self.warnings = list(warnings)
        super().__init__("; ".join(str(e) for e in self.errors))

    def to_status(self, kind: str, group: str, name: str) -> JSON:
        causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in self.errors]
        return errors.invalid(kind, group, name, causes).to_status()


class Denied(Exception):
    """A refusal without field paths (``admission.Denied``: 403 Forbidden)."""

    def __init__(self, message: str, warnings: Sequence[str] = (), code: int = 403) -> None:
        super().__init__(message)
        self.warnings = list(warnings)
        self.code = code


@dataclass
class AdmissionRequest:
    """``AdmissionReview.request``: the fields handlers use, and the raw dict."""

    uid: str
    operation: str
    kind: JSON
    resource: JSON
    sub_resource: str
    name: str
    namespace: str
    object: JSON | None
    old_object: JSON | None
    dry_run: bool
    user_info: JSON
    raw: JSON = field(repr=False)

    @classmethod
    def from_review(cls, review: JSON) -> AdmissionRequest:
        if review.get("apiVersion") != REVIEW_API_VERSION or review.get("kind") != "AdmissionReview":
            raise ValueError(f"expected AdmissionReview {REVIEW_API_VERSION}, got "
                             f"{review.get('kind')} {review.get('apiVersion')}")
        req = review.get("request")
        if not isinstance(req, dict) or not req.get("uid"):
            raise ValueError("AdmissionReview has no request or no request.uid")
        return cls(uid=str(req["uid"]), operation=str(req.get("operation") or ""),
                   kind=req.get("kind") or {}, resource=req.get("resource") or {},
                   sub_resource=str(req.get("subResource") or ""), name=str(req.get("name") or ""),
                   namespace=str(req.get("namespace") or ""), object=req.get("object"),
                   old_object=req.get("oldObject"), dry_run=bool(req.get("dryRun")),
                   user_info=req.get("userInfo") or {}, raw=req)

    @property
    def group_kind(self) -> tuple[str, str]:
        return str(self.kind.get("group") or ""), str(self.kind.get("kind") or "")

    def object_name(self) -> str:
        obj = self.object or self.old_object or {}
        return self.name or str((obj.get("metadata") or {}).get("name")
                                or (obj.get("metadata") or {}).get("generateName") or "")


def review(uid: str, *, allowed: bool, status: JSON | None = None, patch: list[JSON] | None = None,
           warnings: Sequence[str] = ()) -> JSON:
    """An AdmissionReview v1 answer."""
    response: JSON = {"uid": uid, "allowed": allowed}
    if status is not None:
        response["status"] = status
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch, separators=(",", ":")).encode()).decode()
    if warnings:
        response["warnings"] = list(warnings)
    return {"apiVersion": REVIEW_API_VERSION, "kind": "AdmissionReview", "response": response}


def errored(uid: str, code: int, message: str) -> JSON:
    """``admission.Errored``: not allowed, with a Failure status carrying ``code``."""
    return review(uid, allowed=False, status={"status": "Failure", "code": code, "message": message,
                                              "reason": _reason(code), "metadata": {}})


def _reason(code: int) -> str:
    return {400: "BadRequest", 403: "Forbidden", 422: "Invalid", 500: "InternalError",
            504: "Timeout"}.get(code, "")


class CustomDefaulter(Protocol):
    def default(self, request: AdmissionRequest, obj: JSON) -> None:
        """Set defaults on ``obj`` in place; raise ``FieldErrors``/``Denied`` to refuse."""


class CustomValidator(Protocol):
    def validate_create(self, request: AdmissionRequest, obj: JSON) -> Sequence[str]: ...

    def validate_update(self, request: AdmissionRequest, old: JSON, new: JSON) -> Sequence[str]: ...

    def validate_delete(self, request: AdmissionRequest, obj: JSON) -> Sequence[str]: ...


Handle = Callable[[AdmissionRequest], JSON]


def _refusal(request: AdmissionRequest, err: Exception) -> JSON | None:
    group, kind = request.group_kind
    if isinstance(err, FieldErrors):
        return review(request.uid, allowed=False, warnings=err.warnings,
                      status=err.to_status(kind, group, request.object_name()))
    if isinstance(err, Denied):
        return review(request.uid, allowed=False, warnings=err.warnings,
                      status={"status": "Failure", "code": err.code, "reason": _reason(err.code),
                              "message": str(err), "metadata": {}})
    if isinstance(err, errors.ApiError):
        return review(request.uid, allowed=False, status=err.to_status())
    return None


def defaulting_handle(defaulter: CustomDefaulter) -> Handle:
    """A handle running ``defaulter`` on CREATE and UPDATE objects; other operations pass."""

    def handle(request: AdmissionRequest) -> JSON:
        if request.operation not in (CREATE, UPDATE) or request.object is None:
            return review(request.uid, allowed=True)
        obj = copy.deepcopy(request.object)
        try:
            defaulter.default(request, obj)
        except (FieldErrors, Denied, errors.ApiError) as err:
            refusal = _refusal(request, err)
            assert refusal is not None
            return refusal
        return review(request.uid, allowed=True, patch=diff(request.object, obj))

    return handle


def validating_handle(validator: CustomValidator) -> Handle:
    """A handle dispatching to ``validate_create`` / ``_update`` / ``_delete``."""

    def handle(request: AdmissionRequest) -> JSON:
        try:
            if request.operation == CREATE and request.object is not None:
                warnings = validator.validate_create(request, request.object)
            elif (request.operation == UPDATE and request.object is not None
                  and request.old_object is not None):
                warnings = validator.validate_update(request, request.old_object, request.object)
            elif request.operation == DELETE and request.old_object is not None:
                warnings = validator.validate_delete(request, request.old_object)
            else:
                return review(request.uid, allowed=True)
        except (FieldErrors, Denied, errors.ApiError) as err:
            refusal = _refusal(request, err)
            assert refusal is not None
            return refusal
        return review(request.uid, allowed=True, warnings=list(warnings or ()))

    return handle
