"""How the lists of built-in kinds merge: one table for strategic merge patch, client-side apply
and server-side apply.

Each list has two descriptions upstream, both read from the struct tags of k8s.io/api v0.28
(``types.go``) and published in the OpenAPI document:

* the strategic-merge-patch metadata, ``patchStrategy`` / ``patchMergeKey``
  (``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``), which
  ``kubectl apply``, strategic merge patches and our client-side ``objects.apply`` follow;
* the list type server-side apply uses, ``+listType`` / ``+listMapKey``
  (``x-kubernetes-list-type`` / ``x-kubernetes-list-map-keys``). Where a field declares none,
  the OpenAPI-to-schema conversion (kube-openapi pkg/schemaconv) derives it from the patch
  metadata: merge with a key is a map keyed by it, merge without one a set, else atomic.

They can differ: a container's ``ports`` merge by ``containerPort`` in a strategic patch but are
keyed by ``(containerPort, protocol)`` in server-side apply; a Job's ``status.conditions`` merge
by ``type`` in a patch but are atomic for server-side apply. Paths are field names from the object
root with list positions left out (``("spec", "template", "spec", "containers", "ports")``);
a field name alone is ambiguous, so rules also say in which parent, kind or exact path they hold.
Lists not in the table are atomic, as Go slices are by default. Custom resources describe their
lists in their schema: ``from_openapi`` reads that.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

__all__ = [
    "ATOMIC",
    "ListSemantics",
    "from_openapi",
    "list_semantics",
    "map_list",
    "patch_merge_key",
    "set_list",
]

ListType = Literal["atomic", "set", "map"]


@dataclass(frozen=True, slots=True)
class ListSemantics:
    """One list's merge semantics.

    ``list_type`` and ``map_keys`` are what server-side apply uses; ``patch_strategy`` (``""``,
    ``"merge"`` or ``"merge,retainKeys"``) and ``patch_merge_key`` (``""`` for a merged list of
    primitives) what a strategic merge patch and client-side apply use."""

    list_type: ListType = "atomic"
    map_keys: tuple[str, ...] = ()
    patch_strategy: str = ""
    patch_merge_key: str = ""

    @property
    def patch_merges(self) -> bool:
        """True when a strategic merge patch merges this list rather than replacing it."""
        return "merge" in self.patch_strategy.split(",")

    @property
    def retains_keys(self) -> bool:
        return "retainKeys" in self.patch_strategy.split(",")


ATOMIC: Final = ListSemantics()


def map_list(*keys: str, merge_key: str | None = None, strategy: str = "merge",
             list_keys: Sequence[str] | None = None) -> ListSemantics:
    """A list of maps keyed by ``keys``; the patch merge key defaults to the first key."""
    return ListSemantics("map", tuple(list_keys or keys), strategy, keys[0] if merge_key is None else merge_key)


def set_list(strategy: str = "merge") -> ListSemantics:
    """A list of primitives kept as an ordered set."""
    return ListSemantics("set", (), strategy, "")


@dataclass(frozen=True, slots=True)
class _Rule:
    field: str
    semantics: ListSemantics
    parents: frozenset[str] | None = None   # the enclosing field's name must be one of these
    path: tuple[str, ...] | None = None     # or the whole path must be this
    kinds: frozenset[str] | None = None     # and the object's kind one of these

    def applies(self, kind: str | None, path: tuple[str, ...]) -> bool:
        if self.kinds is not None and kind not in self.kinds:
            return False
        if self.path is not None and path != self.path:
            return False
        return self.parents is None or (len(path) >= 2 and path[-2] in self.parents)


_CONTAINERS: Final = frozenset({"containers", "initContainers", "ephemeralContainers"})
_WEBHOOK_CONFIGS: Final = frozenset({"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"})
_REPLACE_MAP_TYPE: Final = ListSemantics("map", ("type",))  # listType=map without patch metadata

# First matching rule wins, so the narrow rules of a field name come before its general one.
_RULES: Final[tuple[_Rule, ...]] = (
    # metav1.ObjectMeta
    _Rule("ownerReferences", map_list("uid")),
    _Rule("finalizers", set_list(), path=("metadata", "finalizers")),
    # core/v1 PodSpec (in a Pod and every pod template) and Container: these field names occur
    # nowhere else among the built-in kinds, so they hold wherever they appear
    _Rule("containers", map_list("name")),
    _Rule("initContainers", map_list("name")),
    _Rule("ephemeralContainers", map_list("name")),
    _Rule("volumes", map_list("name", strategy="merge,retainKeys")),
    # a ServiceAccount's imagePullSecrets carry no list tags (atomic); a PodSpec's merge by name
    _Rule("imagePullSecrets", ATOMIC, path=("imagePullSecrets",), kinds=frozenset({"ServiceAccount"})),
    _Rule("imagePullSecrets", map_list("name")),
    _Rule("hostAliases", map_list("ip")),
    _Rule("topologySpreadConstraints", map_list("topologyKey", "whenUnsatisfiable")),
    _Rule("resourceClaims", map_list("name", strategy="merge,retainKeys")),
    _Rule("schedulingGates", map_list("name")),
    _Rule("ports", map_list("containerPort", "protocol"), parents=_CONTAINERS),
    _Rule("env", map_list("name")),
    _Rule("volumeMounts", map_list("mountPath")),
    _Rule("volumeDevices", map_list("devicePath")),
    _Rule("claims", ListSemantics("map", ("name",)), parents=frozenset({"resources"})),
    # core/v1 PodStatus
    _Rule("podIPs", map_list("ip"), path=("status", "podIPs"), kinds=frozenset({"Pod"})),
    _Rule("hostIPs", ListSemantics("atomic", (), "merge", "ip"), path=("status", "hostIPs"),
          kinds=frozenset({"Pod"})),
    _Rule("resourceClaimStatuses", map_list("name", strategy="merge,retainKeys"),
          path=("status", "resourceClaimStatuses"), kinds=frozenset({"Pod"})),
    # status conditions: merged by type, except where a kind says otherwise
    _Rule("conditions", ListSemantics("atomic", (), "merge", "type"), path=("status", "conditions"),
          kinds=frozenset({"Job"})),
    _Rule("conditions", _REPLACE_MAP_TYPE, path=("status", "conditions"),
          kinds=frozenset({"CertificateSigningRequest", "CustomResourceDefinition"})),
    _Rule("conditions", map_list("type"), path=("status", "conditions")),
    _Rule("conditions", map_list("type"), path=("conditions",), kinds=frozenset({"ComponentStatus"})),
    _Rule("conditions", map_list("type")),  # every other built-in status keys them by type
    # core/v1 Node, Service, ServiceAccount
    _Rule("addresses", map_list("type"), path=("status", "addresses"), kinds=frozenset({"Node"})),
    _Rule("podCIDRs", set_list(), path=("spec", "podCIDRs"), kinds=frozenset({"Node"})),
    _Rule("ports", map_list("port", "protocol"), path=("spec", "ports"), kinds=frozenset({"Service"})),
    _Rule("secrets", map_list("name"), path=("secrets",), kinds=frozenset({"ServiceAccount"})),
    # discovery/v1, batch/v1, storage/v1, admissionregistration/v1
    _Rule("addresses", set_list(""), path=("endpoints", "addresses"), kinds=frozenset({"EndpointSlice"})),
    _Rule("failed", set_list(""), path=("status", "uncountedTerminatedPods", "failed"), kinds=frozenset({"Job"})),
    _Rule("succeeded", set_list(""), path=("status", "uncountedTerminatedPods", "succeeded"),
          kinds=frozenset({"Job"})),
    _Rule("values", set_list(""), parents=frozenset({"onExitCodes"}), kinds=frozenset({"Job", "CronJob"})),
    _Rule("drivers", map_list("name"), path=("spec", "drivers"), kinds=frozenset({"CSINode"})),
    _Rule("volumeLifecycleModes", set_list(""), path=("spec", "volumeLifecycleModes"),
          kinds=frozenset({"CSIDriver"})),
    _Rule("webhooks", map_list("name"), path=("webhooks",), kinds=_WEBHOOK_CONFIGS),
    _Rule("matchConditions", map_list("name"), path=("webhooks", "matchConditions"), kinds=_WEBHOOK_CONFIGS),
)
_RULES_BY_FIELD: Final[Mapping[str, tuple[_Rule, ...]]] = {
    name: tuple(r for r in _RULES if r.field == name) for name in {r.field for r in _RULES}
}


def list_semantics(kind: str | None, path: Sequence[str]) -> ListSemantics:
    """The merge semantics of the list at ``path`` in an object of built-in ``kind``."""
    if not path:
        return ATOMIC
    key = tuple(path)
    for rule in _RULES_BY_FIELD.get(key[-1], ()):
        if rule.applies(kind, key):
            return rule.semantics
    return ATOMIC


def patch_merge_key(kind: str | None, path: Sequence[str]) -> str | None:
    """The key a strategic merge patch (or client-side apply) merges the list of maps at
    ``path`` by; None when the list is replaced whole or holds primitives."""
    semantics = list_semantics(kind, path)
    return semantics.patch_merge_key or None if semantics.patch_merges else None


def from_openapi(schema: Mapping[str, Any]) -> ListSemantics:
    """A list's semantics from its (structural or OpenAPI v3) schema node, as kube-openapi's
    schemaconv derives them: an explicit ``x-kubernetes-list-type`` wins; otherwise the patch
    metadata decides (merge with a key: map; merge without: set); otherwise atomic."""
    strategy = str(schema.get("x-kubernetes-patch-strategy") or "")
    merge_key = str(schema.get("x-kubernetes-patch-merge-key") or "")
    declared = schema.get("x-kubernetes-list-type")
    if declared in ("atomic", "set", "map"):
        keys = tuple(str(k) for k in schema.get("x-kubernetes-list-map-keys") or ()) if declared == "map" else ()
        return ListSemantics(declared, keys, strategy, merge_key)
    if "merge" in strategy.split(","):
        if merge_key:
            return ListSemantics("map", (merge_key,), strategy, merge_key)
        return ListSemantics("set", (), strategy, "")
    return ListSemantics("atomic", (), strategy, merge_key)
