"""apps/v1 strategies (``pkg/registry/apps/*/strategy.go``, ``pkg/apis/apps/v1/defaults.go``)."""

from __future__ import annotations

import copy

from rook_py.framework.kube.selectors import selector_from_label_selector

from .base import (
    JSON,
    SPEC_GENERATION,
    Cause,
    ScaleSpec,
    ServedResource,
    Strategy,
    forbidden,
    immutable,
    invalid_value,
    required,
)
from .core import default_claim, default_pod_spec, validate_pod_spec


class WorkloadStrategy(Strategy):
    """Deployments, StatefulSets, DaemonSets and ReplicaSets share selector/template rules."""

    has_status = True
    generation = SPEC_GENERATION
    kind = ""
    def default(self, obj: JSON) -> None:
        spec = obj.setdefault("spec", {})
        template = spec.get("template")
        if isinstance(template, dict):
            default_pod_spec(template.setdefault("spec", {}))
            # an embedded ObjectMeta serialises its zero creationTimestamp as null (metav1.Time
            # is a struct, which omitempty keeps): kube-apiserver returns it, so do we
            template.setdefault("metadata", {}).setdefault("creationTimestamp", None)

    def validate(self, obj: JSON) -> list[Cause]:
        spec = obj.get("spec") or {}
        causes: list[Cause] = []
        selector = spec.get("selector")
        if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(required("spec.selector"))
        template = spec.get("template")
        if not isinstance(template, dict):
            causes.append(required("spec.template"))
            return causes
        labels = (template.get("metadata") or {}).get("labels") or {}
        if isinstance(selector, dict) and selector:
            try:
                matches = selector_from_label_selector(selector).matches(labels)
            except ValueError as exc:
                causes.append(invalid_value("spec.selector", selector, str(exc)))
            else:
                if not matches:
                    causes.append(invalid_value("spec.template.metadata.labels", labels,
                                                "`selector` does not match template `labels`"))
        causes += validate_pod_spec(template.get("spec"), "spec.template.spec")
        replicas = spec.get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            causes.append(invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
        return causes

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        if (new.get("spec") or {}).get("selector") != (old.get("spec") or {}).get("selector"):
            causes.append(immutable("spec.selector", (new.get("spec") or {}).get("selector")))
        return causes


class DeploymentStrategy(WorkloadStrategy):
    scale = ScaleSpec()
    # deploymentStatusStrategy.PrepareForUpdate (pkg/registry/apps/deployment/strategy.go) resets
    # spec and labels only: the deployment controller writes its revision annotation through
    # /status, which is why a fresh Deployment shows that annotation at generation 1.
    status_reset_metadata = ("labels",)

    def default(self, obj: JSON) -> None:
        super().default(obj)
        spec = obj["spec"]
        spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", "25%")
            rolling.setdefault("maxSurge", "25%")

    def spec_changed(self, new: JSON, old: JSON) -> bool:
        # annotations bump too: they are copied onto ReplicaSets (deployment strategy.go)
        return super().spec_changed(new, old) or \
            new.get("metadata", {}).get("annotations") != old.get("metadata", {}).get("annotations")


STATEFULSET_MUTABLE = ("replicas", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                       "minReadySeconds", "ordinals")


class StatefulSetStrategy(WorkloadStrategy):
    scale = ScaleSpec()

    def default(self, obj: JSON) -> None:
        super().default(obj)
        spec = obj["spec"]
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
        policy = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
        policy.setdefault("whenDeleted", "Retain")
        policy.setdefault("whenScaled", "Retain")
        for claim in spec.get("volumeClaimTemplates") or []:
            if isinstance(claim, dict):
                # a claim template is a whole PersistentVolumeClaim, defaulted and serialised
                # as one (type meta included, status.phase Pending)
                claim.setdefault("apiVersion", "v1")
                claim.setdefault("kind", "PersistentVolumeClaim")
                claim.setdefault("metadata", {}).setdefault("creationTimestamp", None)
                default_claim(claim)
                claim.setdefault("status", {}).setdefault("phase", "Pending")

    def validate_update(self, new: JSON, old: JSON) -> list[Cause]:
        causes = self.validate(new)
        def frozen(obj: JSON) -> JSON:
            spec = copy.copy(obj.get("spec") or {})
            for key in STATEFULSET_MUTABLE:
                spec.pop(key, None)
            return spec
        if frozen(new) != frozen(old):
            causes.append(forbidden("spec", "updates to statefulset spec for fields other than 'replicas', "
                                    "'ordinals', 'template', 'updateStrategy', "
                                    "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
        return causes


#: kube-apiserver keeps a DaemonSet's template generation in this annotation (set to 1 on create,
#: bumped each time the pod template changes: pkg/registry/apps/daemonset/strategy.go and the
#: apps/v1 conversion of spec.templateGeneration).
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"


class DaemonSetStrategy(WorkloadStrategy):
    def prepare_for_create(self, obj: JSON) -> None:
        super().prepare_for_create(obj)
        obj.setdefault("metadata", {}).setdefault("annotations", {})[TEMPLATE_GENERATION_ANNOTATION] = "1"

    def prepare_for_update(self, new: JSON, old: JSON) -> None:
        super().prepare_for_update(new, old)
        old_annotations = (old.get("metadata") or {}).get("annotations") or {}
        try:
            generation = int(old_annotations.get(TEMPLATE_GENERATION_ANNOTATION, "1"))
        except ValueError:
            generation = 1
        if (new.get("spec") or {}).get("template") != (old.get("spec") or {}).get("template"):
            generation += 1
        annotations = new.setdefault("metadata", {}).get("annotations")
        if not isinstance(annotations, dict):
            annotations = new["metadata"]["annotations"] = {}
        annotations[TEMPLATE_GENERATION_ANNOTATION] = str(generation)

    def default(self, obj: JSON) -> None:
        super().default(obj)
        spec = obj["spec"]
        spec.setdefault("revisionHistoryLimit", 10)
        strategy = spec.setdefault("updateStrategy", {})
        strategy.setdefault("type", "RollingUpdate")
        if strategy["type"] == "RollingUpdate":
            rolling = strategy.setdefault("rollingUpdate", {})
            rolling.setdefault("maxUnavailable", 1)
            rolling.setdefault("maxSurge", 0)


class ReplicaSetStrategy(WorkloadStrategy):
    scale = ScaleSpec()

    def default(self, obj: JSON) -> None:
        super().default(obj)
        obj["spec"].setdefault("replicas", 1)


def apps_resources() -> list[ServedResource]:
    return [
        ServedResource("apps", "v1", "deployments", "Deployment", True, DeploymentStrategy(),
                       short_names=("deploy",), categories=("all",), subresources=("status", "scale")),
        ServedResource("apps", "v1", "statefulsets", "StatefulSet", True, StatefulSetStrategy(),
                       short_names=("sts",), categories=("all",), subresources=("status", "scale")),
        ServedResource("apps", "v1", "daemonsets", "DaemonSet", True, DaemonSetStrategy(),
                       short_names=("ds",), categories=("all",), subresources=("status",)),
        ServedResource("apps", "v1", "replicasets", "ReplicaSet", True, ReplicaSetStrategy(),
                       short_names=("rs",), categories=("all",), subresources=("status", "scale")),
    ]
