"""Owner references: metav1.OwnerReference, NewControllerRef and the controller-ref rules.

An object has at most one controller reference (``controller: true``); the garbage collector
deletes it with its owner, and ``blockOwnerDeletion`` makes a foreground deletion of the owner
wait for it. References point by uid, so an owner deleted and recreated under the same name is
a different owner. A namespaced owner may only own objects in its own namespace; a
cluster-scoped owner may own anything (the garbage collector's rules,
k8s.io/apimachinery/pkg/apis/meta/v1 controller_ref.go and pkg/controller/garbagecollector).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "controller_of",
    "controller_reference",
    "is_controlled_by",
    "owner_reference",
    "owner_scope_error",
    "same_owner",
]

JSON = dict[str, Any]


def owner_reference(owner: Mapping[str, Any], *, controller: bool = False,
                    block_owner_deletion: bool = True) -> JSON:
    """A reference to ``owner`` (which must carry apiVersion, kind, metadata.name and
    metadata.uid: read it from the server); ValueError when something is missing."""
    meta = owner.get("metadata") or {}
    missing = [f for f, v in (("apiVersion", owner.get("apiVersion")), ("kind", owner.get("kind")),
                              ("metadata.name", meta.get("name")), ("metadata.uid", meta.get("uid"))) if not v]
    if missing:
        raise ValueError(f"owner must have {', '.join(missing)} (read it from the server)")
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
            "uid": meta["uid"], "controller": controller, "blockOwnerDeletion": block_owner_deletion}


def controller_reference(owner: Mapping[str, Any]) -> JSON:
    """``metav1.NewControllerRef``: the owner as controller, blocking its foreground deletion."""
    return owner_reference(owner, controller=True, block_owner_deletion=True)


def controller_of(obj: Mapping[str, Any]) -> JSON | None:
    """The ownerReference with ``controller: true``, if any (``metav1.GetControllerOf``)."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or ():
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


def is_controlled_by(obj: Mapping[str, Any], owner: Mapping[str, Any]) -> bool:
    """Whether ``obj``'s controller reference points at this very ``owner`` (uid match)."""
    ref = controller_of(obj)
    uid = (owner.get("metadata") or {}).get("uid")
    return ref is not None and uid is not None and ref.get("uid") == uid


def same_owner(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Two references to the same referent whatever its version: group, kind and name, as
    controller-runtime compares them (controllerutil.referSameObject)."""
    def group(ref: Mapping[str, Any]) -> str:
        return str(ref.get("apiVersion") or "").rpartition("/")[0]

    return group(a) == group(b) and a.get("kind") == b.get("kind") and a.get("name") == b.get("name")


def owner_scope_error(owner: Mapping[str, Any], obj: Mapping[str, Any]) -> str | None:
    """Why the garbage collector would reject ``owner`` as an owner of ``obj`` (the messages of
    controller-runtime's validateOwner), or None when it may own it."""
    owner_ns = (owner.get("metadata") or {}).get("namespace")
    obj_ns = (obj.get("metadata") or {}).get("namespace")
    if not owner_ns:
        return None
    if not obj_ns:
        return f"cluster-scoped resource must not have a namespace-scoped owner, owner's namespace {owner_ns}"
    if owner_ns != obj_ns:
        return (f"cross-namespace owner references are disallowed, owner's namespace {owner_ns}, "
                f"obj's namespace {obj_ns}")
    return None
