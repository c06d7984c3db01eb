from __future__ import annotations

import os
import signal
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pytest_mock import MockerFixture

from rook_py.framework import provider as provider_mod
from rook_py.framework.httpserver import parse_bind_address
from rook_py.framework.kube.times import format_micro_time
from rook_py.framework.leaderelection import LeaderElectionLost
from rook_py.framework.manager import GracefulShutdownTimeout, Manager, ManagerOptions
from rook_py.framework.provider import OperatorSettings, Provider, load_providers
from tests.support.waiting import eventually
from tests.unit.controller.fakes import FakeCache, FakeObjectClient

LOCAL = "127.0.0.1:0"


def options(**kw: Any) -> ManagerOptions:
    base: dict[str, Any] = {"metrics_bind_address": LOCAL, "health_probe_bind_address": LOCAL,
                            "graceful_shutdown_timeout": 5.0}
    base.update(kw)
    return ManagerOptions(**base)


def le_options(**kw: Any) -> ManagerOptions:
    base: dict[str, Any] = {"lease_duration": 1.0, "renew_deadline": 0.5, "retry_period": 0.05}
    base.update(kw)
    return options(leader_election=True, leader_election_id="op-lock", leader_election_namespace="ns", **base)


class Recorder:
    """A runnable that records its life; optionally takes time to finish after stop."""

    def __init__(self, leader: bool = True, linger: float = 0.0, fail: BaseException | None = None) -> None:
        self.leader, self.linger, self.fail = leader, linger, fail
        self.running = threading.Event()
        self.finished = threading.Event()

    def need_leader_election(self) -> bool:
        return self.leader

    def start(self, stop: threading.Event) -> None:
        self.running.set()
        if self.fail is not None:
            raise self.fail
        stop.wait()
        time.sleep(self.linger)
        self.finished.set()


class Running:
    def __init__(self, mgr: Manager) -> None:
        self.mgr = mgr
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        assert mgr.serving.wait(5)

    def _run(self) -> None:
        try:
            self.mgr.start(self.stop)
        except BaseException as err:
            self.error = err

    def shutdown(self) -> BaseException | None:
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()
        return self.error


