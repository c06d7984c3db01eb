"""CRD conversion webhooks (``spec.conversion.strategy: Webhook``).

After apiextensions-apiserver pkg/apiserver/conversion/webhook_converter.go: an object stored in
one version and read or written in another is sent to the CRD's conversion webhook in a
ConversionReview v1 (``desiredAPIVersion``, one object), and the answer's ``convertedObjects``
replace it; a failure answers 500 ``conversion webhook for <group/version, Kind=...> failed:
<reason>``. The webhook is called at ``clientConfig.url`` or at its ``service``, resolved as
admission webhooks' are (``AdmittingEngine.endpoint``: the Service must exist and be mapped to a
local address with ``Environment.serve_service``; the certificate must name
``<service>.<namespace>.svc`` and chain to ``caBundle``). One object is converted per call.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from rook_py.framework.client import errors

from .webhookclient import CallError, Connections, Endpoint, reason_for, url_endpoint

JSON = dict[str, Any]
_connections = Connections()


def _failed(obj: JSON, reason: str) -> errors.ApiError:
    group, _, version = str(obj.get("apiVersion") or "").rpartition("/")
    return errors.InternalError(f"conversion webhook for {group}/{version}, Kind={obj.get('kind')} failed: {reason}")


def convert(crd: JSON, obj: JSON, desired_api_version: str,
            endpoint: Callable[[JSON], Endpoint] | None = None) -> JSON:
    """``obj`` in ``desired_api_version``, converted by the CRD's webhook; ``endpoint`` resolves
    its clientConfig (a url only when None)."""
    if obj.get("apiVersion") == desired_api_version:
        return obj
    webhook = ((crd.get("spec") or {}).get("conversion") or {}).get("webhook") or {}
    config = webhook.get("clientConfig") or {}
    review = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
              "request": {"uid": str(uuid.uuid4()), "desiredAPIVersion": desired_api_version, "objects": [obj]}}
    try:
        host, port, server_name, path, shown = (endpoint or url_endpoint)(config)
    except CallError as err:
        raise _failed(obj, str(err)) from None
    sep = "&" if "?" in path else "?"
    try:
        status, body = _connections.post(host, port, server_name, str(config.get("caBundle") or ""),
                                          f"{path}{sep}timeout=30s", json.dumps(review).encode(), 30.0)
    except CallError as err:
        raise _failed(obj, str(err)) from None
    except OSError as err:
        raise _failed(obj, f'Post "{shown}{sep}timeout=30s": {reason_for(err)}') from None
    try:
        response = json.loads(body)["response"]
    except (ValueError, KeyError, TypeError):
        raise _failed(obj, f"the server responded with the status code {status} but did not return a "
                           "ConversionReview") from None
    result = response.get("result") or {}
    if result.get("status") != "Success":
        raise _failed(obj, str(result.get("message") or "conversion failed"))
    converted = response.get("convertedObjects") or []
    if len(converted) != 1 or converted[0].get("apiVersion") != desired_api_version:
        raise _failed(obj, f"expected 1 object in {desired_api_version}, got {len(converted)}")
    out: JSON = converted[0]
    # The webhook may not change identity or system metadata (webhook_converter.go restores it).
    meta = dict(obj.get("metadata") or {})
    meta.update({k: v for k, v in (out.get("metadata") or {}).items() if k in ("labels", "annotations")})
    out["metadata"] = meta
    return out
