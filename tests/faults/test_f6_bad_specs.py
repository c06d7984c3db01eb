"""F6: hypothesis-generated ChubaoMonitor specs, valid and invalid (issue 6).

One operator (the production provider wiring in a Manager) serves two monitors: ``target``, whose
spec each example replaces, and ``bystander``, which must keep being served. Each generated spec is
built from parts that are each valid, invalid, or outside the CRD's schema *by construction* (the
oracle is this file, not the operator's validator). Per example:

* a spec with a part outside the schema (a bound, a pattern, a required field, a CEL rule) is
  rejected at admission with 422, leaving everything as it was; otherwise the operator settles the new
  generation: Ready when every part is valid, InvalidSpec otherwise;
* nothing is deleted that the spec did not ask to delete: an invalid spec deletes nothing; a valid
  one deletes only the objects of components it disables; no PVC is ever deleted;
* the operator never crashes (the manager keeps running, no reconcile fails with a programming
  error) and still serves the bystander (a spec change there is reconciled to Ready).

``ROOK_FAULT_ITERATIONS=full`` runs many more examples, with fresh randomness each run; otherwise
a few, derandomized so that ``make test`` is reproducible.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.crd import chubao_monitor_crd
from rook_py.chubaofs.monitor import common
from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.envtest.environment import Environment
from rook_py.framework import Manager, metrics
from rook_py.framework.client.errors import Invalid
from rook_py.framework.provider import OperatorSettings
from tests.faults import chubao_support as cs
from tests.faults.chubao_operator import NoReload
from tests.faults.support import FULL, ManagerThread, eventually, iterations, manager_options, report

pytestmark = pytest.mark.emulator_only(
    reason="a ChubaoMonitor is Ready only when kubelets run its pods (controller-manager and kubelet)")

JSON = dict[str, Any]
EXAMPLES = iterations(6, 60)
SETTLE = 30.0
BASE: JSON = {"cluster": {"name": "cfs"}, "consul": {"replicas": 1}}
VALID, INVALID, REJECTED = "valid", "invalid", "rejected"   # REJECTED: outside the CRD's schema
# (spec fragment, verdict, what it asks to delete): a component name ("grafana": all of its objects)
# or "Kind/component" (that component's objects of one kind, e.g. a Deployment replaced by a
# StatefulSet when persistent storage is asked for).
Part = tuple[JSON, str, frozenset[str]]


def _part(fragment: JSON, valid: bool | str, disables: frozenset[str] = frozenset()) -> Part:
    verdict = valid if isinstance(valid, str) else (VALID if valid else INVALID)
    return fragment, verdict, disables


CONSUL: list[Part] = [
    _part({"consul": {"replicas": 1}}, True),
    # No 3: going back to the base's single server would drop below the quorum of 3 in one
    # step, which the CRD's transition rule refuses.
    _part({"consul": {"replicas": 2}}, REJECTED),                   # even server count (CEL rule)
    _part({"consul": {"replicas": 4}}, REJECTED),
    _part({"consul": {"enabled": False}}, REJECTED),                # no Consul and no external one
    _part({"consul": {"enabled": False, "externalAddress": "consul.example.com:8500"}}, True,
          frozenset({t.CONSUL})),
    _part({"consul": {"replicas": 1, "storage": {"size": "0"}}}, False),
    _part({"consul": {"replicas": 1, "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}},
          False),                                                   # request above limit
    _part({"consul": {"replicas": 7}}, REJECTED),                   # maximum 5
]
PROMETHEUS: list[Part] = [
    _part({}, True),
    _part({"prometheus": {"retention": "30d", "scrapeInterval": "15s"}}, True),
    _part({"prometheus": {"scrapeInterval": "0s"}}, False),
    _part({"prometheus": {"externalLabels": {"region": "eu"}}}, True),
    _part({"prometheus": {"replicas": 2, "externalLabels": {"replica": "a"}}}, REJECTED),  # CEL rule
    _part({"prometheus": {"storage": {"size": "0Gi"}}}, False),
    _part({"prometheus": {"retention": "two weeks"}}, REJECTED),    # duration pattern
    _part({"prometheus": {"storage": {"storageClassName": "fast"}}}, REJECTED),  # size is required
]
ALERTMANAGER: list[Part] = [
    _part({}, True),
    _part({"alertmanager": {"enabled": False}}, True, frozenset({t.ALERTMANAGER})),
    _part({"alertmanager": {"configSecret": "no-such-secret"}}, False),
    _part({"alertmanager": {"replicas": 3}}, True),
    _part({"alertmanager": {"replicas": 0}}, REJECTED),             # minimum 1
]
GRAFANA: list[Part] = [
    _part({}, True),
    _part({"grafana": {"enabled": False}}, True, frozenset({t.GRAFANA})),
    _part({"grafana": {"adminSecret": "missing-admin"}}, False),
    _part({"grafana": {"storage": {"size": "2Gi"}}}, True, frozenset({f"Deployment/{t.GRAFANA}"})),
    _part({"grafana": {"ingress": {"className": "nginx"}}}, REJECTED),  # ingress.host is required
]
RULES: list[Part] = [
    _part({}, True),
    _part({"rules": {"thresholds": {"capacityWarningPercent": 70, "capacityCriticalPercent": 85}}}, True),
    _part({"rules": {"thresholds": {"capacityWarningPercent": 95, "capacityCriticalPercent": 90}}},
          REJECTED),                                                # CEL rule
    _part({"rules": {"extraRules": [{"rules": []}]}}, False),       # a group without a name
    _part({"rules": {"thresholds": {"predictFullDays": 0}}}, REJECTED),  # minimum 1
]


@st.composite
def specs(draw: st.DrawFn) -> tuple[JSON, str, frozenset[str]]:
    """A spec, its expected outcome (Ready, InvalidSpec or rejected at admission), and what it asks
    to delete."""
    spec: JSON = {"cluster": {"name": draw(st.sampled_from(["cfs", "cfs-2"]))}}
    verdicts, disables = set[str](), frozenset[str]()
    # Half the examples use valid parts only, and few hold a part outside the schema; otherwise most
    # would hold some bad part and stop at admission.
    allowed = draw(st.sampled_from([{VALID}, {VALID}, {VALID, INVALID}, {VALID, INVALID},
                                    {VALID, INVALID, REJECTED}]))
    for parts in (CONSUL, PROMETHEUS, ALERTMANAGER, GRAFANA, RULES):
        fragment, verdict, off = draw(st.sampled_from([p for p in parts if p[1] in allowed]))
        spec.update(fragment)
        verdicts.add(verdict)
        disables |= off
    outcome = ("rejected at admission" if REJECTED in verdicts else
               "InvalidSpec" if INVALID in verdicts else "Ready")
    return spec, outcome, disables


@pytest.fixture
def operator() -> Iterator[tuple[Environment, ManagerThread]]:
    with Environment(backend="emulator", crds=[chubao_monitor_crd()]) as env:
        assert env.server is not None
        env.server.local.create("v1", "namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": cs.NS}})
        client = env.client(user_agent="faults-f6")
        manager = Manager(client, manager_options())
        ChubaoFSProvider(reloader=NoReload()).setup(manager, OperatorSettings(
            provider="chubaofs", metrics_bind_address="0", max_concurrent_reconciles=2,
            provider_settings=ChubaoFSSettings(reload_settle=0.0)))
        with ManagerThread(manager) as run:
            yield env, run


def _panics() -> float:
    return metrics.REGISTRY.get_sample_value("controller_runtime_reconcile_panics_total",
                                             {"controller": "chubaomonitor"}) or 0.0


# The operator's own threads (jittered backoff) use the random module while hypothesis draws; its
# check cannot tell their calls from the strategy's.
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
def test_generated_specs_never_break_the_operator(operator: tuple[Environment, ManagerThread]) -> None:
    env, run = operator
    assert env.server is not None
    local = env.server.local
    for name in ("target", "bystander"):
        local.create(t.API_VERSION, t.PLURAL, cs.monitor(name, dict(BASE)), namespace=cs.NS)
    for name in ("target", "bystander"):
        assert cs.wait_settled(local, name, SETTLE) == "Ready"
    panics = _panics()
    outcomes: dict[str, int] = {"Ready": 0, "InvalidSpec": 0, "rejected at admission": 0}
    lock = threading.Lock()
    bump = [0]

    def owned(name: str) -> dict[tuple[str, str], tuple[str, str | None]]:
        """(kind, name) -> (uid, component) of the live objects; ones already being deleted (a
        deletionTimestamp, e.g. waiting for their pods to go) are not live."""
        return {(o["kind"], o["metadata"]["name"]): (o["metadata"]["uid"],
                                                   (o["metadata"].get("labels") or {}).get(common.LABEL_COMPONENT))
                for o in cs.owned_objects(local, name) if not o["metadata"].get("deletionTimestamp")}

    base_keys = {k for k in owned("target") if k[0] != "PersistentVolumeClaim"}

    def at_base() -> bool:
        return {k for k in owned("target") if k[0] != "PersistentVolumeClaim"} == base_keys

    def replace_spec(name: str, spec: JSON) -> None:
        obj = local.get(t.API_VERSION, t.PLURAL, name, namespace=cs.NS)
        obj["spec"] = spec
        local.update(t.API_VERSION, t.PLURAL, obj)

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=not FULL, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(specs())
    def check(example: tuple[JSON, str, frozenset[str]]) -> None:
        spec, expected, disables = example
        before = owned("target")
        pvcs = cs.pvc_uids(local)
        generation = local.get(t.API_VERSION, t.PLURAL, "target", namespace=cs.NS)["metadata"]["generation"]
        try:
            replace_spec("target", spec)
        except Invalid:
            outcome = "rejected at admission"
            assert local.get(t.API_VERSION, t.PLURAL, "target",
                             namespace=cs.NS)["metadata"]["generation"] == generation
        else:
            outcome = cs.wait_settled(local, "target", SETTLE, alive=lambda: run.alive)
        assert outcome == expected, (spec, cs.status(local, "target"))
        with lock:
            outcomes[outcome] += 1

        after = owned("target")
        gone = {key: comp for key, (uid, comp) in before.items() if after.get(key, ("",))[0] != uid}
        allowed = disables if outcome == "Ready" else frozenset()
        assert all((comp in allowed or f"{key[0]}/{comp}" in allowed) and key[0] != "PersistentVolumeClaim"
                   for key, comp in gone.items()), (spec, outcome, sorted(gone))
        lost = {n: u for n, u in pvcs.items() if cs.pvc_uids(local).get(n) != u}
        assert not lost, f"PVCs deleted or replaced: {sorted(lost)}"

        # The operator still serves other objects.
        bump[0] += 1
        replace_spec("bystander", dict(BASE, prometheus={"scrapeInterval": f"{30 + bump[0] % 2}s"}))
        assert cs.wait_settled(local, "bystander", SETTLE, alive=lambda: run.alive) == "Ready"
        assert run.alive, run.errors

        # Back to the base spec for the next example, and to exactly the base set of objects
        # (a replaced workload of another kind may still be on its way out when Ready is reported).
        replace_spec("target", dict(BASE))
        assert cs.wait_settled(local, "target", SETTLE, alive=lambda: run.alive) == "Ready"
        eventually(at_base, SETTLE, "the objects of the base spec, and no others")

    check()
    report("F6", examples=EXAMPLES, outcomes=outcomes)
    assert run.alive, run.errors
    assert _panics() == panics, "a reconcile failed with a programming error"
    assert all(outcomes.values()), f"an outcome never came up: {outcomes}"