def get(addr: tuple[str, int] | None, path: str) -> tuple[int, str]:
    assert addr is not None
    try:
        with urllib.request.urlopen(f"http://{addr[0]}:{addr[1]}{path}", timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_servers_health_ready_and_metrics() -> None:
    cache = FakeCache()
    cache.synced = False
    mgr = Manager(FakeObjectClient(), options(), cache=cache)
    mgr.add_health_check("db", lambda: True)
    r = Running(mgr)
    try:
        assert get(mgr.health_address, "/healthz") == (200, "ok")
        code, body = get(mgr.health_address, "/readyz")
        assert code == 500 and "[-]informers failed: informers not synced" in body
        cache.synced = True
        assert get(mgr.health_address, "/readyz") == (200, "ok")
        code, body = get(mgr.health_address, "/readyz?verbose")
        assert code == 200 and "[+]informers ok" in body
        mgr.add_ready_check("storage", lambda: (_ for _ in ()).throw(RuntimeError("master unreachable")))
        code, body = get(mgr.health_address, "/readyz")
        assert code == 500 and "[-]storage failed: master unreachable" in body
        assert get(mgr.health_address, "/readyz?exclude=storage")[0] == 200
        assert get(mgr.health_address, "/healthz/db") == (200, "ok")
        assert get(mgr.health_address, "/healthz/nope")[0] == 404
        code, body = get(mgr.metrics_address, "/metrics")
        assert code == 200 and "controller_runtime_reconcile_total" in body
        assert get(mgr.metrics_address, "/other")[0] == 404
        with pytest.raises(ValueError):
            mgr.add_health_check("db", lambda: True)
    finally:
        assert r.shutdown() is None


def test_disabled_servers_and_bind_address_parsing() -> None:
    assert parse_bind_address("0") is None
    assert parse_bind_address(":8080") == ("", 8080)
    assert parse_bind_address("[::1]:9") == ("::1", 9)
    for bad in ("8080", "host:x", ":70000"):
        with pytest.raises(ValueError):
            parse_bind_address(bad)
    mgr = Manager(FakeObjectClient(), options(metrics_bind_address="0", health_probe_bind_address="0"),
                  cache=FakeCache())
    r = Running(mgr)
    assert mgr.metrics_address is None and mgr.health_address is None
    assert r.shutdown() is None


def test_runnables_start_and_drain_without_leader_election() -> None:
    cache = FakeCache()
    mgr = Manager(FakeObjectClient(), options(), cache=cache)
    leader, always = Recorder(leader=True, linger=0.05), Recorder(leader=False)
    mgr.add(leader)
    mgr.add(always)
    r = Running(mgr)
    assert leader.running.wait(5) and always.running.wait(5)
    assert cache.started.is_set() and mgr.is_leader()
    late = Recorder()
    mgr.add(late)  # added after start: starts at once, and the factory starts its informers
    assert late.running.wait(5) and cache.start_calls == 2
    assert r.shutdown() is None
    assert leader.finished.is_set() and always.finished.is_set() and late.finished.is_set()


def test_runnable_failure_stops_the_manager_and_is_raised() -> None:
    mgr = Manager(FakeObjectClient(), options(), cache=FakeCache())
    other = Recorder()
    mgr.add(other)
    mgr.add(Recorder(fail=RuntimeError("cache sync timed out")))
    stop = threading.Event()
    with pytest.raises(RuntimeError, match="cache sync timed out"):
        mgr.start(stop)
    assert other.finished.is_set()


def test_graceful_shutdown_timeout_is_an_error_and_keeps_the_lease() -> None:
    client = FakeObjectClient()
    mgr = Manager(client, le_options(graceful_shutdown_timeout=0.1), cache=FakeCache())
    mgr.add(Recorder(linger=1.0))
    r = Running(mgr)
    assert mgr.elected.wait(5)
    err = r.shutdown()
    assert isinstance(err, GracefulShutdownTimeout)
    # Work may still be writing: the lease is left to expire rather than handed over.
    assert client.lease("ns", "op-lock")["spec"]["holderIdentity"] == mgr.identity  # type: ignore[index]


def test_leader_election_handover_between_two_managers() -> None:
    client = FakeObjectClient()
    a_work, b_work = Recorder(), Recorder()
    a_cache, b_cache = FakeCache(), FakeCache()
    # A 60 s lease: b can only get it within this test if a releases it on shutdown.
    a = Manager(client, le_options(identity="a", lease_duration=60.0), cache=a_cache)
    b = Manager(client, le_options(identity="b", lease_duration=60.0), cache=b_cache)
    a.add(a_work)
    b.add(b_work)
    ra = Running(a)
    assert a.elected.wait(5) and a_work.running.wait(5)
    rb = Running(b)
    time.sleep(0.3)
    assert b_cache.started.is_set()  # caches run before the election: the standby is warm
    assert not b_work.running.is_set() and not b.is_leader()
    assert ra.shutdown() is None
    assert client.lease("ns", "op-lock")["spec"]["holderIdentity"] in ("", "b")  # type: ignore[index]
    # Released, so b takes over at its next retry instead of after the lease duration.
    assert b.elected.wait(5) and b_work.running.wait(5)
    assert rb.shutdown() is None


def test_lost_lease_stops_work_and_raises() -> None:
    client = FakeObjectClient()
    work = Recorder()
    mgr = Manager(client, le_options(identity="a"), cache=FakeCache())
    mgr.add(work)
    r = Running(mgr)
    assert work.running.wait(5)
    lease = client.lease("ns", "op-lock")
    assert lease is not None
    lease["spec"]["holderIdentity"] = "usurper"
    lease["spec"]["renewTime"] = format_micro_time(datetime.now(UTC) + timedelta(seconds=5))
    client.update(lease)
    r.thread.join(10)
    assert isinstance(r.error, LeaderElectionLost)
    assert work.finished.is_set()


def test_sigterm_triggers_graceful_shutdown() -> None:
    mgr = Manager(FakeObjectClient(), options(), cache=FakeCache())
    work = Recorder(linger=0.05)
    mgr.add(work)
    previous = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=lambda: (work.running.wait(5), os.kill(os.getpid(), signal.SIGTERM)),
                     daemon=True).start()
    mgr.start()  # on the main thread: installs the handlers
    assert work.finished.is_set()
    assert signal.getsignal(signal.SIGTERM) is previous


def test_option_validation() -> None:
    with pytest.raises(ValueError, match="leader_election_id"):
        Manager(FakeObjectClient(), ManagerOptions(leader_election=True), cache=FakeCache())
    with pytest.raises(ValueError, match="renew_deadline"):
        Manager(FakeObjectClient(), ManagerOptions(leader_election=True, leader_election_id="x",
                                                   lease_duration=5, renew_deadline=5), cache=FakeCache())
    mgr = Manager(FakeObjectClient(), options(), cache=FakeCache())
    with pytest.raises(TypeError):
        mgr.add(object())


