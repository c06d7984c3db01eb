"""The verbs: the generic registry store of kube-apiserver, and LocalAPI on top of it.

``Engine`` implements get/list/create/update/patch/delete/deletecollection and watch set-up once,
for both the HTTP server and in-process callers, following
``staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go`` (resourceVersion checks,
finalizers and deletionTimestamp, garbage-collection finalizers, delete-during-update) and
``staging/src/k8s.io/apiserver/pkg/registry/rest`` (BeforeCreate/BeforeUpdate metadata rules).

Every verb runs as one transaction under the store lock, so read-modify-write is atomic and
"409 Conflict" only ever reflects a client's stale resourceVersion. Objects returned by Engine
are the stored (or converted) dicts and are read-only; LocalAPI hands out deep copies.
"""

from __future__ import annotations

import builtins
import copy
import json
import queue
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from rook_py.framework.client import errors
from rook_py.framework.kube import times

from . import fieldmanager, managedfields
from .continuation import decode_continue, encode_continue
from .fieldmanager import Types
from .openapi import Documents
from .registry import Registry, ServedResource
from .registry.base import (
    NO_GENERATION,
    Cause,
    forbidden,
    get_path,
    invalid_value,
    required,
    set_path,
    validate_annotations,
    validate_labels,
)
from .registry.core import TERMINATING, NamespaceStrategy
from .registry.custom import CLEANUP_FINALIZER, terminating_condition
from .selection import Filter, label_selector_string, make_filter
from .storage import Event, ObjectKey, StorageKey, Store, dumps

JSON = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
#: namespaces that exist from the start and cannot be deleted (NamespaceLifecycle admission)
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"   # as k8s.io/apimachinery/pkg/util/rand
#: the field manager of writes that name none (in-process callers: the simulated cluster)
DEFAULT_MANAGER = "envtest"
#: metadata the server owns: an update keeps the stored values whatever the request says
#: (rest.BeforeUpdate), on the main endpoint and on every subresource alike
#: the manager of a create-on-apply: the object carries the managedFields apply_write computed
APPLIED = "\x00apply"
_SYSTEM_META = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


@dataclass
class WatchStart:
    """A registered watcher plus what must be sent before live events (replayed or synthetic)."""

    watcher: Any
    initial: list[Event]
    expired: errors.ApiError | None = None


