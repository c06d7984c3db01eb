"""Legacy (unaggregated) discovery documents: /version, /api, /apis, /apis/{g}, resource lists.

kubectl and client-go first ask for aggregated discovery (apidiscovery.k8s.io/v2) through the
Accept header and fall back to these documents when the server answers plain JSON, which is what
we do (staging/src/k8s.io/client-go/discovery/discovery_client.go).
"""

from __future__ import annotations

from typing import Any

from .registry import Registry, ServedResource

JSON = dict[str, Any]

KUBE_VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0+rookpy.envtest",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23.0", "compiler": "gc",
                "platform": "linux/amd64"}

SUBRESOURCE_VERBS = {"status": ["get", "patch", "update"], "scale": ["get", "patch", "update"],
                     "finalize": ["update"]}


def version() -> JSON:
    return dict(KUBE_VERSION)


def api_versions(server_address: str) -> JSON:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group(name: str, versions: list[str]) -> JSON:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(registry: Registry) -> JSON:
    groups = [_group(g, vs) for g, vs in registry.groups().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(registry: Registry, group: str) -> JSON | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def _entries(sr: ServedResource) -> list[JSON]:
    main: JSON = {"name": sr.resource, "singularName": sr.singular, "namespaced": sr.namespaced,
                  "kind": sr.kind, "verbs": list(sr.verbs)}
    if sr.short_names:
        main["shortNames"] = list(sr.short_names)
    if sr.categories:
        main["categories"] = list(sr.categories)
    out = [main]
    for sub in sr.subresources:
        entry: JSON = {"name": f"{sr.resource}/{sub}", "singularName": "", "namespaced": sr.namespaced,
                       "kind": sr.kind, "verbs": SUBRESOURCE_VERBS.get(sub, ["get"])}
        if sub == "scale":
            entry.update(kind="Scale", group="autoscaling", version="v1")
        out.append(entry)
    return out


def resource_list(registry: Registry, group: str, version: str) -> JSON | None:
    served = sorted((r for r in registry.all() if r.group == group and r.version == version),
                    key=lambda r: r.resource)
    if not served:
        return None
    group_version = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": [e for r in served for e in _entries(r)]}
