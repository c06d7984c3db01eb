"""The provider wiring: CRDs, controller registration, the pre_start hook."""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.provider import ChubaoFSProvider, operator_targets
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework.controller import Controller
from rook_py.framework.provider import OperatorSettings, Provider


def test_provider_identity_and_crds() -> None:
    provider = ChubaoFSProvider()
    assert isinstance(provider, Provider) and provider.name == "chubaofs"
    (crd,) = provider.crds()
    assert crd["metadata"]["name"] == t.CRD_NAME


def test_setup_registers_the_monitor_controller(mocker: Any) -> None:
    manager = mocker.MagicMock()
    manager.client.resource_for.return_value = mocker.Mock(namespaced=True)
    ChubaoFSProvider().setup(manager, OperatorSettings(provider="chubaofs", namespace="rook"))
    (controller,), _ = manager.add.call_args
    assert isinstance(controller, Controller)
    watched = {(c.args[0], c.args[1]) for c in manager.cache.informer.call_args_list}
    assert watched == {(t.API_VERSION, t.KIND), ("apps/v1", "StatefulSet"), ("apps/v1", "Deployment"),
                       ("policy/v1", "PodDisruptionBudget"), ("networking.k8s.io/v1", "Ingress"),
                       ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret")}
    manager.event_recorder.assert_called_once()


def test_operator_targets() -> None:
    assert operator_targets(OperatorSettings(namespace="rook")) == ("rook-chubaofs-operator.rook.svc:8080",)
    assert operator_targets(OperatorSettings(metrics_bind_address="0")) == ()
    assert operator_targets(OperatorSettings(provider_settings=ChubaoFSSettings(operator_metrics_targets=["a:1"]))) == ("a:1",)


def test_one_field_manager_for_everything_the_operator_applies() -> None:
    from rook_py.chubaofs.monitor.writer import FIELD_MANAGER
    from rook_py.chubaofs.provider import ChubaoFSProvider

    assert ChubaoFSProvider().field_manager == FIELD_MANAGER == "rook-chubaofs"