class Engine:
    """The verbs. Thread-safe; every public method is one store transaction.

    ``managed_fields`` turns on metadata.managedFields bookkeeping (see managedfields.py); the
    writing verbs take the ``manager`` to record.
    """

    def __init__(self, store: Store, registry: Registry, now: Callable[[], str] = times.now, *,
                 managed_fields: bool = True) -> None:
        self.store = store
        self.registry = registry
        self.now = now
        self.managed_fields = managed_fields
        self._terminating_crds: set[StorageKey] = set()
        #: the served schemas (OpenAPI documents, field validation, server-side apply)
        self.openapi = Documents(registry)

    # -- helpers ------------------------------------------------------------------------------

    def resolve(self, api_version: str, resource: str) -> ServedResource:
        sr = self.registry.by_api_version(api_version, resource)
        if sr is None:
            raise errors.NotFound(f"the server could not find the requested resource ({resource} {api_version})")
        return sr

    @staticmethod
    def _okey(sr: ServedResource, namespace: str | None, name: str) -> ObjectKey:
        return ((namespace or "") if sr.namespaced else "", name)

    @staticmethod
    def out(sr: ServedResource, obj: JSON) -> JSON:
        """The stored object as ``sr``'s version shows it (shared when nothing differs)."""
        if sr.from_storage is not None and obj.get("apiVersion") != sr.api_version:
            return sr.from_storage(obj)
        if obj.get("apiVersion") != sr.api_version:
            return {**obj, "apiVersion": sr.api_version}
        return obj

    def _storage_api_version(self, sr: ServedResource) -> str:
        crd_name = sr.extra.get("crd")
        if crd_name:
            crd = self.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), ("", crd_name))
            if crd is not None:
                from .registry.custom import storage_version

                return f"{sr.group}/{storage_version(crd)}"
        return sr.api_version

    def _to_storage(self, sr: ServedResource, obj: JSON) -> JSON:
        if sr.to_storage is not None:
            return sr.to_storage(obj)
        obj["apiVersion"] = self._storage_api_version(sr)
        return obj

    def _check_body_type(self, sr: ServedResource, obj: Any) -> JSON:
        if not isinstance(obj, dict):
            raise errors.BadRequest("the body of the request must be a JSON object")
        if obj.get("apiVersion") not in (None, "", sr.api_version):
            raise errors.BadRequest(f"the API version in the data ({obj.get('apiVersion')}) does not match "
                                    f"the expected API version ({sr.api_version})")
        if obj.get("kind") not in (None, "", sr.kind):
            raise errors.BadRequest(f"the kind in the data ({obj.get('kind')}) does not match the expected "
                                    f"kind ({sr.kind})")
        if list(obj)[:2] != ["apiVersion", "kind"]:  # keep the conventional key order in answers
            obj = {"apiVersion": sr.api_version, "kind": sr.kind,
                   **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}}
        obj["apiVersion"], obj["kind"] = sr.api_version, sr.kind
        meta = obj.get("metadata")
        if meta is None:
            obj["metadata"] = meta = {}
        if not isinstance(meta, dict):
            raise errors.BadRequest("metadata must be an object")
        return cast(JSON, obj)

    def _validate_meta(self, sr: ServedResource, obj: JSON) -> list[Cause]:
        meta = obj["metadata"]
        causes: list[Cause] = []
        name = meta.get("name") or ""
        if not name:
            causes.append(required("metadata.name", "Required value: name or generateName is required"))
        else:
            causes += [invalid_value("metadata.name", name, m) for m in sr.strategy.name_validator(name)]
        if sr.namespaced and not meta.get("namespace"):
            causes.append(required("metadata.namespace"))
        causes += validate_labels(meta.get("labels"), "metadata.labels")
        causes += validate_annotations(meta.get("annotations"), "metadata.annotations")
        controllers = 0
        for i, ref in enumerate(meta.get("ownerReferences") or []):
            for key in ("apiVersion", "kind", "name", "uid"):
                if not isinstance(ref, dict) or not ref.get(key):
                    causes.append(required(f"metadata.ownerReferences[{i}].{key}"))
            if isinstance(ref, dict) and ref.get("controller"):
                controllers += 1
        if controllers > 1:
            causes.append(invalid_value("metadata.ownerReferences", meta.get("ownerReferences"),
                                        "Only one reference can have Controller set to true"))
        if meta.get("finalizers") is not None and not isinstance(meta.get("finalizers"), list):
            causes.append(invalid_value("metadata.finalizers", meta.get("finalizers"), "must be a list"))
        return causes

    def _raise_invalid(self, sr: ServedResource, name: str, causes: list[Cause]) -> None:
        if causes:
            raise errors.invalid(sr.kind, sr.group, name, causes)

    def _namespace_admission(self, sr: ServedResource, namespace: str, name: str) -> None:
        """NamespaceLifecycle: the namespace must exist and must not be terminating."""
        ns = self.store.get(("", "namespaces"), ("", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if (ns.get("status") or {}).get("phase") == TERMINATING or ns["metadata"].get("deletionTimestamp"):
            message = f"unable to create new content in namespace {namespace} because it is being terminated"
            details: JSON = {"name": name, "kind": sr.resource,
                             "causes": [{"reason": "NamespaceTerminating", "message": message,
                                         "field": "metadata.namespace"}]}
            if sr.group:
                details["group"] = sr.group
            qualified = f"{sr.resource}.{sr.group}" if sr.group else sr.resource
            raise errors.Forbidden(f'{qualified} "{name}" is forbidden: {message}', details=details)

    # -- read ---------------------------------------------------------------------------------

    def get(self, sr: ServedResource, namespace: str | None, name: str) -> JSON:
        obj = self.store.get(sr.storage, self._okey(sr, namespace, name))
        if obj is None:
            raise errors.not_found(sr.resource, sr.group, name)
        return self.out(sr, obj)

    def list(self, sr: ServedResource, flt: Filter, *, limit: int | None = None,
             continue_: str | None = None, exact_rv: str | None = None,
             resource_version: str | None = None, not_older_than: bool = False) -> JSON:
        """A List object; with ``limit`` a continue token pins the snapshot (etcd semantics).

        ``exact_rv`` (resourceVersionMatch=Exact) reads the state at that resourceVersion.
        ``resource_version`` without a match, as kube-apiserver v1.28 serves it (its cacher's
        shouldDelegateList, staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go): "" is a
        consistent read, paged by ``limit``; "0" comes from the watch cache, which does not page,
        so ``limit`` is ignored and everything is returned; any other value with ``limit`` is an
        etcd read at exactly that revision (410 once compacted); without ``limit`` the watch
        cache answers with its current state, "not older than" that revision.
        ``not_older_than`` (resourceVersionMatch=NotOlderThan): the current state, paged by
        ``limit``, once the store has reached ``resource_version``.
        """
        start = ""
        if resource_version and not continue_ and exact_rv is None:
            if resource_version == "0":
                limit = None
            else:
                at = _parse_rv(resource_version)
                with self.store.lock:
                    current = self.store.rv
                if at > current:
                    if limit and not not_older_than:
                        raise errors.InternalError("etcdserver: mvcc: required revision is a future revision")
                    raise errors.too_large_resource_version(at, current)
                if limit and not not_older_than:
                    exact_rv = resource_version
        with self.store.lock:
            if exact_rv is not None and not continue_:
                at = _parse_rv(exact_rv)
                if at > self.store.rv:
                    raise errors.too_large_resource_version(at, self.store.rv)
                snapshot = self.store.snapshot(sr.storage, at)
                if snapshot is None:
                    raise errors.expired(exact_rv, self.store.compacted_rv + 1)
                continue_ = encode_continue(at, "")
            if continue_:
                at_rv, start = decode_continue(continue_)
                snapshot = self.store.snapshot(sr.storage, at_rv)
                if snapshot is None:
                    raise errors.Expired(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.")
                source: dict[ObjectKey, JSON] = snapshot
            else:
                at_rv = self.store.rv
                # Cluster-scoped kinds store "" as the namespace, so a namespace filter only ever
                # reaches namespaced ones; it scans its namespace's bucket instead of the kind.
                source = dict(self.store.items_in(sr.storage, flt.namespace) if flt.namespace
                              else self.store.items(sr.storage))
        keys = sorted(k for k in source if (not flt.namespace or k[0] == flt.namespace))
        items: list[JSON] = []
        token = None
        remaining = 0
        last_key: ObjectKey | None = None
        for i, key in enumerate(keys):
            if start and _key_str(key) <= start:
                continue
            obj = source[key]
            if not flt.trivial and not flt.matches(sr, obj):
                continue
            if limit and len(items) >= limit and last_key is not None:
                token = encode_continue(at_rv, _key_str(last_key))
                remaining = sum(1 for k in keys[i:] if flt.trivial or flt.matches(sr, source[k]))
                break
            items.append(self.out(sr, obj))
            last_key = key
        meta: JSON = {"resourceVersion": str(at_rv)}
        if token:
            meta["continue"] = token
            meta["remainingItemCount"] = remaining
        return {"kind": sr.list_kind, "apiVersion": sr.api_version, "metadata": meta, "items": items}


    # -- create -------------------------------------------------------------------------------

    def create(self, sr: ServedResource, namespace: str | None, obj: JSON, *, dry_run: bool = False,
               manager: str = DEFAULT_MANAGER) -> JSON:
        """POST: ``obj`` is owned by the engine from here on (callers pass a copy or parsed JSON)."""
        obj = self._check_body_type(sr, obj)
        meta = obj["metadata"]
        if sr.namespaced:
            if meta.get("namespace") and namespace and meta["namespace"] != namespace:
                raise errors.BadRequest("the namespace of the provided object does not match the namespace "
                                        "sent on the request")
            meta["namespace"] = namespace or meta.get("namespace") or ""
        else:
            meta.pop("namespace", None)
        if meta.get("resourceVersion"):
            raise errors.BadRequest("resourceVersion should not be set on objects to be created")
        for key in (*_SYSTEM_META, "selfLink"):
            meta.pop(key, None)
        if sr.strategy.generation != NO_GENERATION:
            meta["generation"] = 1
        sr.strategy.prepare_for_create(obj)
        try:
            return self._create_locked(sr, obj, dry_run=dry_run, manager=manager)
        except BaseException:
            sr.strategy.create_failed(obj)
            raise

    def _create_locked(self, sr: ServedResource, obj: JSON, *, dry_run: bool, manager: str) -> JSON:
        meta = obj["metadata"]
        with self.store.lock:
            if sr.storage in self._terminating_crds:
                raise errors.MethodNotAllowed("create not allowed while custom resource definition is terminating")
            if sr.namespaced and meta.get("namespace"):
                self._namespace_admission(sr, meta["namespace"], meta.get("name") or meta.get("generateName", ""))
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = self._generate_name(sr, meta)
            self._raise_invalid(sr, meta.get("name", ""), self._validate_meta(sr, obj) + sr.strategy.validate(obj))
            okey = self._okey(sr, meta.get("namespace"), meta["name"])
            if self.store.get(sr.storage, okey) is not None:
                raise errors.already_exists(sr.resource, sr.group, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = self.now()
            self._record_managed_fields(sr, obj, None, None if manager == APPLIED else manager, None,
                                        meta.get("managedFields"))
            obj = self._to_storage(sr, obj)
            if dry_run:
                sr.strategy.create_failed(obj)  # nothing was persisted: release allocations
                return self.out(sr, obj)
            rv = self.store.next_rv()
            obj["metadata"]["resourceVersion"] = str(rv)
            self.store.put(sr.storage, okey, obj, rv)
            self._after_write(sr, obj)
            return self.out(sr, obj)

    def _generate_name(self, sr: ServedResource, meta: JSON) -> str:
        base = str(meta["generateName"])[: 63 - 5]
        for _ in range(8):
            name = base + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            if self.store.get(sr.storage, self._okey(sr, meta.get("namespace"), name)) is None:
                return name
        raise errors.ServerTimeout("could not generate a unique name")

    # -- update -------------------------------------------------------------------------------

    def update(self, sr: ServedResource, namespace: str | None, name: str, obj: JSON, *,
               subresource: str | None = None, dry_run: bool = False,
               manager: str = DEFAULT_MANAGER) -> tuple[JSON, bool]:
        """PUT. Returns (object, created). ``obj`` is owned by the engine."""
        obj = self._check_body_type(sr, obj) if subresource != "scale" else obj
        with self.store.lock:
            okey = self._okey(sr, namespace, name)
            old = self.store.get(sr.storage, okey)
            if old is None:
                if sr.strategy.allow_create_on_update and subresource is None:
                    obj["metadata"].pop("resourceVersion", None)
                    obj["metadata"]["name"] = name
                    return self.create(sr, namespace, obj, dry_run=dry_run, manager=manager), True
                raise errors.not_found(sr.resource, sr.group, name)
            if subresource == "scale":
                return self._update_scale(sr, old, obj, dry_run=dry_run, manager=manager), False
            return self._update_locked(sr, old, obj, subresource=subresource, dry_run=dry_run,
                                       manager=manager), False

    def _restore_system_meta(self, sr: ServedResource, meta: JSON, old_meta: JSON) -> None:
        for key in _SYSTEM_META:
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["name"] = old_meta["name"]
        if sr.namespaced:
            meta["namespace"] = old_meta.get("namespace")
        meta.pop("selfLink", None)

    @staticmethod
    def _finalizer_causes(meta: JSON, old_meta: JSON) -> builtins.list[Cause]:
        """ValidateObjectMetaUpdate: a terminating object accepts no new finalizers."""
        if not old_meta.get("deletionTimestamp"):
            return []
        added = [f for f in meta.get("finalizers") or [] if f not in (old_meta.get("finalizers") or [])]
        if not added:
            return []
        return [forbidden("metadata.finalizers", "no new finalizers can be added if the object is being deleted, "
                          f"found new finalizers {json.dumps(added)}")]

    def schema_of(self, sr: ServedResource) -> tuple[Types, JSON]:
        """The typed view of ``sr``'s objects (fieldmanager.Types and the root schema)."""
        definition = self.openapi.definition_of(sr)
        root: JSON = ({"$ref": f"#/definitions/{definition}"} if definition is not None
                      else {"x-kubernetes-preserve-unknown-fields": True})
        return Types(self.openapi.definitions()), root

    def _record_managed_fields(self, sr: ServedResource, obj: JSON, old: JSON | None, manager: str | None,
                               subresource: str | None, applied: builtins.list[JSON] | None = None) -> None:
        if manager is None:  # an apply: apply_write computed them
            if applied:
                obj["metadata"]["managedFields"] = applied
            else:
                obj["metadata"].pop("managedFields", None)
            return
        if self.managed_fields:
            types, schema = self.schema_of(sr)
            managedfields.record_write(obj, old, manager=manager, api_version=sr.api_version,
                                       subresource=subresource, now=self.now, types=types, schema=schema)
        else:
            obj["metadata"].pop("managedFields", None)

    def _update_locked(self, sr: ServedResource, old: JSON, new: JSON, *, subresource: str | None,
                       dry_run: bool = False, manager: str | None = DEFAULT_MANAGER,
                       fields_subresource: str | None = None, applied: builtins.list[JSON] | None = None) -> JSON:
        """The update rules shared by PUT, PATCH and the subresources. ``fields_subresource``
        names the subresource managedFields records when it is not ``subresource`` (scale)."""
        old_meta = old["metadata"]
        meta = new["metadata"]
        name = old_meta["name"]
        if meta.get("name") and meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match the name on "
                                    f"the URL ({name})")
        if sr.namespaced and meta.get("namespace") and meta["namespace"] != old_meta.get("namespace"):
            raise errors.BadRequest("the namespace of the provided object does not match the namespace "
                                    "sent on the request")
        rv = meta.get("resourceVersion")
        if not rv:
            if not sr.strategy.allow_unconditional_update:
                self._raise_invalid(sr, name, [invalid_value("metadata.resourceVersion", 0,
                                                             "must be specified for an update")])
        elif rv != old_meta["resourceVersion"]:
            raise errors.conflict(sr.resource, sr.group, name, errors.STALE_OBJECT)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise errors.conflict(sr.resource, sr.group, name,
                                  f"Precondition failed: UID in precondition: {meta['uid']}, "
                                  f"UID in object meta: {old_meta['uid']}")
        old_view = self.out(sr, old)
        strategy = sr.strategy
        if subresource == "status":
            if not sr.has_subresource("status"):
                raise errors.NotFound("the server could not find the requested resource")
            result = strategy.prepare_for_status_update(new, old_view)
            self._restore_system_meta(sr, result["metadata"], old_meta)
            causes = self._validate_meta(sr, result) + self._finalizer_causes(result["metadata"], old_meta)
            self._raise_invalid(sr, name, causes + strategy.validate_status_update(result, old_view))
        elif subresource == "finalize":
            if not isinstance(strategy, NamespaceStrategy):
                raise errors.NotFound("the server could not find the requested resource")
            result = strategy.prepare_for_finalize(new, old_view)
        elif subresource is not None:
            raise errors.NotFound("the server could not find the requested resource")
        else:
            result = new
            strategy.prepare_for_update(result, old_view)
            self._restore_system_meta(sr, meta, old_meta)
            causes = self._validate_meta(sr, result) + strategy.validate_update(result, old_view)
            self._raise_invalid(sr, name, causes + self._finalizer_causes(meta, old_meta))
            if strategy.spec_changed(result, old_view):
                meta["generation"] = int(old_meta.get("generation") or 0) + 1
        self._record_managed_fields(sr, result, old_view, manager, fields_subresource or subresource, applied)
        result["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        result = self._to_storage(sr, result)
        if result == old:
            return self.out(sr, old)  # no-op: etcd skips the write, so no new resourceVersion/event
        if dry_run:
            return self.out(sr, result)
        return self.out(sr, self._commit_update(sr, result))

    def _commit_update(self, sr: ServedResource, obj: JSON) -> JSON:
        """Store an updated object, or remove it when deletion is pending and nothing blocks it."""
        meta = obj["metadata"]
        rv = self.store.next_rv()
        meta["resourceVersion"] = str(rv)
        okey = self._okey(sr, meta.get("namespace"), meta["name"])
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not self._spec_finalizers(obj):
            self._remove_locked(sr, okey, obj, rv)
        else:
            self.store.put(sr.storage, okey, obj, rv)
            self._after_write(sr, obj)
        return obj

    @staticmethod
    def _spec_finalizers(obj: JSON) -> builtins.list[str]:
        if obj.get("kind") == "Namespace":
            return list((obj.get("spec") or {}).get("finalizers") or [])
        return []

    def _remove_locked(self, sr: ServedResource, okey: ObjectKey, last: JSON, rv: int) -> None:
        last["metadata"]["resourceVersion"] = str(rv)
        self.store.remove(sr.storage, okey, last, rv)
        self._after_remove(sr, last)

    # -- scale --------------------------------------------------------------------------------

    def scale_of(self, sr: ServedResource, obj: JSON) -> JSON:
        spec = sr.strategy.scale
        if spec is None:
            raise errors.NotFound("the server could not find the requested resource")
        meta = obj["metadata"]
        selector_path = spec.label_selector
        selector: Any = None
        if sr.strategy.__class__.__name__ != "CustomResourceStrategy":
            selector = label_selector_string((obj.get("spec") or {}).get("selector"))
        elif selector_path:
            selector = get_path(obj, selector_path)
        scale: JSON = {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": int(get_path(obj, spec.spec_replicas) or 0)},
            "status": {"replicas": int(get_path(obj, spec.status_replicas) or 0)},
        }
        if selector:
            scale["status"]["selector"] = selector
        return scale

    def get_scale(self, sr: ServedResource, namespace: str | None, name: str) -> JSON:
        return self.scale_of(sr, self.get(sr, namespace, name))

    def _update_scale(self, sr: ServedResource, old: JSON, scale: JSON, *, dry_run: bool = False,
                      manager: str = DEFAULT_MANAGER) -> JSON:
        spec = sr.strategy.scale
        if spec is None:
            raise errors.NotFound("the server could not find the requested resource")
        if not isinstance(scale, dict) or scale.get("kind") not in (None, "Scale"):
            raise errors.BadRequest("the body of the request must be a Scale object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid("Scale", "autoscaling", old["metadata"]["name"],
                                 [invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise errors.conflict(sr.resource, sr.group, old["metadata"]["name"], errors.STALE_OBJECT)
        new = copy.deepcopy(self.out(sr, old))
        set_path(new, spec.spec_replicas, replicas)
        result = self._update_locked(sr, old, new, subresource=None, dry_run=dry_run, manager=manager,
                                     fields_subresource="scale")
        return self.scale_of(sr, result)

    # -- patch --------------------------------------------------------------------------------

    def patch(self, sr: ServedResource, namespace: str | None, name: str, patch_type: str, patch: Any, *,
              subresource: str | None = None, dry_run: bool = False, manager: str = DEFAULT_MANAGER) -> JSON:
        """PATCH with ``json``, ``merge`` or ``strategic``; the result goes through update rules."""
        from . import patch as patches

        if patch_type == "strategic" and sr.extra.get("crd"):
            raise errors.UnsupportedMediaType(
                "the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml")
        with self.store.lock:
            old = self.store.get(sr.storage, self._okey(sr, namespace, name))
            if old is None:
                raise errors.not_found(sr.resource, sr.group, name)
            current = self.scale_of(sr, self.out(sr, old)) if subresource == "scale" else self.out(sr, old)
            try:
                if patch_type == "json":
                    patched = patches.apply_json_patch(current, patch)
                elif patch_type == "merge":
                    patched = patches.apply_merge_patch(current, patch)
                elif patch_type == "strategic":
                    patched = patches.apply_strategic_merge_patch(current, patch, kind=sr.kind)
                else:
                    raise errors.UnsupportedMediaType(f"unsupported patch type {patch_type!r}")
            except patches.PatchError as exc:
                # the code says whether the patch itself is malformed (400, as the handlers'
                # NewBadRequest) or well-formed but not applicable to this object (422)
                if exc.code == 400:
                    raise errors.BadRequest(exc.message) from None
                raise errors.invalid(sr.kind, sr.group, name, [invalid_value("patch", "", exc.message)]) from None
            if not isinstance(patched, dict):
                raise errors.BadRequest("the patched object is not a JSON object")
            if subresource == "scale":
                return self._update_scale(sr, old, patched, dry_run=dry_run, manager=manager)
            patched = self._check_body_type(sr, patched)
            # without a resourceVersion in the patch, the patch applies to the current object
            patched["metadata"].setdefault("resourceVersion", old["metadata"]["resourceVersion"])
            if not patched["metadata"]["resourceVersion"]:
                patched["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
            return self._update_locked(sr, old, patched, subresource=subresource, dry_run=dry_run, manager=manager)

    # -- server-side apply ----------------------------------------------------------------------

    def apply(self, sr: ServedResource, namespace: str | None, name: str, config: Any, *, manager: str,
              force: bool = False, subresource: str | None = None, dry_run: bool = False) -> tuple[JSON, bool]:
        """PATCH with ``application/apply-patch+yaml``: merge ``config`` into the object (creating
        it when missing) with managedFields ownership (managedfields.apply_write). Returns
        (object, created)."""
        if not isinstance(config, dict):
            raise errors.BadRequest("the apply configuration must be an object")
        meta: JSON = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
        if config.get("apiVersion") != sr.api_version or config.get("kind") != sr.kind:
            raise errors.BadRequest(f"the apply configuration must have apiVersion {sr.api_version!r} and "
                                    f"kind {sr.kind!r}, got {config.get('apiVersion')!r} and {config.get('kind')!r}")
        if meta.get("name") not in (None, name):
            raise errors.BadRequest(f"the name of the object ({meta.get('name')}) does not match the name on the "
                                    f"URL ({name})")
        if subresource not in (None, "status"):
            raise errors.NotFound("the server could not find the requested resource")
        schema = self.schema_of(sr)
        with self.store.lock:
            old, merged = self._apply_merge(sr, namespace, name, config, manager=manager, force=force,
                                            subresource=subresource, schema=schema)
            return self._apply_commit(sr, namespace, old, merged, subresource=subresource, dry_run=dry_run)

    def _apply_merge(self, sr: ServedResource, namespace: str | None, name: str, config: JSON, *, manager: str,
                     force: bool, subresource: str | None, schema: tuple[Types, JSON]) -> tuple[JSON | None, JSON]:
        """The first half of an apply, under the store lock: (the stored object or None, the
        object the apply makes of it, managedFields included). ``schema`` is ``schema_of(sr)``,
        worked out before taking the lock."""
        types, root = schema
        old = self.store.get(sr.storage, self._okey(sr, namespace, name))
        live = self.out(sr, old) if old is not None else None
        if live is None and subresource is not None:
            raise errors.not_found(sr.resource, sr.group, name)
        try:
            merged = managedfields.apply_write(
                copy.deepcopy(live) if live is not None else None, config, manager=manager,
                api_version=sr.api_version, subresource=subresource, force=force, now=self.now, types=types,
                schema=root, has_status=sr.has_subresource("status"))
        except fieldmanager.Conflicts as exc:
            raise exc.to_error(sr.resource, sr.group, name) from None
        merged.setdefault("metadata", {})["name"] = name
        if not self.managed_fields:
            merged["metadata"].pop("managedFields", None)
        if old is None and sr.namespaced:
            merged["metadata"]["namespace"] = namespace or ""
        return old, merged

    def _apply_commit(self, sr: ServedResource, namespace: str | None, old: JSON | None, merged: JSON, *,
                      subresource: str | None, dry_run: bool) -> tuple[JSON, bool]:
        """The second half of an apply: create ``merged``, or write it over ``old`` (which must
        still be the stored object: its resourceVersion is the precondition)."""
        if old is None:
            return self.create(sr, namespace, merged, dry_run=dry_run, manager=APPLIED), True
        merged["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        merged = self._check_body_type(sr, merged)
        applied = merged["metadata"].get("managedFields")
        return self._update_locked(sr, old, merged, subresource=subresource, dry_run=dry_run,
                                   manager=None, applied=applied), False

    # -- delete -------------------------------------------------------------------------------

    def delete(self, sr: ServedResource, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, preconditions: JSON | None = None,
               orphan_dependents: bool | None = None, dry_run: bool = False) -> tuple[JSON, bool]:
        """DELETE. Returns (the body to answer, removed_now)."""
        if propagation_policy not in (None, "Background", "Foreground", "Orphan"):
            raise errors.invalid("DeleteOptions", "meta.k8s.io", "", [
                invalid_value("propagationPolicy", propagation_policy,
                              "propagationPolicy must be Foreground, Background or Orphan")])
        if propagation_policy is None and orphan_dependents is not None:
            propagation_policy = "Orphan" if orphan_dependents else "Background"
        with self.store.lock:
            okey = self._okey(sr, namespace, name)
            old = self.store.get(sr.storage, okey)
            if old is None:
                raise errors.not_found(sr.resource, sr.group, name)
            self._check_preconditions(sr, old, preconditions)
            if sr.group == "" and sr.resource == "namespaces" and name in IMMORTAL_NAMESPACES:
                raise errors.Forbidden(f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                                       details={"name": name, "kind": "namespaces"})
            obj = copy.deepcopy(old)
            meta = obj["metadata"]
            finalizers = list(meta.get("finalizers") or [])
            if propagation_policy is not None:
                finalizers = [f for f in finalizers if f not in (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)]
                if propagation_policy == "Orphan":
                    finalizers.append(ORPHAN_FINALIZER)
                elif propagation_policy == "Foreground":
                    finalizers.append(FOREGROUND_FINALIZER)
            if finalizers:
                meta["finalizers"] = finalizers
            else:
                meta.pop("finalizers", None)
            is_namespace = sr.group == "" and sr.resource == "namespaces"
            if is_namespace:
                obj.setdefault("status", {})["phase"] = TERMINATING
            if sr.resource == "customresourcedefinitions" and sr.group == "apiextensions.k8s.io":
                self._mark_crd_terminating(obj)
            if not finalizers and not self._spec_finalizers(obj):
                if dry_run:
                    return self._deleted_body(sr, old), True
                rv = self.store.next_rv()
                self._remove_locked(sr, okey, obj, rv)
                return self._deleted_body(sr, obj), True
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = self.now()
                meta["deletionGracePeriodSeconds"] = 0
                if meta.get("generation"):
                    meta["generation"] = int(meta["generation"]) + 1
            if obj == old or dry_run:
                return self.out(sr, old), False
            stored = self._commit_update(sr, obj)
            return self.out(sr, stored), False

    def _deleted_body(self, sr: ServedResource, obj: JSON) -> JSON:
        if sr.strategy.return_deleted_object:
            return self.out(sr, obj)
        details: JSON = {"name": obj["metadata"]["name"], "kind": sr.resource, "uid": obj["metadata"].get("uid")}
        if sr.group:
            details["group"] = sr.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}

    def _check_preconditions(self, sr: ServedResource, obj: JSON, pre: JSON | None) -> None:
        if not pre:
            return
        meta = obj["metadata"]
        name = meta["name"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(sr.resource, sr.group, name,
                                  f"the UID in the precondition ({pre['uid']}) does not match the UID in record "
                                  f"({meta.get('uid')}). The object might have been deleted and then recreated")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(sr.resource, sr.group, name,
                                  f"the ResourceVersion in the precondition ({pre['resourceVersion']}) does not "
                                  f"match the ResourceVersion in record ({meta.get('resourceVersion')}). "
                                  "The object might have been modified")

    def delete_collection(self, sr: ServedResource, flt: Filter, *, propagation_policy: str | None = None,
                          dry_run: bool = False) -> JSON:
        """DELETE on a collection: every matching object is deleted as by DELETE; answers the List."""
        with self.store.lock:
            listed = self.list(sr, flt)
            for obj in listed["items"]:
                meta = obj["metadata"]
                try:
                    self.delete(sr, meta.get("namespace"), meta["name"], propagation_policy=propagation_policy,
                                dry_run=dry_run)
                except errors.NotFound:
                    continue
            return listed

    # -- watch --------------------------------------------------------------------------------

    def start_watch(self, sr: ServedResource, flt: Filter, resource_version: str | None) -> WatchStart:
        """Register a watcher and compute what precedes live events.

        "" or "0": synthetic ADDED events for the current state. N: replayed history after N, or an
        Expired error when N is older than the retained window (the watch cache's wording).
        """
        with self.store.lock:
            watcher = self.store.add_watcher(sr.storage, flt.namespace)
            if resource_version in (None, "", "0"):
                rv = self.store.rv
                initial = [Event(rv, "ADDED", sr.storage, obj, None)
                           for key, obj in sorted(self.store.items(sr.storage).items())
                           if not flt.namespace or key[0] == flt.namespace]
                return WatchStart(watcher, initial)
            try:
                since = int(resource_version)
            except ValueError:
                watcher.close()
                raise errors.BadRequest(f'invalid resource version "{resource_version}"') from None
            events = self.store.events_since(since, sr.storage)
            if events is None:
                # closed at once: the stream is only an ERROR frame, and the watch must not count
                # as open while that frame is on its way (close-watches reports open watches)
                watcher.close()
                return WatchStart(watcher, [], errors.expired(str(since), self.store.compacted_rv + 1))
            return WatchStart(watcher, events)

    # -- side effects of writes ---------------------------------------------------------------

    def _after_write(self, sr: ServedResource, obj: JSON) -> None:
        if sr.resource == "customresourcedefinitions" and sr.group == "apiextensions.k8s.io":
            name = obj["metadata"]["name"]
            served = self.registry.set_crd(name, obj)
            if obj["metadata"].get("deletionTimestamp") and served:
                self._cleanup_crd(obj, served[0])

    def _after_remove(self, sr: ServedResource, obj: JSON) -> None:
        if sr.group == "" and sr.resource == "services":
            allocator = sr.extra.get("allocator")
            if allocator is not None:
                allocator.release(obj)
        if sr.resource == "customresourcedefinitions" and sr.group == "apiextensions.k8s.io":
            name = obj["metadata"]["name"]
            for served in self.registry.crd_resources(name):
                self._terminating_crds.discard(served.storage)
                self.store.drop_storage(served.storage)
            self.registry.remove_crd(name)
        elif sr.storage in self._terminating_crds and not self.store.items(sr.storage):
            self._finish_crd(sr)

    def _mark_crd_terminating(self, crd: JSON) -> None:
        status = crd.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Terminating"]
        conditions.append(terminating_condition(self.now()))
        status["conditions"] = conditions

    def _cleanup_crd(self, crd: JSON, served: ServedResource) -> None:
        """The CRD finalizer's work: delete every custom resource, then let the CRD go.

        Engine.delete, not self.delete: the finalizer deletes without admission
        (apiextensions-apiserver pkg/controller/finalizer/crd_finalizer.go passes
        rest.ValidateAllObjectFunc), and this runs under the store lock, where no webhook
        may be called."""
        self._terminating_crds.add(served.storage)
        for okey, obj in sorted(self.store.items(served.storage).items()):
            if obj["metadata"].get("deletionTimestamp"):
                continue
            Engine.delete(self, served, okey[0] or None, okey[1])
        if not self.store.items(served.storage):
            self._finish_crd(served)

    def _finish_crd(self, served: ServedResource) -> None:
        crd_sr = self.registry.lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        crd = self.store.get(("apiextensions.k8s.io", "customresourcedefinitions"), ("", str(served.extra["crd"])))
        if crd_sr is None or crd is None:
            return
        new = copy.deepcopy(crd)
        new["metadata"]["finalizers"] = [f for f in crd["metadata"].get("finalizers") or []
                                         if f != CLEANUP_FINALIZER]
        if new != crd:
            self._commit_update(crd_sr, new)


def _parse_rv(value: str) -> int:
    """A list's resourceVersion as kube-apiserver reads it (an unsigned integer)."""
    if not value.isdigit():
        raise errors.BadRequest(f'invalid resource version: resourceVersion: Invalid value: "{value}": '
                                f'strconv.ParseUint: parsing "{value}": invalid syntax')
    return int(value)


def _key_str(key: ObjectKey) -> str:
    return f"{key[0]}/{key[1]}"


class LocalAPI:
    """In-process verbs over the same engine as HTTP. Arguments and results are private copies.

    ``subscribe`` delivers committed events on ONE dispatcher thread, in commit order, never under
    the store lock; callbacks may call LocalAPI verbs (their own events arrive later, in order).
    Writes are recorded in managedFields under ``field_manager`` unless a call names another.
    """

    def __init__(self, engine: Engine, field_manager: str = DEFAULT_MANAGER) -> None:
        self._engine = engine
        self.field_manager = field_manager
        self._subscribers: list[Callable[[str, str, str, JSON], None]] = []
        self._sub_lock = threading.Lock()
        self._queue: queue.SimpleQueue[Event | None] = queue.SimpleQueue()
        self._dispatcher: threading.Thread | None = None
        self._stopped = False

    def _sr(self, api_version: str, resource: str) -> ServedResource:
        return self._engine.resolve(api_version, resource)

    @staticmethod
    def _copy(obj: JSON) -> JSON:
        """A private copy through JSON: faster than deepcopy for plain data, and it rejects
        values the wire could not carry (the HTTP path would fail on them later)."""
        try:
            copied: JSON = json.loads(dumps(obj))
        except (TypeError, ValueError) as exc:
            raise errors.BadRequest(f"the object is not valid JSON: {exc}") from None
        return copied

    def get(self, api_version: str, resource: str, name: str, namespace: str | None = None, *,
            subresource: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        if subresource == "scale":
            return self._copy(self._engine.get_scale(sr, namespace, name))
        return self._copy(self._engine.get(sr, namespace, name))

    def list(self, api_version: str, resource: str, namespace: str | None = None,
             label_selector: str | None = None, field_selector: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        flt = make_filter(sr, namespace if sr.namespaced else None, label_selector, field_selector)
        return self._copy(self._engine.list(sr, flt))

    def list_view(self, api_version: str, resource: str, namespace: str | None = None,
                  label_selector: str | None = None, field_selector: str | None = None) -> builtins.list[JSON]:
        """The items ``list`` would return, WITHOUT copying them: the store's own dicts.

        For in-process readers that only look (the simulated cluster maps events to keys, counts
        pods per node, renders Endpoints from many pods): copying every object of a kind on each
        such read made those paths cost O(store size) in JSON work per event, which is what kept
        a few thousand objects from converging. Invariant the caller must keep: never mutate an
        item (nor anything reachable from it); copy the few objects you mean to write. The engine
        never mutates a stored dict either (every write stores a new one), so an item is a
        consistent snapshot of its object even after the store lock is released.
        """
        sr = self._sr(api_version, resource)
        flt = make_filter(sr, namespace if sr.namespaced else None, label_selector, field_selector)
        items: builtins.list[JSON] = self._engine.list(sr, flt)["items"]
        return items

    def create(self, api_version: str, resource: str, obj: JSON, namespace: str | None = None, *,
               field_manager: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        return self._copy(self._engine.create(sr, ns, self._copy(obj), manager=field_manager or self.field_manager))

    def update(self, api_version: str, resource: str, obj: JSON, subresource: str | None = None, *,
               field_manager: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        meta = obj.get("metadata") or {}
        result, _ = self._engine.update(sr, meta.get("namespace"), str(meta.get("name", "")), self._copy(obj),
                                        subresource=subresource, manager=field_manager or self.field_manager)
        return self._copy(result)

    def patch(self, api_version: str, resource: str, name: str, patch: Any, patch_type: str = "merge",
              namespace: str | None = None, subresource: str | None = None, *,
              field_manager: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        return self._copy(self._engine.patch(sr, namespace, name, patch_type, self._copy_any(patch),
                                             subresource=subresource, manager=field_manager or self.field_manager))

    @staticmethod
    def _copy_any(value: Any) -> Any:
        try:
            return json.loads(dumps(value))
        except (TypeError, ValueError) as exc:
            raise errors.BadRequest(f"the patch is not valid JSON: {exc}") from None

    def delete(self, api_version: str, resource: str, name: str, namespace: str | None = None,
               propagation_policy: str | None = None, preconditions: JSON | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        body, _ = self._engine.delete(sr, namespace, name, propagation_policy=propagation_policy,
                                      preconditions=preconditions)
        return self._copy(body)

    def delete_collection(self, api_version: str, resource: str, namespace: str | None = None,
                          label_selector: str | None = None, field_selector: str | None = None,
                          propagation_policy: str | None = None) -> JSON:
        sr = self._sr(api_version, resource)
        flt = make_filter(sr, namespace if sr.namespaced else None, label_selector, field_selector)
        return self._copy(self._engine.delete_collection(sr, flt, propagation_policy=propagation_policy))

    def resources(self) -> builtins.list[ServedResource]:
        return self._engine.registry.all()

    # -- subscriptions ------------------------------------------------------------------------

    def subscribe(self, callback: Callable[[str, str, str, JSON], None]) -> Callable[[], None]:
        """Call ``callback(event_type, api_version, resource, obj)`` for every committed change.

        ``api_version`` is the version the object is stored at; ``obj`` is the subscriber's copy.
        Returns a function that unsubscribes.
        """
        with self._sub_lock:
            if self._dispatcher is None:
                self._engine.store.add_sink(self._queue.put)
                self._dispatcher = threading.Thread(target=self._dispatch, name="envtest-local-dispatch",
                                                    daemon=True)
                self._dispatcher.start()
            self._subscribers = [*self._subscribers, callback]

        def unsubscribe() -> None:
            with self._sub_lock:
                self._subscribers = [s for s in self._subscribers if s is not callback]
        return unsubscribe

    def _dispatch(self) -> None:
        from rook_py.framework.logging import get_logger

        log = get_logger(__name__)
        while True:
            event = self._queue.get()
            if event is None:
                return
            subscribers = self._subscribers
            if not subscribers:
                continue
            obj = event.obj
            api_version = str(obj.get("apiVersion", ""))
            resource = event.skey[1]
            payload = dumps(obj)
            for callback in subscribers:
                try:
                    callback(event.type, api_version, resource, json.loads(payload))
                except Exception:  # a subscriber's bug must not stop delivery to the others
                    log.exception("envtest subscriber failed", event=event.type, resource=resource)

    def close(self) -> None:
        """Stop the dispatcher after the events already queued."""
        self._queue.put(None)
