"""PersistentVolumeClaim binding, as the PV controller with a dynamic provisioner would do it.

Every Pending claim without a volume gets a PersistentVolume ``pvc-<claim uid>`` sized to its
request, then both are marked Bound (pkg/controller/volume/persistentvolume/pv_controller.go:
the volume is provisioned and bound first, then the claim's spec.volumeName and status). A grown
request on a bound claim is expanded (volume capacity, then the claim's status). When a
claim disappears its volume is deleted (reclaim policy Delete, the dynamic-provisioning default)
or marked Released (Retain).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from rook_py.envtest.cluster.base import JSON, Controller, Key, is_deleting, meta, read_only_items
from rook_py.framework.client import errors
from rook_py.framework.kube.quantity import parse_quantity

V1 = "v1"


class VolumeBinderController(Controller):
    name = "volumes"

    def on_event(self, event_type: str, api_version: str, resource: str, obj: JSON) -> Iterable[Key]:
        if api_version != V1:
            return ()
        if resource == "persistentvolumeclaims":
            if event_type == "DELETED":
                volume = (obj.get("spec") or {}).get("volumeName")
                return [(V1, "persistentvolumes", "", volume)] if volume else ()
            return [(V1, resource, meta(obj).get("namespace") or "", meta(obj).get("name") or "")]
        if resource == "persistentvolumes" and event_type != "DELETED":
            return [(V1, resource, "", meta(obj).get("name") or "")]
        return ()

    def resync(self) -> Iterable[Key]:
        keys: list[Key] = []
        for resource in ("persistentvolumeclaims", "persistentvolumes"):
            for item in read_only_items(self.api, V1, resource):
                keys.append((V1, resource, meta(item).get("namespace") or "", meta(item).get("name") or ""))
        return keys

    def reconcile(self, key: Key) -> float | None:
        if key[1] == "persistentvolumes":
            self._reclaim(key[3])
            return None
        try:
            claim = self.api.get(V1, "persistentvolumeclaims", key[3], key[2])
        except errors.NotFound:
            return None
        if is_deleting(claim):
            return None
        if (claim.get("status") or {}).get("phase") == "Bound":
            self._expand(claim)
            return None
        volume = self._ensure_volume(claim)
        spec = claim.get("spec") or {}
        if spec.get("volumeName") != meta(volume)["name"]:
            claim = self.api.patch(V1, "persistentvolumeclaims", key[3], {
                "metadata": {"resourceVersion": meta(claim).get("resourceVersion"),
                             "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                                             "pv.kubernetes.io/bound-by-controller": "yes"}},
                "spec": {"volumeName": meta(volume)["name"]}}, namespace=key[2])
        status = {"phase": "Bound", "accessModes": (volume.get("spec") or {}).get("accessModes") or [],
                  "capacity": (volume.get("spec") or {}).get("capacity") or {}}
        fresh = dict(claim)
        fresh["status"] = status
        self.api.update(V1, "persistentvolumeclaims", fresh, subresource="status")
        return None

    def _expand(self, claim: JSON) -> None:
        """A grown storage request on a bound claim: the volume is resized and the claim reports
        the new capacity, as the external resizer and kubelet do for an expandable storage class
        (the emulator only lets the request grow, as the API server does)."""
        requested = ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage")
        status = claim.get("status") or {}
        current = (status.get("capacity") or {}).get("storage")
        if not requested or not current or parse_quantity(requested) <= parse_quantity(current):
            return
        volume_name = (claim.get("spec") or {}).get("volumeName")
        if volume_name:
            with contextlib.suppress(errors.NotFound):
                self.api.patch(V1, "persistentvolumes", volume_name, {"spec": {"capacity": {"storage": requested}}})
        fresh = dict(claim)
        fresh["status"] = dict(status, capacity=dict(status.get("capacity") or {}, storage=requested))
        self.api.update(V1, "persistentvolumeclaims", fresh, subresource="status")

    def _ensure_volume(self, claim: JSON) -> JSON:
        name = (claim.get("spec") or {}).get("volumeName") or f"pvc-{meta(claim)['uid']}"
        try:
            volume = self.api.get(V1, "persistentvolumes", name)
        except errors.NotFound:
            spec = claim.get("spec") or {}
            storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")
            volume = self.api.create(V1, "persistentvolumes", {
                "apiVersion": "v1", "kind": "PersistentVolume",
                "metadata": {"name": name,
                             "annotations": {"pv.kubernetes.io/provisioned-by": "envtest.rook-py.io/fake"}},
                "spec": {
                    "capacity": {"storage": storage},
                    "accessModes": spec.get("accessModes") or ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete",
                    "storageClassName": spec.get("storageClassName") or "standard",
                    "volumeMode": spec.get("volumeMode") or "Filesystem",
                    "hostPath": {"path": f"/var/lib/envtest/volumes/{name}", "type": "DirectoryOrCreate"},
                    "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                                 "namespace": meta(claim).get("namespace"), "name": meta(claim)["name"],
                                 "uid": meta(claim).get("uid"),
                                 "resourceVersion": meta(claim).get("resourceVersion")},
                },
            })
        if (volume.get("status") or {}).get("phase") != "Bound":
            fresh = dict(volume)
            fresh["status"] = {"phase": "Bound"}
            volume = self.api.update(V1, "persistentvolumes", fresh, subresource="status")
        return volume

    def _reclaim(self, name: str) -> None:
        try:
            volume = self.api.get(V1, "persistentvolumes", name)
        except errors.NotFound:
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or is_deleting(volume):
            return
        try:
            claim = self.api.get(V1, "persistentvolumeclaims", ref.get("name", ""), ref.get("namespace"))
            if meta(claim).get("uid") == ref.get("uid"):
                return  # still claimed
        except errors.NotFound:
            pass
        if (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete":
            with contextlib.suppress(errors.NotFound, errors.Conflict):
                self.api.delete(V1, "persistentvolumes", name, preconditions={"uid": meta(volume).get("uid")})
        elif (volume.get("status") or {}).get("phase") != "Released":
            fresh = dict(volume)
            fresh["status"] = {"phase": "Released"}
            self.api.update(V1, "persistentvolumes", fresh, subresource="status")
