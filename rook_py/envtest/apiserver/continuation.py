"""List continue tokens: staging/src/k8s.io/apiserver/pkg/storage/continue.go.

A token carries the resourceVersion the first page was read at and the key to resume from, so
every page of one list is a consistent snapshot; a token that does not decode is a 400.
"""

from __future__ import annotations

import base64
import json

from rook_py.framework.client import errors


def encode_continue(rv: int, start: str) -> str:
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_continue(token: str) -> tuple[int, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), str(data["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise errors.BadRequest(f"invalid continue token: continue key is not valid: {exc}") from None
