"""Dynamic admission: the emulator calls Mutating, then Validating webhook configurations.

After kube-apiserver ``staging/src/k8s.io/apiserver/pkg/admission/plugin/webhook/``
(generic/webhook.go ``ShouldCallHook``, predicates/rules, predicates/namespace,
predicates/object, mutating/dispatcher.go, validating/dispatcher.go, errors/statuserror.go):

* configurations are taken in name order, their webhooks in list order; a webhook is called when
  a rule matches (operations, apiGroups, apiVersions, resources with ``res/sub`` subresources,
  scope), its namespaceSelector matches the namespace's labels (cluster-scoped objects other
  than Namespaces always match) and its objectSelector matches the new or the old object's
  labels; with ``matchPolicy: Equivalent`` a rule naming another served version of the same
  resource matches too, and the webhook gets the object in that version;
* the request is an AdmissionReview v1 POSTed over HTTPS to ``clientConfig.url`` or to the
  Service (``service_addresses`` maps a Service to a local address for tests; the certificate
  must name ``<service>.<namespace>.svc``) and verified against ``caBundle``, with
  ``timeoutSeconds``; a failed call denies with 500 ``failed calling webhook`` under
  ``failurePolicy: Fail`` and is skipped under ``Ignore``; a dry-run request reaches only webhooks
  declaring ``sideEffects: None`` or ``NoneOnDryRun``;
* a mutating webhook's JSONPatch is applied, then the object is defaulted and validated again
  (schema, CEL rules, strategy) before the validating webhooks see it, as upstream;
* a denial answers the webhook's status (code below 400 becomes 400) with the message
  ``admission webhook "<name>" denied the request: <message>``; warnings travel back in
  ``Warning`` headers (``take_warnings``);
* mutating webhooks with ``reinvocationPolicy: IfNeeded`` are called once more when a later
  webhook changed the object (``_mutate``); validating webhooks are called in parallel, and the
  refusal reported is the one that finished first, as upstream's (``_validate``).

Differences kept on purpose: an object that fails validation before any mutating webhook ran
is refused without calling them (upstream would let a mutating webhook fix it); a write racing
another between admission and commit gets a 409 where kube-apiserver would retry its update
function.

``AdmittingEngine`` wraps the storage engine's writing verbs: create, update, patch, server-side
apply (CREATE or UPDATE, as it creates or not), delete and deletecollection (a DELETE per item);
the webhook calls happen outside the store lock (a webhook may call back into the API server), so
each verb first runs dry, then calls webhooks, then writes what they admitted.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rook_py.framework.client import errors
from rook_py.framework.kube.selectors import selector_from_label_selector

from .local import APPLIED, DEFAULT_MANAGER, Engine
from .registry import ServedResource
from .selection import Filter
from .webhookclient import CallError as _CallError
from .webhookclient import Connections as _Connections
from .webhookclient import Endpoint as _Endpoint
from .webhookclient import reason_for as _reason_for
from .webhookclient import url_endpoint as _url_endpoint

JSON = dict[str, Any]
GROUP = "admissionregistration.k8s.io"
_STRIP_ON_WRITE = ("uid", "creationTimestamp", "generation", "resourceVersion", "managedFields")

_local = threading.local()


def take_warnings() -> list[str]:
    """The warnings webhooks returned for this thread's request so far (and forget them)."""
    warnings: list[str] = getattr(_local, "warnings", None) or []
    _local.warnings = []
    return warnings


def _warn(text: str) -> None:
    if not hasattr(_local, "warnings"):
        _local.warnings = []
    _local.warnings.append(text)


@contextmanager
def _inside() -> Iterator[None]:
    previous = getattr(_local, "inside", False)
    _local.inside = True
    try:
        yield
    finally:
        _local.inside = previous


def _labels(obj: JSON | None) -> dict[str, str]:
    return dict(((obj or {}).get("metadata") or {}).get("labels") or {})


