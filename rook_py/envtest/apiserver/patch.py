"""The three patch formats kube-apiserver accepts, applied to plain JSON values.

* :func:`apply_merge_patch` -- JSON Merge Patch, RFC 7386 (``application/merge-patch+json``).
* :func:`apply_json_patch` -- JSON Patch, RFC 6902 (``application/json-patch+json``), with
  JSON Pointer (RFC 6901) paths.
* :func:`apply_strategic_merge_patch` -- Kubernetes strategic merge patch
  (``application/strategic-merge-patch+json``), after
  k8s.io/apimachinery/pkg/util/strategicpatch/patch.go (``mergeMap``/``mergeSlice``).

Every function returns a new value and never mutates its inputs, so a caller can patch the
object it holds under its store lock and throw the result away on a later validation error.

Failures raise :class:`PatchError` carrying the HTTP code the apiserver answers with (see
staging/src/k8s.io/apiserver/pkg/endpoints/handlers/patch.go): 400 for a patch document that
cannot be understood, 422 for a well-formed patch that cannot be applied to this object (a JSON
Patch ``test`` that fails, a path that does not exist, a merge-key element without its key).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from rook_py.framework.kube.lists import list_semantics

__all__ = [
    "PatchError",
    "apply_json_patch",
    "apply_merge_patch",
    "apply_strategic_merge_patch",
    "json_equal",
    "list_patch_strategy",
]


class PatchError(Exception):
    """A patch that cannot be applied. ``code`` is 400 (bad patch) or 422 (does not apply)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1``, but ``1`` equals ``1.0``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is not type(b):
        return False
    return bool(a == b)


# =============================================================================================
# RFC 7386 JSON Merge Patch
# =============================================================================================


