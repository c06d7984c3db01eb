"""ChubaoMonitor helpers for F4 and F6: installs, readiness, and a comparable snapshot of what the
operator created (names, specs, owner references, PVCs)."""

from __future__ import annotations

import json
from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.monitor.controller import MANAGED_KINDS
from rook_py.framework.client.errors import NotFound
from tests.support import waiting

JSON = dict[str, Any]
NS = "monitoring"
SNAPSHOT_KINDS: tuple[tuple[str, str], ...] = (*MANAGED_KINDS, ("v1", "PersistentVolumeClaim"))
# Values the operator generates at random once (and must then keep): compared by key only.


def monitor(name: str = "mon", spec: JSON | None = None) -> JSON:
    return {"apiVersion": t.API_VERSION, "kind": t.KIND, "metadata": {"name": name, "namespace": NS},
            "spec": spec if spec is not None else {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}}}


def status(local: Any, name: str = "mon") -> JSON:
    try:
        obj = local.get(t.API_VERSION, t.PLURAL, name, namespace=NS)
    except NotFound:
        return {}
    st: JSON = dict(obj.get("status") or {})
    st["_generation"] = obj["metadata"].get("generation")
    return st


def condition(st: JSON, type_: str) -> JSON:
    for cond in st.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return {}


def settled(st: JSON) -> str | None:
    """"Ready" or "InvalidSpec" once the operator finished with the current generation, else None.

    Ready needs ``status.observedGeneration`` at the generation. A rejected spec is processed too:
    the operator records its generation in ``status.observedGeneration`` and on the InvalidSpec
    condition (metav1.Condition.observedGeneration), and changes nothing it owns.
    """
    generation = st.get("_generation")
    invalid = condition(st, t.COND_INVALID_SPEC)
    if invalid.get("status") == "True" and generation in (invalid.get("observedGeneration"),
                                                          st.get("observedGeneration")):
        return "InvalidSpec"
    if (st.get("observedGeneration") == generation and st.get("phase") == t.PHASE_READY
            and condition(st, t.COND_READY).get("status") == "True"):
        return "Ready"
    return None


def wait_settled(local: Any, name: str, timeout: float, alive: Any = None) -> str:
    last: dict[str, Any] = {}

    def outcome() -> str | None:
        if alive is not None and not alive():
            raise AssertionError(f"the operator died while {name} was being reconciled")
        last["status"] = status(local, name)
        return settled(last["status"])

    try:
        return waiting.eventually(outcome, timeout, interval=0.05, what=f"{name} to settle")
    except AssertionError as exc:
        if "timed out" not in str(exc):
            raise
        raise AssertionError(f"{name} did not settle within {timeout}s; status: {last.get('status')}") from None


def owned_objects(local: Any, name: str = "mon") -> list[JSON]:
    selector = f"{common.LABEL_INSTANCE}={name}"
    out: list[JSON] = []
    for api_version, kind in SNAPSHOT_KINDS:
        plural = kind.lower() + ("es" if kind.endswith("s") else "s")
        if kind == "PodDisruptionBudget":
            plural = "poddisruptionbudgets"
        elif kind == "Ingress":
            plural = "ingresses"
        elif kind == "PersistentVolumeClaim":
            plural = "persistentvolumeclaims"
        for obj in local.list(api_version, plural, namespace=NS, label_selector=selector)["items"]:
            out.append(dict(obj, kind=kind))
    return out


def snapshot(local: Any, name: str = "mon") -> dict[tuple[str, str], JSON]:
    """(kind, name) -> the parts that must not depend on how the install went: spec, data (by key
    for Secrets; generated passwords differ per install), labels, annotations, owner references.

    The monitor's uid (it differs per install) is replaced by ``<uid>`` wherever it appears.
    """
    uid = local.get(t.API_VERSION, t.PLURAL, name, namespace=NS)["metadata"]["uid"]
    snap: dict[tuple[str, str], JSON] = {}
    for obj in json.loads(json.dumps(owned_objects(local, name)).replace(uid, "<uid>")):
        md = obj["metadata"]
        kind = obj["kind"]
        entry: JSON = {
            "labels": md.get("labels") or {},
            "annotations": md.get("annotations") or {},
            "owners": sorted((o["apiVersion"], o["kind"], o["name"], bool(o.get("controller")))
                             for o in md.get("ownerReferences") or []),
        }
        if kind == "Secret":
            entry["data"] = sorted(obj.get("data") or {})
        elif kind == "ConfigMap":
            entry["data"] = obj.get("data") or {}
        if kind == "PersistentVolumeClaim":
            entry["spec"] = {k: v for k, v in (obj.get("spec") or {}).items() if k != "volumeName"}
        elif "spec" in obj:
            entry["spec"] = obj["spec"]
        snap[(kind, md["name"])] = entry
    return snap


def diff(expected: dict[tuple[str, str], JSON], actual: dict[tuple[str, str], JSON]) -> list[str]:
    problems = [f"missing {k}" for k in sorted(set(expected) - set(actual))]
    problems += [f"unexpected {k}" for k in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        for part in sorted(set(expected[key]) | set(actual[key])):
            if expected[key].get(part) != actual[key].get(part):
                problems.append(f"{key} {part}: {expected[key].get(part)!r} != {actual[key].get(part)!r}")
    return problems


def pvc_uids(local: Any) -> dict[str, str]:
    return {p["metadata"]["name"]: p["metadata"]["uid"]
            for p in local.list("v1", "persistentvolumeclaims", namespace=NS)["items"]}
