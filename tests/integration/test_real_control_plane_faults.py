"""Environment's faults for the real back end: kube-apiserver killed and started again on the same
etcd, port, certificates and token; frozen and thawed; etcd's revision moved and compacted; the
audit log as the server's record of requests. Skipped without KUBEBUILDER_ASSETS."""

from __future__ import annotations

import time

import pytest

from rook_py.envtest.environment import Environment
from rook_py.envtest.realcluster import find_binaries
from rook_py.framework.client import errors

pytestmark = pytest.mark.skipif(find_binaries() is None,
                                reason="needs a real etcd + kube-apiserver: set KUBEBUILDER_ASSETS")

CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "default"},
      "data": {"k": "v"}}


def test_kill_restart_freeze_thaw_compact_and_audit() -> None:
    with Environment(backend="real", audit=True) as env:
        client = env.client(user_agent="cp-faults-probe", timeout=5.0)
        created = client.create(CM)
        old_rv = client.list("v1", "ConfigMap", "default")["metadata"]["resourceVersion"]
        plane = env.control_plane
        url = env.url

        plane.kill_apiserver()
        with pytest.raises(errors.TransportError):
            client.get("v1", "ConfigMap", "kept", "default")
        marker = plane.etcd_put("/envtest/outage", "1")  # someone wrote while it was down
        assert marker > int(old_rv)
        plane.start_apiserver()
        # Same etcd (the object and its uid survive), same address and credentials.
        assert env.url == url
        assert client.get("v1", "ConfigMap", "kept", "default")["metadata"]["uid"] == created["metadata"]["uid"]
        # Its watch cache starts past every resourceVersion clients held: resuming answers 410.
        with pytest.raises(errors.Gone):
            for _ in client.watch("v1", "ConfigMap", "default", resource_version=old_rv, timeout_seconds=5):
                break

        plane.freeze_apiserver()
        try:
            started = time.monotonic()
            with pytest.raises(errors.TransportError), client.deadline(started + 0.5):
                client.get("v1", "ConfigMap", "kept", "default")  # accepted by the kernel, never answered
            assert time.monotonic() - started < 3.0
        finally:
            plane.thaw_apiserver()
        assert client.get("v1", "ConfigMap", "kept", "default")["data"] == {"k": "v"}

        compacted = plane.compact_etcd()
        assert compacted >= marker
        with pytest.raises(errors.Gone):  # a list at a compacted revision is refused by etcd
            client.list("v1", "ConfigMap", "default", resource_version=str(marker - 1), limit=1)

        events = [e for e in plane.audit_events() if e.get("userAgent") == "cp-faults-probe"]
        creates = [e for e in events if e["verb"] == "create" and e["objectRef"]["resource"] == "configmaps"]
        assert len(creates) == 1 and creates[0]["responseStatus"]["code"] == 201
