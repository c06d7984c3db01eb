"""The operator settings ConfigMap over flags and env: precedence, what it may set, bad input, and
what a change does (live or restart), without a server."""

from __future__ import annotations

from collections.abc import Set
from typing import Any

import pytest

from rook_py.chubaofs.provider import ChubaoFSProvider
from rook_py.chubaofs.settings import ChubaoFSSettings
from rook_py.framework import cmdline
from rook_py.framework.client import errors
from rook_py.framework.cmdline import FlagSet
from rook_py.framework.operator import operator_flags, settings_from_values
from rook_py.framework.operator_config import Applied, ConfigWatcher, OperatorConfig, configmap_name
from rook_py.framework.provider import OperatorSettings

NS = "rook-chubaofs"


class RecordingProvider(ChubaoFSProvider):
    def __init__(self, fail: int = 0) -> None:
        super().__init__()
        self.calls: list[tuple[OperatorSettings, Set[str]]] = []
        self.fail = fail

    def settings_changed(self, client: Any, settings: OperatorSettings, changed: Set[str]) -> None:
        if self.fail:
            self.fail -= 1
            raise errors.ServerTimeout("the DaemonSet update timed out")
        self.calls.append((settings, changed))


def base(argv: tuple[str, ...] = (), env: dict[str, str] | None = None,
         provider: ChubaoFSProvider | None = None) -> OperatorConfig:
    """An OperatorConfig as ``rook chubaofs operator`` builds it from this command line and env."""
    provider = provider or ChubaoFSProvider()
    parser = cmdline.ArgumentParser()
    flagset = FlagSet().add(parser, *operator_flags(provider))
    args = parser.parse_args(list(argv))
    values = flagset.resolve(args, {"POD_NAMESPACE": NS, **(env or {})})
    explicit = {f.dest for f in flagset.flags if getattr(args, f.dest) is not None}
    return OperatorConfig(provider, settings_from_values("chubaofs", values, ChubaoFSSettings), explicit=explicit)


def test_name_follows_rook() -> None:
    assert configmap_name("chubaofs") == "rook-chubaofs-operator-config"


def test_configmap_over_env_over_default_and_flags_over_all() -> None:
    config = base(("--lease-duration=20s",), {"ROOK_LOG_LEVEL": "warning", "ROOK_RETRY_PERIOD": "3s",
                                               "DISCOVER_TOLERATIONS": "- key: a\n  operator: Exists"})
    applied = config.apply({"ROOK_LOG_LEVEL": "DEBUG", "ROOK_LEASE_DURATION": "30s",
                            "DISCOVER_TOLERATIONS": "- operator: Exists", "ROOK_ENABLE_AGENT": "False"})
    s, cfs = applied.settings, applied.settings.of(ChubaoFSSettings)
    assert s.log_level == "debug"          # ConfigMap over env
    assert s.retry_period == 3.0           # env where the ConfigMap is silent
    assert s.renew_deadline == 10.0        # default
    assert s.lease_duration == 20.0        # the flag: the ConfigMap does not override it
    assert cfs.discover_tolerations == [{"operator": "Exists"}] and cfs.enable_agent is False
    assert applied.keys == {"log-level": "ROOK_LOG_LEVEL", "discover-tolerations": "DISCOVER_TOLERATIONS",
                            "enable-agent": "ROOK_ENABLE_AGENT"}
    assert applied.problems == ["ConfigMap rook-chubaofs-operator-config key ROOK_LEASE_DURATION: ignored, "
                                "--lease-duration is given on the command line"]
    assert config.base.log_level == "warning"  # the base is never changed


def test_every_env_name_of_a_setting_is_a_key() -> None:
    applied = base().apply({"DISCOVER_NODE_AFFINITY": "role=storage", "ROOK_AGENT_MONITOR": "ns/mon"})
    cfs = applied.settings.of(ChubaoFSSettings)
    assert cfs.discover_node_affinity is not None and cfs.agent_monitor == "ns/mon"


def test_bad_input_is_reported_and_ignored() -> None:
    config = base(env={"ROOK_ENABLE_AGENT": "false"})
    applied = config.apply({"ROOK_ENABLE_AGENT": "sometimes", "ROOK_MAX_CONCURRENT_RECONCILES": "0",
                            "POD_NAMESPACE": "elsewhere", "CSI_ENABLE_RBD": "true", "ROOK_CRD_TIMEOUT": "",
                            "ROOK_LOG_LEVEL": "loud"})
    assert applied.settings == config.base   # nothing usable: the env values stand
    problems = "\n".join(applied.problems)
    assert "key ROOK_ENABLE_AGENT: invalid boolean 'sometimes'" in problems
    assert "key ROOK_MAX_CONCURRENT_RECONCILES: 0 is less than 1" in problems
    assert "key POD_NAMESPACE: namespace cannot be set there" in problems
    assert "key CSI_ENABLE_RBD: no such setting" in problems
    assert "key ROOK_LOG_LEVEL: unknown log level 'loud'" in problems
    assert "ROOK_CRD_TIMEOUT" not in problems  # an empty value means "not set", as in env
    assert len(applied.problems) == 5