def _selector_matches(selector: JSON | None, labels: dict[str, str]) -> bool:
    if selector is None:
        return True
    try:
        return selector_from_label_selector(selector).matches(labels)
    except ValueError:
        return False


def _refuse_dry_run(hook: JSON, hook_name: str, dry_run: bool) -> None:
    """A dry run may reach only webhooks that declare no side effects (or none on dry runs)."""
    if dry_run and hook.get("sideEffects") not in ("None", "NoneOnDryRun"):
        raise errors.BadRequest(f'admission webhook "{hook_name}" does not support dry run')


class AdmittingEngine(Engine):
    """The storage engine with dynamic admission around create, update, patch and delete."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: (namespace, service, port) -> (host, port): where a Service's webhook really listens
        self.service_addresses: dict[tuple[str, str, int], tuple[str, int]] = {}
        self._connections = _Connections()
        self.registry.webhook_endpoint = self.endpoint

    def close_connections(self) -> None:
        self._connections.close()

    # -- configurations ---------------------------------------------------------------------------

    def _configurations(self, resource: str) -> list[JSON]:
        sr = self.registry.lookup(GROUP, "v1", resource)
        if sr is None:
            return []
        items = self.store.items(sr.storage)
        return [items[k] for k in sorted(items, key=lambda k: k[1])] if items else []

    def _hooks(self, mutating: bool) -> list[tuple[str, int, JSON]]:
        """(configuration name, index in it, webhook), in the order they are called."""
        resource = "mutatingwebhookconfigurations" if mutating else "validatingwebhookconfigurations"
        return [(config["metadata"]["name"], index, hook) for config in self._configurations(resource)
                for index, hook in enumerate(config.get("webhooks") or [])]

    def _any_hooks(self) -> bool:
        return bool(self._configurations("mutatingwebhookconfigurations")
                    or self._configurations("validatingwebhookconfigurations"))

    # -- matching (predicates/rules, namespace, object) -------------------------------------------

    @staticmethod
    def _rule_matches(rule: JSON, operation: str, group: str, version: str, resource: str,
                      subresource: str, namespace: str) -> bool:
        operations = rule.get("operations") or []
        if "*" not in operations and operation not in operations:
            return False
        groups, versions = rule.get("apiGroups") or [], rule.get("apiVersions") or []
        if "*" not in groups and group not in groups:
            return False
        if "*" not in versions and version not in versions:
            return False
        matched = False
        for item in rule.get("resources") or []:
            res, _, sub = str(item).partition("/")
            if (res in ("*", resource)) and (sub in ("*", subresource) if sub else not subresource):
                matched = True
                break
        if not matched:
            return False
        scope = rule.get("scope") or "*"
        if scope == "Cluster":
            return resource == "namespaces" or not namespace
        if scope == "Namespaced":
            return resource != "namespaces" and bool(namespace)
        return True

    def _match_version(self, hook: JSON, operation: str, sr: ServedResource, subresource: str,
                       namespace: str) -> ServedResource | None:
        """The served version the webhook is called with, or None when it does not match."""
        rules = hook.get("rules") or []
        if any(self._rule_matches(r, operation, sr.group, sr.version, sr.resource, subresource, namespace)
               for r in rules):
            return sr
        if (hook.get("matchPolicy") or "Equivalent") != "Equivalent":
            return None
        for other in self.registry.versions_of(sr.group, sr.resource):
            if other.version != sr.version and any(
                    self._rule_matches(r, operation, other.group, other.version, other.resource, subresource,
                                       namespace) for r in rules):
                return other
        return None

    def _namespace_matches(self, hook: JSON, sr: ServedResource, namespace: str, obj: JSON | None) -> bool:
        selector = hook.get("namespaceSelector")
        if not selector:
            return True
        if sr.group == "" and sr.resource == "namespaces":
            return _selector_matches(selector, _labels(obj))
        if not namespace:
            return True  # cluster-scoped: the namespace selector does not apply
        ns = self.store.get(("", "namespaces"), ("", namespace))
        labels = _labels(ns)
        labels.setdefault("kubernetes.io/metadata.name", namespace)
        return _selector_matches(selector, labels)

    # -- calling ----------------------------------------------------------------------------------

    def endpoint(self, config: JSON) -> _Endpoint:
        """Where a webhook clientConfig is called: its ``url``, or the local address its
        ``service`` was mapped to (``service_addresses``). CRD conversion webhooks use this too
        (``registry.webhook_endpoint``), as upstream's converter shares the webhook client's
        Service resolution."""
        if config.get("url"):
            return _url_endpoint(config)
        service = config.get("service") or {}
        namespace, name = str(service.get("namespace") or ""), str(service.get("name") or "")
        port = int(service.get("port") or 443)
        path = str(service.get("path") or "/")
        server_name = f"{name}.{namespace}.svc"
        shown = f"https://{server_name}:{port}{path}"
        if self.store.get(("", "services"), (namespace, name)) is None:
            raise _CallError(f'Post "{shown}": service "{name}" not found')
        address = self.service_addresses.get((namespace, name, port))
        if address is None:
            raise _CallError(f'Post "{shown}": no endpoints available for service "{name}"')
        return address[0], address[1], server_name, path, shown

    def _call(self, hook: JSON, review: JSON) -> JSON:
        config = hook.get("clientConfig") or {}
        timeout = int(hook.get("timeoutSeconds") or 10)
        host, port, server_name, path, shown = self.endpoint(config)
        sep = "&" if "?" in path else "?"
        shown_url = f"{shown}{sep}timeout={timeout}s"
        try:
            status, body = self._connections.post(host, port, server_name, str(config.get("caBundle") or ""),
                                                  path + f"{sep}timeout={timeout}s", json.dumps(review).encode(),
                                                  float(timeout))
        except _CallError:
            raise
        except (OSError, http.client.HTTPException) as err:
            raise _CallError(f'Post "{shown_url}": {_reason_for(err)}') from None
        if status != 200:
            raise _CallError(f"the server responded with the status code {status} but did not return more "
                             f"information")
        try:
            answer = json.loads(body)
        except ValueError as err:
            raise _CallError(f"couldn't get version/kind; json parse error: {err}") from None
        response = answer.get("response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise _CallError("webhook response was absent")
        uid = review["request"]["uid"]
        if response.get("uid") != uid:
            raise _CallError(f'expected response.uid="{uid}", got "{response.get("uid", "")}"')
        return response

    @staticmethod
    def _denial(name: str, status: JSON | None) -> errors.ApiError:
        """errors/statuserror.go ToStatusErr."""
        status = dict(status or {})
        code = int(status.get("code") or 0)
        if code < 400:
            code = 400
        denied = f'admission webhook "{name}" denied the request'
        if status.get("message"):
            message = f"{denied}: {status['message']}"
        elif status.get("reason"):
            message = f"{denied}: {status['reason']}"
        else:
            message = f"{denied} without explanation"
        body = {**status, "kind": "Status", "apiVersion": "v1", "metadata": status.get("metadata") or {},
                "status": "Failure", "code": code, "message": message}
        return errors.from_status(body, code)

    def _review(self, operation: str, sr: ServedResource, as_sr: ServedResource, subresource: str,
                namespace: str, name: str, obj: JSON | None, old: JSON | None, dry_run: bool) -> JSON:
        def convert(o: JSON | None) -> JSON | None:
            if o is None or as_sr is sr:
                return o
            return {**o, "apiVersion": as_sr.api_version}

        request: JSON = {
            "uid": str(uuid.uuid4()),
            "kind": {"group": as_sr.group, "version": as_sr.version, "kind": as_sr.kind},
            "resource": {"group": as_sr.group, "version": as_sr.version, "resource": as_sr.resource},
            "requestKind": {"group": sr.group, "version": sr.version, "kind": sr.kind},
            "requestResource": {"group": sr.group, "version": sr.version, "resource": sr.resource},
            "operation": operation,
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": convert(obj), "oldObject": convert(old), "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1",
                        "kind": {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions",
                                 "DELETE": "DeleteOptions"}.get(operation, "CreateOptions")},
        }
        # name and namespace are omitempty in admission/v1 AdmissionRequest: a deletecollection's
        # reviews carry no name, a create by generateName neither
        if name:
            request["name"] = name
        if namespace:
            request["namespace"] = namespace
        if subresource:
            request["subResource"] = subresource
            request["requestSubResource"] = subresource
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}

    def _called_as(self, hook: JSON, operation: str, sr: ServedResource, subresource: str, namespace: str,
                   obj: JSON | None, old: JSON | None) -> ServedResource | None:
        """The version ``hook`` is called with for this request, or None when it does not match
        (generic/webhook.go ShouldCallHook: rules, then namespace, then object selector)."""
        as_sr = self._match_version(hook, operation, sr, subresource, namespace)
        if as_sr is None or not self._namespace_matches(hook, sr, namespace, obj or old):
            return None
        selector = hook.get("objectSelector") or None
        if not (_selector_matches(selector, _labels(obj)) or _selector_matches(selector, _labels(old))):
            return None
        return as_sr

    @staticmethod
    def _failed_call(hook_name: str, err: _CallError) -> errors.ApiError:
        return errors.InternalError(f'Internal error occurred: failed calling webhook "{hook_name}": '
                                    f"failed to call webhook: {err}")

    def _dispatch(self, mutating: bool, operation: str, sr: ServedResource, subresource: str, namespace: str,
                  name: str, obj: JSON | None, old: JSON | None, dry_run: bool) -> JSON | None:
        """Call every matching webhook of one kind; returns the (possibly patched) object."""
        if mutating:
            return self._mutate(operation, sr, subresource, namespace, name, obj, old, dry_run)
        self._validate(operation, sr, subresource, namespace, name, obj, old, dry_run)
        return obj

    def _mutate(self, operation: str, sr: ServedResource, subresource: str, namespace: str, name: str,
                obj: JSON | None, old: JSON | None, dry_run: bool) -> JSON | None:
        """Mutating webhooks one after another, each seeing the object its predecessors patched,
        then the reinvocation round (mutating/dispatcher.go with reinvocationcontext.go, driven
        twice by admission/reinvocation.go):

        * a webhook with ``reinvocationPolicy: IfNeeded`` that was called is remembered; when a
          later webhook changes the object, every one remembered so far is marked for another call
          (a webhook's own change does not mark itself);
        * when any webhook changed the object, one more round walks the configurations again and
          calls only the marked webhooks that still match, in order. A webhook skipped in the first
          round is not called for the first time in the second, and nothing is called a third
          time, even when the second round changes the object again.

        The emulator has no in-tree mutating plugins between the rounds, so only webhooks' own
        changes lead to the second round.
        """
        invoked_since_change: set[tuple[str, int]] = set()
        reinvoke: set[tuple[str, int]] = set()
        for second_round in (False, True):
            changed_any = False
            for config_name, index, hook in self._hooks(True):
                as_sr = self._called_as(hook, operation, sr, subresource, namespace, obj, old)
                if as_sr is None:
                    continue
                # upstream keys a webhook by configuration name, webhook name and index
                key = (config_name, index)
                if second_round and key not in reinvoke:
                    continue
                obj, changed = self._call_mutating(hook, config_name, operation, sr, as_sr, subresource,
                                                   namespace, name, obj, old, dry_run)
                if changed:
                    changed_any = True
                    reinvoke |= invoked_since_change
                    invoked_since_change = set()
                if hook.get("reinvocationPolicy") == "IfNeeded":
                    invoked_since_change.add(key)
            if second_round or not changed_any or not reinvoke:
                break
        return obj

    def _call_mutating(self, hook: JSON, config_name: str, operation: str, sr: ServedResource,
                       as_sr: ServedResource, subresource: str, namespace: str, name: str, obj: JSON | None,
                       old: JSON | None, dry_run: bool) -> tuple[JSON | None, bool]:
        """One mutating webhook's call: (the object, patched or not; whether the patch changed it)."""
        from . import patch as patches

        hook_name = str(hook.get("name") or config_name)
        _refuse_dry_run(hook, hook_name, dry_run)
        review = self._review(operation, sr, as_sr, subresource, namespace, name, obj, old, dry_run)
        try:
            response = self._call(hook, review)
            for warning in response.get("warnings") or []:
                _warn(str(warning))
            if not response.get("allowed"):
                raise self._denial(hook_name, response.get("status"))
            if not (response.get("patch") and obj is not None):
                return obj, False
            if response.get("patchType") != "JSONPatch":
                raise _CallError(f"unsupported patch type {response.get('patchType')!r}")
            try:
                ops = json.loads(base64.b64decode(response["patch"]))
                patched = patches.apply_json_patch(review["request"]["object"], ops)
            except (ValueError, patches.PatchError) as err:
                raise _CallError(f"JSONPatch failed: {err}") from None
            if not isinstance(patched, dict):
                raise _CallError("the patched object is not a JSON object")
            patched["apiVersion"] = obj.get("apiVersion")
            # a patch that leaves the object as it was is no change (dispatcher.go compares the
            # decoded objects), so it does not cause reinvocation
            return patched, patched != obj
        except _CallError as err:
            if hook.get("failurePolicy") == "Ignore":
                return obj, False
            raise self._failed_call(hook_name, err) from None

    def _validate(self, operation: str, sr: ServedResource, subresource: str, namespace: str, name: str,
                  obj: JSON | None, old: JSON | None, dry_run: bool) -> None:
        """All matching validating webhooks at once, one thread each (validating/dispatcher.go
        starts a goroutine per webhook and waits for all of them).

        Every webhook is called even when another has already refused. Upstream's refusals go
        into a channel as the calls finish and the first one taken out is the answer, so when
        several refuse, the one that answered first wins, not the first in configuration order;
        the emulator reports the same one. Warnings from every webhook are returned, in
        configuration order (upstream adds them as calls finish)."""
        calls = [(hook, str(hook.get("name") or config_name), as_sr)
                 for config_name, _, hook in self._hooks(False)
                 if (as_sr := self._called_as(hook, operation, sr, subresource, namespace, obj, old)) is not None]
        if not calls:
            return
        warnings: list[list[str]] = [[] for _ in calls]
        refusals: list[Exception] = []  # in the order the calls finished
        lock = threading.Lock()

        def call(i: int) -> None:
            hook, hook_name, as_sr = calls[i]
            try:
                self._call_validating(hook, hook_name, operation, sr, as_sr, subresource, namespace, name, obj,
                                      old, dry_run, warnings[i])
            except Exception as err:  # any refusal or failure: raised in the request's thread below
                with lock:
                    refusals.append(err)

        if len(calls) == 1:
            call(0)
        else:
            threads = [threading.Thread(target=call, args=(i,), name=f"validating-webhook-{i}", daemon=True)
                       for i in range(len(calls))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        # warnings live in the request thread's local storage: the workers hand theirs over
        for found in warnings:
            for warning in found:
                _warn(warning)
        if refusals:
            raise refusals[0]

    def _call_validating(self, hook: JSON, hook_name: str, operation: str, sr: ServedResource,
                         as_sr: ServedResource, subresource: str, namespace: str, name: str, obj: JSON | None,
                         old: JSON | None, dry_run: bool, warnings: list[str]) -> None:
        """One validating webhook's call (in a worker thread): returns when it admits or is
        ignored, raises the refusal otherwise."""
        _refuse_dry_run(hook, hook_name, dry_run)
        review = self._review(operation, sr, as_sr, subresource, namespace, name, obj, old, dry_run)
        try:
            response = self._call(hook, review)
        except _CallError as err:
            if hook.get("failurePolicy") == "Ignore":
                return
            raise self._failed_call(hook_name, err) from None
        warnings.extend(str(w) for w in response.get("warnings") or [])
        if not response.get("allowed"):
            raise self._denial(hook_name, response.get("status"))

    # -- the verbs --------------------------------------------------------------------------------

    def _skip(self, sr: ServedResource, operation: str, subresource: str | None = None) -> bool:
        """No webhook could be called for this request: write straight away (no dry runs)."""
        if getattr(_local, "inside", False) or not self._any_hooks():
            return True
        for mutating in (True, False):
            for _, _, hook in self._hooks(mutating):
                if self._match_version(hook, operation, sr, subresource or "", "x") is not None or \
                        self._match_version(hook, operation, sr, subresource or "", "") is not None:
                    return False
        return True

    @staticmethod
    def _for_write(obj: JSON, resource_version: str | None, *, keep_managed_fields: bool = False) -> JSON:
        """``obj`` ready to be written again. An apply keeps its managedFields: they were worked
        out before admission, and upstream keeps them through mutation too (fieldmanager's
        managedFieldsValidatingAdmissionController), so webhook changes are owned by no one."""
        out = copy.deepcopy(obj)
        meta = out.setdefault("metadata", {})
        for key in _STRIP_ON_WRITE:
            if not (keep_managed_fields and key == "managedFields"):
                meta.pop(key, None)
        if resource_version:
            meta["resourceVersion"] = resource_version
        return out

    def create(self, sr: ServedResource, namespace: str | None, obj: JSON, *, dry_run: bool = False,
               manager: str = DEFAULT_MANAGER) -> JSON:
        if self._skip(sr, "CREATE"):
            return super().create(sr, namespace, obj, dry_run=dry_run, manager=manager)
        with _inside():
            preview = super().create(sr, namespace, copy.deepcopy(obj), dry_run=True, manager=manager)
            meta = preview.get("metadata") or {}
            ns, name = str(meta.get("namespace") or ""), str(meta.get("name") or "")
            mutated = self._dispatch(True, "CREATE", sr, "", ns, name, preview, None, dry_run)
            assert mutated is not None
            keep = manager == APPLIED
            final = preview
            if mutated != preview:
                final = super().create(sr, namespace, self._for_write(mutated, None, keep_managed_fields=keep),
                                       dry_run=True, manager=manager)
            self._dispatch(False, "CREATE", sr, "", ns, name, final, None, dry_run)
            return super().create(sr, namespace, self._for_write(mutated, None, keep_managed_fields=keep),
                                  dry_run=dry_run, manager=manager)

    def update(self, sr: ServedResource, namespace: str | None, name: str, obj: JSON, *,
               subresource: str | None = None, dry_run: bool = False,
               manager: str = DEFAULT_MANAGER) -> tuple[JSON, bool]:
        if subresource == "scale" or self._skip(sr, "UPDATE", subresource):
            return super().update(sr, namespace, name, obj, subresource=subresource, dry_run=dry_run,
                                  manager=manager)
        with _inside():
            try:
                old = self.get(sr, namespace, name)
            except errors.NotFound:
                return super().update(sr, namespace, name, obj, subresource=subresource, dry_run=dry_run,
                                      manager=manager)
            preview, _ = super().update(sr, namespace, name, copy.deepcopy(obj), subresource=subresource,
                                        dry_run=True, manager=manager)
            result = self._admit_update(sr, namespace, name, subresource, preview, old, dry_run, manager)
            if result is None:
                return super().update(sr, namespace, name, obj, subresource=subresource, dry_run=dry_run,
                                      manager=manager)
            return result, False

    def _admit_update(self, sr: ServedResource, namespace: str | None, name: str, subresource: str | None,
                      preview: JSON, old: JSON, dry_run: bool, manager: str) -> JSON | None:
        """Webhooks for an UPDATE; returns the written object when a webhook mutated it, None
        when the caller's own write may go ahead unchanged."""
        ns = str((old.get("metadata") or {}).get("namespace") or "")
        mutated = self._dispatch(True, "UPDATE", sr, subresource or "", ns, name, preview, old, dry_run)
        assert mutated is not None
        rv = str(old["metadata"].get("resourceVersion") or "")
        final = preview
        if mutated != preview:
            final, _ = super().update(sr, namespace, name, self._for_write(mutated, rv), subresource=subresource,
                                      dry_run=True, manager=manager)
        self._dispatch(False, "UPDATE", sr, subresource or "", ns, name, final, old, dry_run)
        if mutated == preview:
            return None
        written, _ = super().update(sr, namespace, name, self._for_write(mutated, rv), subresource=subresource,
                                    dry_run=dry_run, manager=manager)
        return written

    def patch(self, sr: ServedResource, namespace: str | None, name: str, patch_type: str, patch: Any, *,
              subresource: str | None = None, dry_run: bool = False, manager: str = DEFAULT_MANAGER) -> JSON:
        if subresource == "scale" or self._skip(sr, "UPDATE", subresource):
            return super().patch(sr, namespace, name, patch_type, patch, subresource=subresource,
                                 dry_run=dry_run, manager=manager)
        with _inside():
            old = self.get(sr, namespace, name)
            preview = super().patch(sr, namespace, name, patch_type, copy.deepcopy(patch),
                                    subresource=subresource, dry_run=True, manager=manager)
            written = self._admit_update(sr, namespace, name, subresource, preview, old, dry_run, manager)
            if written is not None:
                return written
            return super().patch(sr, namespace, name, patch_type, patch, subresource=subresource,
                                 dry_run=dry_run, manager=manager)

    def apply(self, sr: ServedResource, namespace: str | None, name: str, config: Any, *, manager: str,
              force: bool = False, subresource: str | None = None, dry_run: bool = False) -> tuple[JSON, bool]:
        """Server-side apply, admitted as kube-apiserver's patcher does (endpoints/handlers/patch.go
        applyAdmission and the update/create validation it hands the store): CREATE when the
        object is missing, otherwise UPDATE with the stored object as oldObject. The options
        webhooks see are CreateOptions / UpdateOptions (patchToCreateOptions /
        patchToUpdateOptions), not the request's PatchOptions."""
        if self._skip(sr, "CREATE") and self._skip(sr, "UPDATE", subresource):
            return super().apply(sr, namespace, name, config, manager=manager, force=force,
                                 subresource=subresource, dry_run=dry_run)
        # The dry run and the read of what it applied to are one transaction, so ``stored`` is
        # the object the preview was merged into; under _inside a create-on-apply writes
        # nothing and calls no webhook while the lock is held.
        with _inside(), self.store.lock:
            stored = self.store.get(sr.storage, self._okey(sr, namespace, name))
            preview, created = super().apply(sr, namespace, name, copy.deepcopy(config), manager=manager,
                                             force=force, subresource=subresource, dry_run=True)
        if created:
            # create() runs CREATE admission outside the lock and keeps the applied managedFields
            return self.create(sr, namespace, self._for_write(preview, None, keep_managed_fields=True),
                               dry_run=dry_run, manager=APPLIED), True
        assert stored is not None
        with _inside():
            old = self.out(sr, stored)
            rv = str(stored["metadata"].get("resourceVersion") or "")
            ns = str((old.get("metadata") or {}).get("namespace") or "")
            mutated = self._dispatch(True, "UPDATE", sr, subresource or "", ns, name, preview, old, dry_run)
            assert mutated is not None
            final = preview
            if mutated != preview:
                final = self._write_applied(sr, namespace, name, subresource, mutated, rv, dry_run=True)
            self._dispatch(False, "UPDATE", sr, subresource or "", ns, name, final, old, dry_run)
            # What the webhooks admitted is written, not the apply re-run: a write that landed
            # in between (or a changed clock in managedFields' times) would make it differ.
            return self._write_applied(sr, namespace, name, subresource, mutated, rv, dry_run=dry_run), False

    def _write_applied(self, sr: ServedResource, namespace: str | None, name: str, subresource: str | None,
                       obj: JSON, resource_version: str, *, dry_run: bool) -> JSON:
        """Write an applied (and possibly mutated) object over the stored one, with the apply's
        managedFields; 409 when the object changed since the webhooks saw it."""
        body = self._for_write(obj, None, keep_managed_fields=True)
        with self.store.lock:
            current = self.store.get(sr.storage, self._okey(sr, namespace, name))
            if current is None:
                raise errors.not_found(sr.resource, sr.group, name)
            if current["metadata"].get("resourceVersion") != resource_version:
                raise errors.conflict(sr.resource, sr.group, name, errors.STALE_OBJECT)
            written, _ = self._apply_commit(sr, namespace, current, body, subresource=subresource, dry_run=dry_run)
            return written

    def _admit_delete(self, sr: ServedResource, namespace: str | None, name: str, review_namespace: str,
                      review_name: str, dry_run: bool) -> None:
        """DELETE admission of the stored object: mutating, then validating webhooks, each with
        only the old object (rest.AdmissionToValidateObjectDeleteFunc calls both kinds)."""
        with _inside():
            old = self.get(sr, namespace, name)
            self._dispatch(True, "DELETE", sr, "", review_namespace, review_name, None, old, dry_run)
            self._dispatch(False, "DELETE", sr, "", review_namespace, review_name, None, old, dry_run)

    def delete(self, sr: ServedResource, namespace: str | None, name: str, *,
               propagation_policy: str | None = None, preconditions: JSON | None = None,
               orphan_dependents: bool | None = None, dry_run: bool = False) -> tuple[JSON, bool]:
        if not self._skip(sr, "DELETE"):
            self._admit_delete(sr, namespace, name, str(namespace or ""), name, dry_run)
        return super().delete(sr, namespace, name, propagation_policy=propagation_policy,
                              preconditions=preconditions, orphan_dependents=orphan_dependents, dry_run=dry_run)

    def delete_collection(self, sr: ServedResource, flt: Filter, *, propagation_policy: str | None = None,
                          dry_run: bool = False) -> JSON:
        """DELETE on a collection: each listed object is admitted as a DELETE, then deleted.

        As registry/generic/registry/store.go DeleteCollection, which deletes item by item with
        the handler's delete validation: the review carries the request's namespace (``""`` for
        all namespaces) and no name (handlers/delete.go DeleteCollection builds its attributes
        with name ""), the item only as oldObject. The first refusal stops the deletion and is
        the answer; items deleted before it stay deleted (one delete worker, the default).
        Webhooks are called outside the store lock, so the list and the deletes are no longer
        one transaction: an item gone in between is skipped, as upstream skips NotFound.
        """
        if self._skip(sr, "DELETE"):
            return super().delete_collection(sr, flt, propagation_policy=propagation_policy, dry_run=dry_run)
        listed = self.list(sr, flt)
        for obj in listed["items"]:
            meta = obj["metadata"]
            try:
                self._admit_delete(sr, meta.get("namespace"), meta["name"], flt.namespace or "", "", dry_run)
                super().delete(sr, meta.get("namespace"), meta["name"], propagation_policy=propagation_policy,
                               dry_run=dry_run)
            except errors.NotFound:
                continue
        return listed
