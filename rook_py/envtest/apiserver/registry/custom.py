"""CustomResourceDefinitions and the custom resources they serve.

After ``staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresourcedefinition`` and
``.../registry/customresource``. The schema work (validation, defaulting, pruning) is delegated to
``apiserver/crd/``; this module decides *when* it runs and what the generic store sees.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..webhookclient import Endpoint
from .base import (
    ALL_GENERATION,
    JSON,
    SPEC_GENERATION,
    Cause,
    ScaleSpec,
    ServedResource,
    Strategy,
    immutable,
    invalid_value,
)

#: added on create so that deleting a CRD first removes its objects (apiextensions finalizer)
CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"


def _condition(type_: str, status: str, reason: str, message: str, now: str) -> JSON:
    return {"type": type_, "status": status, "lastTransitionTime": now, "reason": reason, "message": message}


def storage_version(crd: JSON) -> str:
    for version in crd.get("spec", {}).get("versions") or []:
        if version.get("storage"):
            return str(version["name"])
    versions = crd.get("spec", {}).get("versions") or [{}]
    return str(versions[0].get("name", "v1"))


class CRDStrategy(Strategy):
    has_status = True
    generation = SPEC_GENERATION
    return_deleted_object = True
    # apiextensions-apiserver/pkg/registry/customresourcedefinition/strategy.go statusStrategy:
    # labels, annotations and ownerReferences are reset; finalizers written to /status persist.
    status_reset_metadata = ("labels", "annotations", "ownerReferences")

    def __init__(self, now: Callable[[], str]) -> None:
        self._now = now  # the server clock (RFC 3339), injected so tests can pin it

    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        names = spec.setdefault("names", {})
        if names.get("kind"):
            names.setdefault("singular", str(names["kind"]).lower())
            names.setdefault("listKind", f"{names['kind']}List")
        spec.setdefault("conversion", {"strategy": "None"})

    def prepare_for_create(self, obj: JSON) -> None:
        super().prepare_for_create(obj)
        meta = obj.setdefault("metadata", {})
        finalizers = list(meta.get("finalizers") or [])
        if CLEANUP_FINALIZER not in finalizers:
            finalizers.append(CLEANUP_FINALIZER)
        meta["finalizers"] = finalizers
        # what the naming and establishing controllers would write moments later
        now = self._now()
        names = copy.deepcopy(obj["spec"].get("names", {}))
        obj["status"] = {
            "acceptedNames": names,
            "conditions": [
                _condition("NamesAccepted", "True", "NoConflicts", "no conflicts found", now),
                _condition("Established", "True", "InitialNamesAccepted", "the initial names have been accepted", now),
            ],
            "storedVersions": [storage_version(obj)],
        }

    def validate(self, obj: JSON) -> list[Cause]:
        from ..crd import validate_crd_definition
        from ..crd.cel import definition_causes

        # validate_crd_definition covers metadata.name == plural.group as well
        causes = list(validate_crd_definition(obj))
        for i, version in enumerate((obj.get("spec") or {}).get("versions") or []):
            schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema") if isinstance(version, dict) else None
            if isinstance(schema, dict):
                causes += definition_causes(schema, f"spec.versions[{i}].schema.openAPIV3Schema")
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        if new.get("spec", {}).get("group") != old.get("spec", {}).get("group"):
            causes.append(immutable("spec.group", new.get("spec", {}).get("group")))
        if new.get("spec", {}).get("scope") != old.get("spec", {}).get("scope"):
            causes.append(immutable("spec.scope", new.get("spec", {}).get("scope")))
        return causes

    def prepare_for_update(self, new: JSON, old: JSON) -> None:
        super().prepare_for_update(new, old)
        status = new.get("status")
        if isinstance(status, dict):
            # keep accepted names and stored versions in step with the spec, as the controllers do
            status["acceptedNames"] = copy.deepcopy(new.get("spec", {}).get("names", {}))
            stored = list(status.get("storedVersions") or [])
            version = storage_version(new)
            if version not in stored:
                stored.append(version)
            status["storedVersions"] = stored


class CustomResourceStrategy(Strategy):
    """One served version of a CRD: the schema, subresources and scope drive everything."""

    allow_unconditional_update = False
    return_deleted_object = True
    status_reset_metadata = None   # /status changes nothing in metadata (status_strategy.go)

    def __init__(self, crd: JSON, version: JSON) -> None:
        spec = crd.get("spec", {})
        self.kind = str(spec.get("names", {}).get("kind", ""))
        self.group = str(spec.get("group", ""))
        subresources = version.get("subresources") or spec.get("subresources") or {}
        self.has_status = "status" in subresources
        self.generation = SPEC_GENERATION if self.has_status else ALL_GENERATION
        scale = subresources.get("scale")
        if isinstance(scale, dict):
            self.scale = ScaleSpec(
                spec_replicas=str(scale.get("specReplicasPath", ".spec.replicas")).lstrip("."),
                status_replicas=str(scale.get("statusReplicasPath", ".status.replicas")).lstrip("."),
                label_selector=str(scale["labelSelectorPath"]).lstrip(".") if scale.get("labelSelectorPath") else None,
            )
        self.selectable_fields = {
            str(f["jsonPath"]).lstrip("."): str(f["jsonPath"]).lstrip(".")
            for f in version.get("selectableFields") or [] if isinstance(f, dict) and f.get("jsonPath")
        }
        schema = (version.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        self.schema: Any = None
        self.rules_schema: JSON | None = None
        if isinstance(schema, dict):
            from ..crd import CRDVersionSchema
            from ..crd.cel import has_rules

            self.schema = CRDVersionSchema(schema)
            self.rules_schema = schema if has_rules(schema) else None

    def default(self, obj: JSON) -> None:
        if self.schema is not None:
            # decode -> prune -> default, the apiextensions-apiserver order
            self.schema.prune(obj)
            self.schema.default(obj)

    def validate(self, obj: JSON) -> list[Cause]:
        causes: list[Cause] = []
        if obj.get("kind") != self.kind:
            causes.append(invalid_value("kind", obj.get("kind"), f"must be {self.kind}"))
        if self.schema is not None:
            causes += list(self.schema.validate(obj))
        return causes + self._rule_causes(obj, None, causes)

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes: list[Cause] = []
        if new.get("kind") != self.kind:
            causes.append(invalid_value("kind", new.get("kind"), f"must be {self.kind}"))
        if self.schema is not None:
            causes += list(self.schema.validate(new))
        return causes + self._rule_causes(new, old, causes)

    def _rule_causes(self, obj: JSON, old: JSON | None, schema_causes: list[Cause]) -> list[Cause]:
        """x-kubernetes-validations, only once the object fits its schema (upstream skips CEL
        after a blocking schema error: the rules may assume the declared types)."""
        if self.rules_schema is None or schema_causes:
            return []
        from ..crd import cel

        return cel.validate(self.rules_schema, obj, old, has_old=old is not None)

    def validate_status_update(self, new: JSON, old: JSON) -> list[Cause]:
        if self.schema is None:
            return []
        causes = list(self.schema.validate(new))
        return causes + self._rule_causes(new, old, causes)

    def prepare_for_status_update(self, new: JSON, old: JSON) -> JSON:
        result = super().prepare_for_status_update(new, old)
        if self.schema is not None:
            self.schema.prune(result)
            self.schema.default(result)
        return result


def served_from_crd(crd: JSON, endpoint: Callable[[JSON], Endpoint] | None = None,
                    ) -> list[ServedResource]:
    """The ServedResources a CRD establishes: one per served version, all on the same storage.
    ``endpoint`` resolves a conversion webhook's clientConfig (see ``conversion.convert``)."""
    spec = crd.get("spec", {})
    names = spec.get("names", {})
    group = str(spec.get("group", ""))
    plural = str(names.get("plural", ""))
    out = []
    webhook_conversion = ((spec.get("conversion") or {}).get("strategy") == "Webhook")
    stored_as = f"{group}/{storage_version(crd)}"
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        strategy = CustomResourceStrategy(crd, version)
        converters: JSON = {}
        if webhook_conversion:
            from ..conversion import convert

            served_as = f"{group}/{version['name']}"
            converters = {"from_storage": lambda obj, v=served_as: convert(crd, obj, v, endpoint),
                          "to_storage": lambda obj: convert(crd, obj, stored_as, endpoint)}
        subresources = tuple(k for k in ("status", "scale") if k in (version.get("subresources") or {}))
        out.append(ServedResource(
            group, str(version["name"]), plural, str(names.get("kind", "")),
            spec.get("scope", "Namespaced") == "Namespaced", strategy,
            singular=str(names.get("singular") or str(names.get("kind", "")).lower()),
            short_names=tuple(names.get("shortNames") or ()),
            categories=tuple(names.get("categories") or ()),
            subresources=subresources,
            printer_columns=list(version.get("additionalPrinterColumns") or []),
            schema=strategy.schema,
            extra={"crd": crd.get("metadata", {}).get("name")},
            **converters,
        ))
    return out


def crd_resource(now: Callable[[], str]) -> ServedResource:
    return ServedResource("apiextensions.k8s.io", "v1", "customresourcedefinitions", "CustomResourceDefinition",
                          False, CRDStrategy(now), short_names=("crd", "crds"),
                          categories=("api-extensions",), subresources=("status",))


def terminating_condition(now: str) -> JSON:
    return _condition("Terminating", "True", "InstanceDeletionInProgress",
                      "CustomResource deletion is in progress", now)