def test_no_configmap_means_env_and_defaults() -> None:
    config = base()
    assert config.apply(None).settings == config.base and config.apply({}).keys == {}


class FakeClient:
    def __init__(self, answer: Any) -> None:
        self.answer = answer

    def get(self, api_version: str, kind: str, name: str, namespace: str) -> Any:
        assert (kind, name, namespace) == ("ConfigMap", "rook-chubaofs-operator-config", NS)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_read_tolerates_absence_and_refusal() -> None:
    config = base()
    assert config.read(FakeClient({"data": {"ROOK_LOG_LEVEL": "debug"}})) == {"ROOK_LOG_LEVEL": "debug"}
    assert config.read(FakeClient({"metadata": {}})) == {}
    assert config.read(FakeClient(errors.NotFound("nope"))) is None
    assert config.read(FakeClient(errors.Forbidden("no"))) is None


def watcher(config: OperatorConfig, data: dict[str, str] | None = None) -> tuple[ConfigWatcher, list[list[str]]]:
    restarts: list[list[str]] = []
    applied = config.apply(data)
    running = OperatorSettings(**{**vars(applied.settings), "image": "rook-py:1"})
    return ConfigWatcher(config, object(), applied, running, on_restart=restarts.append), restarts


def test_live_changes_reach_the_provider_and_keep_the_resolved_image() -> None:
    provider = RecordingProvider()
    w, restarts = watcher(base(provider=provider))
    w.on_data({"AGENT_TOLERATIONS": "- operator: Exists", "ROOK_DISCOVER_DEVICES_INTERVAL": "5m"})
    ((settings, changed),) = provider.calls
    assert changed == {"agent-tolerations", "discover-devices-interval"} and restarts == []
    assert settings.image == "rook-py:1" and settings.of(ChubaoFSSettings).discover_devices_interval == 300.0
    w.on_data({"AGENT_TOLERATIONS": "- operator: Exists", "ROOK_DISCOVER_DEVICES_INTERVAL": "300s"})
    assert len(provider.calls) == 1  # same values, other spelling: nothing changed
    w.on_data(None)  # deleted: back to env and defaults, live
    assert provider.calls[-1][1] == {"agent-tolerations", "discover-devices-interval"}
    assert provider.calls[-1][0].of(ChubaoFSSettings) == ChubaoFSSettings()


def test_a_failed_live_change_is_tried_again() -> None:
    provider = RecordingProvider(fail=1)
    w, _ = watcher(base(provider=provider))
    w.on_data({"ROOK_ENABLE_AGENT": "false"})  # the provider raised: logged, not recorded
    assert provider.calls == []
    w.on_data({"ROOK_ENABLE_AGENT": "false"})  # the informer's resync offers the same data again
    assert [changed for _, changed in provider.calls] == [{"enable-agent"}]


def test_a_change_that_needs_a_restart_asks_for_one_once() -> None:
    provider = RecordingProvider()
    w, restarts = watcher(base(provider=provider))
    w.on_data({"ROOK_LOG_LEVEL": "debug", "ROOK_CURRENT_NAMESPACE_ONLY": "true"})
    assert restarts == [["current-namespace-only"]] and provider.calls == []
    w.on_data({"ROOK_LEASE_DURATION": "1m"})
    assert restarts == [["current-namespace-only"]]  # stopping already: nothing more is applied


def test_a_bad_value_changes_nothing() -> None:
    provider = RecordingProvider()
    w, restarts = watcher(base(provider=provider))
    w.on_data({"ROOK_ENABLE_AGENT": "sometimes", "ROOK_LEASE_DURATION": "soon"})
    assert provider.calls == [] and restarts == []


def test_applied_is_what_the_start_up_uses() -> None:
    config = base()
    applied = config.apply({"ROOK_KUBE_API_QPS": "50"})
    assert isinstance(applied, Applied) and applied.settings.kube_api_qps == 50.0


def test_provider_flags_may_not_shadow_the_frameworks() -> None:
    from dataclasses import dataclass

    from rook_py.framework.settings import setting

    @dataclass
    class Clashing:
        lease_duration: float = setting(1.0, "mine", kind="duration")

    class Bad(ChubaoFSProvider):
        settings_type = Clashing

    with pytest.raises(ValueError, match="redeclares framework flags: lease-duration"):
        operator_flags(Bad())
    with pytest.raises(TypeError, match="not ChubaoFSSettings"):
        OperatorSettings(provider_settings=Clashing()).of(ChubaoFSSettings)
    assert OperatorSettings().of(ChubaoFSSettings) == ChubaoFSSettings()


def test_by_default_a_live_change_runs_pre_start_again() -> None:
    class Minimal(ChubaoFSProvider):
        pre_starts: list[OperatorSettings] = []

        def pre_start(self, client: Any, settings: OperatorSettings) -> None:
            self.pre_starts.append(settings)

        settings_changed = ChubaoFSProvider.__mro__[1].settings_changed  # the Provider default

    provider = Minimal()
    w, restarts = watcher(base(provider=provider))
    w.on_data({"AGENT_MONITOR": "ns/mon"})
    assert restarts == [] and len(provider.pre_starts) == 1
    assert provider.pre_starts[0].of(ChubaoFSSettings).agent_monitor == "ns/mon"
