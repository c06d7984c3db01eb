"""The ChubaoMonitor controller's unit-test cluster: the shared FakeAPI plus a tiny kubelet."""

from __future__ import annotations

import copy
import uuid

from tests.support.fake_api import WRITE_VERBS, FakeAPI, FakeReader

__all__ = ["WRITE_VERBS", "FakeCluster", "FakeReader"]


class FakeCluster(FakeAPI):
    """``FakeAPI`` (tests/support/fake_api.py) with workloads that can be made ready."""

    # --- a tiny kubelet/controller-manager ---
    def make_workloads_ready(self) -> None:
        """Every Deployment/StatefulSet reports its latest generation fully rolled out and ready,
        and every StatefulSet's claims exist as PVCs."""
        for (kind, ns, name), obj in list(self.store.items()):
            if kind not in ("StatefulSet", "Deployment"):
                continue
            replicas = obj["spec"].get("replicas", 1)
            obj["status"] = {"observedGeneration": obj["metadata"]["generation"],
                             "replicas": replicas, "readyReplicas": replicas,
                             "updatedReplicas": replicas, "availableReplicas": replicas}
            for tpl in obj["spec"].get("volumeClaimTemplates") or []:
                for i in range(replicas):
                    pvc_name = f"{tpl['metadata']['name']}-{name}-{i}"
                    if (("PersistentVolumeClaim", ns, pvc_name)) not in self.store:
                        self.store[("PersistentVolumeClaim", ns, pvc_name)] = {
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": pvc_name, "namespace": ns,
                                         "labels": dict(tpl["metadata"].get("labels") or {}),
                                         "resourceVersion": self._next_rv(), "uid": str(uuid.uuid4())},
                            "spec": copy.deepcopy(tpl["spec"])}