def apply_merge_patch(doc: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch: objects merge recursively, ``null`` deletes, anything
    else (arrays included) replaces. A non-object patch replaces the whole document.
    """
    return _merge_patch(copy.deepcopy(doc), patch)


def _merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result: dict[str, Any] = target if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = _merge_patch(result.get(name), value)
    return result


# =============================================================================================
# RFC 6902 JSON Patch
# =============================================================================================

_OPS: Final = frozenset({"add", "remove", "replace", "move", "copy", "test"})


def _parse_pointer(pointer: Any) -> list[str]:
    """RFC 6901: ``""`` is the whole document; otherwise ``/``-separated, ``~1`` = ``/``, ``~0`` = ``~``."""
    if not isinstance(pointer, str):
        raise PatchError(f"invalid JSON pointer {pointer!r}: not a string")
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchError(f'invalid JSON pointer "{pointer}": must start with "/"')
    # Order matters: ~01 must decode to "~1", not "/".
    return [tok.replace("~1", "/").replace("~0", "~") for tok in pointer[1:].split("/")]


def _array_index(token: str, length: int, *, allow_end: bool, path: str) -> int:
    """The array position a token names; ``-`` is one past the end where that is allowed."""
    if token == "-" and allow_end:
        return length
    # RFC 6901: decimal digits, no leading zeros (other than "0" itself), no sign.
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise PatchError(f'invalid array index "{token}" in path "{path}"')
    idx = int(token)
    limit = length if allow_end else length - 1
    if idx > limit:
        raise PatchError(f'index {idx} out of bounds for array of length {length} in path "{path}"')
    return idx


def _resolve_parent(doc: Any, tokens: list[str], path: str) -> Any:
    """The container holding the last token of ``tokens``; it must exist."""
    node = doc
    for tok in tokens[:-1]:
        if isinstance(node, dict):
            if tok not in node:
                raise PatchError(f'doc is missing path: "{path}": missing value')
            node = node[tok]
        elif isinstance(node, list):
            node = node[_array_index(tok, len(node), allow_end=False, path=path)]
        else:
            raise PatchError(f'doc is missing path: "{path}": cannot descend into a scalar')
    return node


def _get(doc: Any, path: str) -> Any:
    tokens = _parse_pointer(path)
    if not tokens:
        return doc
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'doc is missing path: "{path}": missing value')
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), allow_end=False, path=path)]
    raise PatchError(f'doc is missing path: "{path}": cannot descend into a scalar')


def _add(doc: Any, path: str, value: Any) -> Any:
    tokens = _parse_pointer(path)
    if not tokens:
        return value
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True, path=path), value)
    else:
        raise PatchError(f'doc is missing path: "{path}": cannot add to a scalar')
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    """Remove the value at ``path``; returns (new doc, removed value)."""
    tokens = _parse_pointer(path)
    if not tokens:
        raise PatchError("unable to remove the whole document")
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'unable to remove nonexistent key: {last}: missing value (path "{path}")')
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), allow_end=False, path=path))
    raise PatchError(f'doc is missing path: "{path}": cannot remove from a scalar')


def _replace(doc: Any, path: str, value: Any) -> Any:
    tokens = _parse_pointer(path)
    if not tokens:
        return value
    parent = _resolve_parent(doc, tokens, path)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f'replace operation does not apply: doc is missing key: "{path}": missing value')
        parent[last] = value
    elif isinstance(parent, list):
        parent[_array_index(last, len(parent), allow_end=False, path=path)] = value
    else:
        raise PatchError(f'doc is missing path: "{path}": cannot replace in a scalar')
    return doc


def _field(op: Mapping[str, Any], name: str, index: int) -> Any:
    if name not in op:
        raise PatchError(f"operation {index} ({op.get('op')}) is missing the '{name}' field")
    return op[name]


def apply_json_patch(doc: Any, ops: Any) -> Any:
    """Apply an RFC 6902 JSON Patch (a list of operations) to ``doc``, atomically.

    A body that does not decode as a list of operation objects is a 400 (the apiserver's
    ``DecodePatch`` step); everything found while applying -- an unknown ``op``, a missing
    member, a bad pointer, a path that does not exist, a failed ``test`` -- is a 422, as the
    apiserver reports ``Apply`` errors. No operation is applied unless all of them are.
    """
    if not isinstance(ops, list):
        raise PatchError("invalid JSON Patch: expected a JSON array of operations", 400)
    for i, op in enumerate(ops):
        if not isinstance(op, dict):
            raise PatchError(f"invalid JSON Patch: operation {i} is not a JSON object", 400)
        kind = op.get("op")
        if kind not in _OPS:
            raise PatchError(f"Unexpected kind: {kind}")
        _field(op, "path", i)
        if kind in ("add", "replace", "test"):
            _field(op, "value", i)
        if kind in ("move", "copy"):
            _field(op, "from", i)

    result = copy.deepcopy(doc)
    for op in ops:
        kind, path = op["op"], op["path"]
        if kind == "add":
            result = _add(result, path, copy.deepcopy(op["value"]))
        elif kind == "remove":
            result, _ = _remove(result, path)
        elif kind == "replace":
            result = _replace(result, path, copy.deepcopy(op["value"]))
        elif kind == "move":
            src = op["from"]
            if path != src and (path + "/").startswith(src + "/"):
                # RFC 6902 4.4: a location cannot be moved into one of its children.
                raise PatchError(f'move operation cannot move "{src}" into its own child "{path}"')
            if path == src:
                _get(result, src)  # Still must exist.
                continue
            result, value = _remove(result, src)
            result = _add(result, path, value)
        elif kind == "copy":
            result = _add(result, path, copy.deepcopy(_get(result, op["from"])))
        else:  # test
            try:
                have = _get(result, path)
            except PatchError:
                raise PatchError(f"testing value {path} failed: test failed (path does not exist)") from None
            if not json_equal(have, op["value"]):
                raise PatchError(f"testing value {path} failed: test failed")
    return result


# =============================================================================================
# Kubernetes strategic merge patch
# =============================================================================================

_DIRECTIVE: Final = "$patch"
_RETAIN_KEYS: Final = "$retainKeys"
_DELETE_PRIMITIVE_PREFIX: Final = "$deleteFromPrimitiveList"
_SET_ORDER_PREFIX: Final = "$setElementOrder"

_REPLACE: Final = "replace"
_MERGE: Final = "merge"
_DELETE: Final = "delete"

def list_patch_strategy(kind: str | None, path: Sequence[str]) -> tuple[str, str]:
    """``(strategy, merge_key)`` for the list at ``path`` (field names from the object root,
    list positions omitted) in an object of ``kind``: ``"merge"`` or ``"replace"``, and the
    merge key (``""`` for a merged list of primitives), from the one table of list semantics
    (``rook_py.framework.kube.lists``)."""
    semantics = list_semantics(kind, path)
    if semantics.patch_merges:
        return _MERGE, semantics.patch_merge_key
    return _REPLACE, ""


def apply_strategic_merge_patch(doc: Any, patch: Any, kind: str | None = None) -> Any:
    """Apply a Kubernetes strategic merge patch to ``doc`` (an object dict).

    Semantics follow strategicpatch.mergeMap with the apiserver's options
    (``MergeParallelList`` and ``IgnoreUnmatchedNulls``):

    * maps merge recursively; ``null`` deletes a key;
    * lists listed in the patch metadata merge by their merge key (the element is merged into
      the live element with the same key, or added), primitive merge lists (``finalizers``)
      behave as ordered sets; every other list is replaced whole;
    * ``$patch: replace`` (a map replaces the live one; in a list, the list is replaced by the
      other elements), ``$patch: delete`` (a map becomes ``{}``; a list element deletes the live
      element with its merge key), ``$deleteFromPrimitiveList/<f>``, ``$retainKeys`` and
      ``$setElementOrder/<f>`` (the order kubectl wants, taking precedence over patch order,
      which takes precedence over live order);
    * without ``$setElementOrder``, elements the patch adds come before the live-only ones, as
      upstream's mergeSortedSlice places them.

    Values the patch introduces are cleaned of directives and nulls, as decoding into the Go
    types does upstream. ``kind`` defaults to ``doc["kind"]``.
    """
    if not isinstance(patch, dict):
        raise PatchError("invalid JSON document", 400)
    if not isinstance(doc, dict):
        raise PatchError("invalid JSON document", 400)
    obj_kind = kind if kind is not None else doc.get("kind")
    merger = _StrategicMerger(obj_kind if isinstance(obj_kind, str) else None)
    return merger.merge_map(copy.deepcopy(doc), copy.deepcopy(patch), ())


def _kind_of(v: Any) -> str:
    if isinstance(v, dict):
        return "map"
    if isinstance(v, list):
        return "list"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "null"


def _element_kind(*lists: list[Any]) -> str | None:
    """The one element kind shared by every element of ``lists`` (None when all are empty)."""
    seen: str | None = None
    for lst in lists:
        for v in lst:
            k = _kind_of(v)
            if k == "list":
                raise PatchError("lists of lists are not supported", 422)
            if seen is None:
                seen = k
            elif seen != k:
                raise PatchError(f"list element types are not identical: {json.dumps(lists)}", 422)
    return seen


def _key_of(item: Any, merge_key: str) -> Any:
    """The value an element is identified by: its merge key for maps, itself for primitives."""
    if merge_key:
        return item.get(merge_key) if isinstance(item, dict) else None
    return item


def _index_in(order: list[Any], item: Any, merge_key: str) -> int:
    want = _key_of(item, merge_key)
    for i, v in enumerate(order):
        if json_equal(_key_of(v, merge_key), want):
            return i
    return -1


def _require_merge_key(items: list[Any], merge_key: str) -> None:
    for item in items:
        if not isinstance(item, dict):
            raise PatchError(f"expected a map in a merge list, got {json.dumps(item)}", 422)
        if merge_key not in item:
            raise PatchError(f"map: {json.dumps(item)} does not contain declared merge key: {merge_key}", 422)


def _is_delete_element(item: Any) -> bool:
    return isinstance(item, dict) and item.get(_DIRECTIVE) == _DELETE


def _sort_by_order(items: list[Any], order: list[Any], merge_key: str, is_map: bool) -> list[Any]:
    """normalizeSliceOrder: stable sort by position in ``order``; delete markers go last."""
    deletes: list[Any] = []
    if is_map:
        _require_merge_key(items, merge_key)
        _require_merge_key(order, merge_key)
        deletes = [i for i in items if _is_delete_element(i)]
        items = [i for i in items if not _is_delete_element(i)]
    big = len(order)
    ranked = sorted(
        enumerate(items),
        key=lambda p: (pos if (pos := _index_in(order, p[1], merge_key)) >= 0 else big, p[0]),
    )
    return [item for _, item in ranked] + deletes


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any], merge_key: str) -> list[Any]:
    """mergeSortedSlice: interleave live-only items (left) into patch items (right).

    A left item goes first only when both items are in the live list and it was earlier
    there; in every other case the right (patch) item goes first.
    """
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li = _index_in(server_order, left[i], merge_key)
            ri = _index_in(server_order, right[j], merge_key)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _partition(merged: list[Any], by: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Split ``merged`` into (items present in ``by``, the rest), keeping order."""
    if merge_key:
        _require_merge_key(merged, merge_key)
    present: list[Any] = []
    rest: list[Any] = []
    for item in merged:
        (present if _index_in(by, item, merge_key) >= 0 else rest).append(item)
    return present, rest


def _normalize_order(
    patch_items: list[Any],
    server_only: list[Any],
    patch_order: list[Any],
    server_order: list[Any],
    merge_key: str,
    is_map: bool,
) -> list[Any]:
    patch_items = _sort_by_order(patch_items, patch_order, merge_key, is_map)
    server_only = _sort_by_order(server_only, server_order, merge_key, is_map)
    return _merge_sorted(server_only, patch_items, server_order, merge_key)


def _dedupe(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in items:
        if not any(json_equal(v, o) for o in out):
            out.append(v)
    return out


class _StrategicMerger:
    """One patch application; carries the object's kind for the patch-metadata lookups."""

    def __init__(self, kind: str | None) -> None:
        self.kind = kind

    # --- maps ---------------------------------------------------------------------------------

    def merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> dict[str, Any]:
        """mergeMap: both arguments are owned (already copied) and may be changed."""
        if _DIRECTIVE in patch:
            directive = patch.pop(_DIRECTIVE)
            if directive == _REPLACE:
                # The patch replaces the live map; clean it the same way as any new value.
                return self.fresh_map(patch, path)
            if directive == _DELETE:
                return {}
            raise PatchError(f"unknown patch type: {directive} in map: {json.dumps(patch)}", 400)

        self._apply_retain_keys(original, patch)
        self._apply_set_element_order(original, patch, path)

        for key, patch_value in patch.items():
            is_delete_list = False
            field = key
            if key.startswith(_DELETE_PRIMITIVE_PREFIX):
                field = self._directive_field(
                    key, _DELETE_PRIMITIVE_PREFIX, "invalid patch format of primitive list"
                )
                is_delete_list = True
                if not isinstance(patch_value, list):
                    raise PatchError("invalid patch format of primitive list", 400)
            if patch_value is None:
                original.pop(field, None)
                continue
            if field not in original:
                if not is_delete_list:
                    original[field] = self.fresh(patch_value, (*path, field))
                continue
            live = original[field]
            fpath = (*path, field)
            if is_delete_list:
                if isinstance(live, list):
                    original[field] = self._delete_from_list(live, patch_value)
                continue
            if _kind_of(live) != _kind_of(patch_value):
                original[field] = self.fresh(patch_value, fpath)
            elif isinstance(live, dict):
                original[field] = self.merge_map(live, patch_value, fpath)
            elif isinstance(live, list):
                strategy, merge_key = list_patch_strategy(self.kind, fpath)
                if strategy == _MERGE:
                    original[field] = self.merge_list(live, patch_value, merge_key, fpath)
                else:
                    original[field] = self.fresh(patch_value, fpath)
            else:
                original[field] = patch_value
        return original

    @staticmethod
    def _directive_field(key: str, prefix: str, err: str) -> str:
        head, sep, tail = key.partition("/")
        if head != prefix or not sep:
            raise PatchError(err, 400)
        return tail

    @staticmethod
    def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
        """applyRetainKeysDirective: drop live keys not in the list; every patched key must be in it."""
        if _RETAIN_KEYS not in patch:
            return
        retain = patch.pop(_RETAIN_KEYS)
        if not isinstance(retain, list):
            raise PatchError("invalid patch format of retainKeys", 400)
        keep = {k for k in retain if isinstance(k, str)}
        for k, v in patch.items():
            if v is None or k.startswith((_DELETE_PRIMITIVE_PREFIX, _SET_ORDER_PREFIX)):
                continue
            if k not in keep:
                raise PatchError("invalid patch format of retainKeys", 400)
        for k in list(original):
            if k not in keep:
                del original[k]

    def _apply_set_element_order(
        self, original: dict[str, Any], patch: dict[str, Any], path: tuple[str, ...]
    ) -> None:
        """mergePatchIntoOriginal: merge each ``$setElementOrder/<f>`` list with its patch list
        and order the result: order list, then patch order, then live order.
        """
        for key in [k for k in patch if k.startswith(_SET_ORDER_PREFIX)]:
            order = patch.pop(key)
            field = self._directive_field(
                key, _SET_ORDER_PREFIX, "invalid patch format of setElementOrder list"
            )
            if not isinstance(order, list):
                raise PatchError("invalid patch format of setElementOrder list", 400)
            found_live, found_patch = field in original, field in patch
            live = original.get(field) if found_live else []
            patch_list = patch.get(field) if found_patch else []
            if not isinstance(live, list) or not isinstance(patch_list, list):
                raise PatchError("invalid patch format of setElementOrder list", 400)
            fpath = (*path, field)
            strategy, merge_key = list_patch_strategy(self.kind, fpath)
            if strategy != _MERGE:
                # An order directive means nothing for an atomic list: the patch list wins.
                if found_patch:
                    original[field] = self.fresh(patch.pop(field), fpath)
                continue
            self._validate_order(patch_list, order, merge_key)
            if found_live and found_patch:
                merged = self.merge_list(live, patch_list, merge_key, fpath)
            elif found_patch:
                merged = self.fresh(patch_list, fpath)
            elif found_live:
                merged = live
            else:
                continue
            patch.pop(field, None)
            elem = _element_kind(live, patch_list)
            if elem is None:
                original[field] = merged
                continue
            is_map = elem == "map"
            mk = merge_key if is_map else ""
            in_order, server_only = _partition(merged, order, mk)
            original[field] = _normalize_order(in_order, server_only, order, live, mk, is_map)

    @staticmethod
    def _validate_order(patch_list: list[Any], order: list[Any], merge_key: str) -> None:
        """validatePatchWithSetOrderList: the patch items must appear in the order list, in order."""
        if not order or not patch_list:
            return
        items = [i for i in patch_list if not (merge_key and _is_delete_element(i))]
        if merge_key:
            _require_merge_key([i for i in items if not (isinstance(i, dict) and _DIRECTIVE in i)], merge_key)
            _require_merge_key(order, merge_key)
        pi = oi = 0
        while pi < len(items) and oi < len(order):
            if isinstance(items[pi], dict) and _DIRECTIVE in items[pi]:
                pi += 1
                continue
            if json_equal(_key_of(items[pi], merge_key), _key_of(order[oi], merge_key)):
                pi += 1
            oi += 1
        if pi < len(items):
            raise PatchError(
                f"The order in patch list: {json.dumps(patch_list)} doesn't match "
                f"{_SET_ORDER_PREFIX} list: {json.dumps(order)}",
                400,
            )

    # --- lists --------------------------------------------------------------------------------

    def merge_list(
        self, original: list[Any], patch: list[Any], merge_key: str, path: tuple[str, ...]
    ) -> list[Any]:
        """mergeSlice for a list whose strategy is merge."""
        if not original and not patch:
            return original
        elem = _element_kind(original, patch)
        if elem != "map":
            merged = _dedupe(original + patch)
            in_patch, server_only = _partition(merged, patch, "")
            return _normalize_order(in_patch, server_only, patch, original, "", False)
        if not merge_key:
            raise PatchError("cannot merge lists without merge key for type map", 422)
        original, patch, replaced = self._special_elements(original, patch, merge_key)
        if replaced:
            # `$patch: replace` in a list: the other patch elements are the whole new list.
            return [self.fresh_map(item, path) for item in original]
        merged = list(original)
        for item in patch:
            _require_merge_key([item], merge_key)
            pos = _index_in(merged, item, merge_key)
            if pos >= 0:
                merged[pos] = self.merge_map(merged[pos], item, path)
            else:
                merged.append(self.fresh_map(item, path))
        in_patch, server_only = _partition(merged, patch, merge_key)
        return _normalize_order(in_patch, server_only, patch, original, merge_key, True)

    @staticmethod
    def _special_elements(
        original: list[Any], patch: list[Any], merge_key: str
    ) -> tuple[list[Any], list[Any], bool]:
        """mergeSliceWithSpecialElements: act on ``$patch`` elements.

        Returns (live list after deletions, plain patch elements, False), or, when an element
        says ``$patch: replace``, (plain patch elements, [], True).
        """
        plain: list[Any] = []
        replace = False
        for item in patch:
            if not isinstance(item, dict):
                raise PatchError(f"expected a map in a merge list, got {json.dumps(item)}", 422)
            if _DIRECTIVE not in item:
                plain.append(item)
                continue
            directive = item[_DIRECTIVE]
            if directive == _DELETE:
                if merge_key not in item:
                    raise PatchError(
                        f"map: {json.dumps(item)} does not contain declared merge key: {merge_key}", 422
                    )
                original = [o for o in original if not json_equal(_key_of(o, merge_key), item[merge_key])]
            elif directive == _REPLACE:
                replace = True
            elif directive == _MERGE:
                raise PatchError("merging lists cannot yet be specified in the patch", 400)
            else:
                raise PatchError(f"unknown patch type: {directive} in map: {json.dumps(item)}", 400)
        if replace:
            return plain, [], True
        return original, plain, False

    @staticmethod
    def _delete_from_list(live: list[Any], to_delete: list[Any]) -> list[Any]:
        """deleteFromSlice: ``$deleteFromPrimitiveList/<f>`` removes these values."""
        return [v for v in live if not any(json_equal(v, d) for d in to_delete)]

    # --- values the patch introduces ------------------------------------------------------------

    def fresh(self, value: Any, path: tuple[str, ...]) -> Any:
        """A patch value with nothing live to merge into: directives and nulls removed."""
        if isinstance(value, dict):
            return self.fresh_map(value, path)
        if isinstance(value, list):
            strategy, merge_key = list_patch_strategy(self.kind, path)
            if strategy == _MERGE and value:
                return self.merge_list([], value, merge_key, path)
            return [self.fresh_map(v, path) if isinstance(v, dict) else v for v in value]
        return value

    def fresh_map(self, value: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        return self.merge_map({}, value, path)