def test_event_recorder_writes_through_the_manager() -> None:
    client = FakeObjectClient()
    mgr = Manager(client, options(), cache=FakeCache())
    rec = mgr.event_recorder("op")
    r = Running(mgr)
    rec.event({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u"}},
              "Normal", "Started", "hello")
    eventually(lambda: any(c[0] == "create" and c[1] == "Event" for c in client.calls), 5, interval=0.01,
               what="the Event to be created")
    assert r.shutdown() is None


# -- provider contract ----------------------------------------------------------------------------


class DemoProvider(Provider):
    name = "demo"

    def crds(self) -> list[dict[str, Any]]:
        return [{"kind": "CustomResourceDefinition", "metadata": {"name": "demos.example.io"}}]

    def setup(self, manager: Manager, settings: OperatorSettings) -> None:
        manager.add(Recorder())


class FakeEntryPoint:
    def __init__(self, name: str, target: Any) -> None:
        self.name, self.target = name, target

    def load(self) -> Any:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def test_load_providers_instantiates_and_skips_broken(mocker: MockerFixture) -> None:
    mocker.patch.object(provider_mod, "entry_points", return_value=[
        FakeEntryPoint("demo", DemoProvider),
        FakeEntryPoint("broken", ImportError("no module named x")),
        FakeEntryPoint("wrong", object),
    ])
    providers = load_providers()
    assert list(providers) == ["demo"] and isinstance(providers["demo"], DemoProvider)


def test_load_providers_rejects_duplicate_names(mocker: MockerFixture) -> None:
    mocker.patch.object(provider_mod, "entry_points", return_value=[
        FakeEntryPoint("demo", DemoProvider), FakeEntryPoint("demo2", DemoProvider())])
    with pytest.raises(ValueError, match="demo"):
        load_providers()


def test_abstract_provider_cannot_be_instantiated() -> None:
    with pytest.raises(TypeError):
        Provider()  # type: ignore[abstract]


def test_operator_settings_map_to_manager_options() -> None:
    s = OperatorSettings(provider="demo", namespace="rook-system", watch_namespace="team-a",
                         metrics_bind_address="0", pod_name="pod-1")
    o = s.manager_options()
    assert o.namespace == "team-a" and o.leader_election
    assert o.leader_election_id == "rook-demo-operator-lock" and o.leader_election_namespace == "rook-system"
    assert o.metrics_bind_address == "0" and o.identity == "pod-1"
    assert (o.lease_duration, o.renew_deadline, o.retry_period) == (15.0, 10.0, 2.0)


def test_the_startup_heap_is_frozen_once_per_process(mocker: MockerFixture) -> None:
    import rook_py.framework.manager as manager_module

    freeze = mocker.patch.object(manager_module.gc, "freeze")
    mocker.patch.object(manager_module, "_heap_frozen", threading.Event())
    manager_module._freeze_startup_heap()
    manager_module._freeze_startup_heap()
    assert freeze.call_count == 1


def test_the_webhook_server_runs_on_a_standby_replica_too() -> None:
    import datetime as dt
    import json
    import ssl

    from rook_py.framework.webhook import StaticCert, WebhookServer, make_ca, make_serving_cert
    from rook_py.framework.webhook.admission import review

    client = FakeObjectClient()
    leader = Manager(client, le_options(identity="a", lease_duration=60.0), cache=FakeCache())
    ra = Running(leader)
    assert leader.elected.wait(5)
    ca = make_ca("ca", dt.timedelta(days=1))
    server = WebhookServer(StaticCert(make_serving_cert(ca, ["127.0.0.1"], dt.timedelta(days=1))), LOCAL)
    server.register_admission("/validate", lambda req: review(req.uid, allowed=True))
    standby = Manager(client, le_options(identity="b", lease_duration=60.0), cache=FakeCache())
    standby.set_webhook_server(server)
    rb = Running(standby)
    try:
        assert standby.serving.wait(5) and not standby.is_leader()
        _, port = standby.health_address  # type: ignore[misc]
        def ready() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz?verbose") as r:
                return str(r.read().decode())

        text = eventually(ready, 5, interval=0.05, ignore=(urllib.error.HTTPError,), what="/readyz")
        assert "[+]webhook ok" in text
        body = json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                           "request": {"uid": "u"}}).encode()
        request = urllib.request.Request(f"https://127.0.0.1:{server.address[1]}/validate", data=body,
                                         headers={"Content-Type": "application/json"})
        context = ssl.create_default_context(cadata=ca.cert_pem.decode())
        with urllib.request.urlopen(request, context=context) as r:
            assert json.loads(r.read())["response"] == {"uid": "u", "allowed": True}
    finally:
        assert rb.shutdown() is None
        assert ra.shutdown() is None
