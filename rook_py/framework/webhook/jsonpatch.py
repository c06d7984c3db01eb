"""RFC 6902 JSON Patch: the difference between an object before and after a defaulter ran.

controller-runtime computes the patch a mutating webhook returns with gomodules.xyz/jsonpatch
(``admission.PatchResponseFromRaw``); this is the same idea on plain dicts. Objects are compared
key by key; a list whose length changed is replaced whole (index arithmetic on insertions makes
patches fragile against a concurrent writer, and the API server applies the patch to the very
object it sent, so a replace is exact). Pointers escape ``~`` and ``/`` (RFC 6901).
"""

from __future__ import annotations

from typing import Any

JSON = dict[str, Any]


def escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def pointer(*tokens: str | int) -> str:
    return "".join("/" + escape(str(t)) for t in tokens)


def diff(before: Any, after: Any, path: str = "") -> list[JSON]:
    """The operations that turn ``before`` into ``after`` (empty when equal)."""
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[JSON] = []
        for key, old in before.items():
            sub = f"{path}/{escape(key)}"
            if key not in after:
                ops.append({"op": "remove", "path": sub})
            else:
                ops.extend(diff(old, after[key], sub))
        for key, new in after.items():
            if key not in before:
                ops.append({"op": "add", "path": f"{path}/{escape(key)}", "value": new})
        return ops
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        ops = []
        for i, (old, new) in enumerate(zip(before, after, strict=True)):
            ops.extend(diff(old, new, f"{path}/{i}"))
        return ops
    if type(before) is type(after) and before == after:
        return []
    return [{"op": "replace", "path": path, "value": after}]
