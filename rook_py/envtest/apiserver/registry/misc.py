"""coordination.k8s.io, rbac.authorization.k8s.io, networking.k8s.io and policy strategies."""

from __future__ import annotations

from .base import (
    JSON,
    SPEC_GENERATION,
    Cause,
    ServedResource,
    Strategy,
    immutable,
    invalid_value,
    path_segment_name,
    required,
)


class LeaseStrategy(Strategy):
    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        duration = spec.get("leaseDurationSeconds")
        if duration is not None and (not isinstance(duration, int) or duration <= 0):
            return [invalid_value("spec.leaseDurationSeconds", duration, "must be greater than 0")]
        return []


class RBACStrategy(Strategy):
    name_validator = staticmethod(path_segment_name)


class RoleStrategy(RBACStrategy):
    def validate(self, obj: JSON) -> list[Cause]:
        causes = []
        for i, rule in enumerate(obj.get("rules") or []):
            if not isinstance(rule, dict) or not rule.get("verbs"):
                causes.append(required(f"rules[{i}].verbs", "Required value: verbs must contain at least one value"))
        return causes


class BindingStrategy(RBACStrategy):
    def validate(self, obj: JSON) -> list[Cause]:
        ref = obj.get("roleRef") or {}
        causes = []
        if not ref.get("kind"):
            causes.append(required("roleRef.kind"))
        if not ref.get("name"):
            causes.append(required("roleRef.name"))
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        if new.get("roleRef") != old.get("roleRef"):
            causes.append(immutable("roleRef", new.get("roleRef")))
        return causes


class IngressStrategy(Strategy):
    has_status = True
    generation = SPEC_GENERATION


class PDBStrategy(Strategy):
    has_status = True
    generation = SPEC_GENERATION

    def prepare_for_create(self, obj: JSON) -> None:
        obj["status"] = {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}
        self.default(obj)

    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        if "minAvailable" in spec and "maxUnavailable" in spec:
            return [invalid_value("spec", spec, "minAvailable and maxUnavailable cannot be both set")]
        return []


def misc_resources() -> list[ServedResource]:
    return [
        ServedResource("coordination.k8s.io", "v1", "leases", "Lease", True, LeaseStrategy()),
        ServedResource("rbac.authorization.k8s.io", "v1", "roles", "Role", True, RoleStrategy()),
        ServedResource("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, BindingStrategy()),
        ServedResource("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, RoleStrategy()),
        ServedResource("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False,
                       BindingStrategy()),
        ServedResource("networking.k8s.io", "v1", "ingresses", "Ingress", True, IngressStrategy(),
                       short_names=("ing",), subresources=("status",)),
        ServedResource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, PDBStrategy(),
                       short_names=("pdb",), subresources=("status",)),
    ]
