"""load_config precedence: explicit path > $KUBECONFIG > ~/.kube/config > in-cluster."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from rook_py.framework.client import ConfigError, RestConfig, load_config


def write_kubeconfig(path: Path, server: str, token: str, context: str = "main") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": "c", "cluster": {"server": server}},
                     {"name": "other", "cluster": {"server": "http://127.0.0.1:2"}}],
        "users": [{"name": "u", "user": {"token": token}}],
        "contexts": [{"name": context, "context": {"cluster": "c", "user": "u"}},
                     {"name": "alt", "context": {"cluster": "other", "user": "u"}}],
    }))
    return path


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def token_of(cfg: RestConfig) -> str | None:
    token: str | None = cfg.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
    return token


def test_explicit_path_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    explicit = write_kubeconfig(tmp_path / "a.yaml", "http://127.0.0.1:1111", "ta")
    env = write_kubeconfig(tmp_path / "b.yaml", "http://127.0.0.1:2222", "tb")
    monkeypatch.setenv("KUBECONFIG", str(env))
    cfg = load_config(str(explicit))
    assert cfg.host == "http://127.0.0.1:1111"
    assert token_of(cfg) == "Bearer ta"
    assert cfg.source == f"kubeconfig:{explicit}"
    assert load_config().host == "http://127.0.0.1:2222"


def test_context_selection_and_home_default(tmp_path: Path) -> None:
    write_kubeconfig(tmp_path / "home" / ".kube" / "config", "http://127.0.0.1:3333", "th")
    assert load_config().host == "http://127.0.0.1:3333"
    assert load_config(context="alt").host == "http://127.0.0.1:2"


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load kubeconfig"):
        load_config(str(tmp_path / "nope.yaml"))


def test_no_config_anywhere() -> None:
    with pytest.raises(ConfigError, match="not running in a cluster"):
        load_config()


def test_for_host_and_copy_are_independent() -> None:
    cfg = RestConfig.for_host("http://127.0.0.1:9/", token="x")
    assert cfg.host == "http://127.0.0.1:9"
    twin = cfg.copy()
    twin.configuration.api_key["BearerToken"] = "y"
    assert token_of(cfg) == "Bearer x"


def test_in_cluster_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.config import incluster_config

    token = tmp_path / "token"
    token.write_text("sa-token")
    ca = tmp_path / "ca.crt"
    ca.write_text("not-really-a-cert")
    monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    cfg = load_config()
    assert cfg.source == "in-cluster"
    assert cfg.host == "https://10.96.0.1:443"
    assert cfg.configuration.ssl_ca_cert == str(ca)
    assert token_of(cfg) == "bearer sa-token"
    # The projected token is re-read periodically through the refresh hook the loader installs.
    assert cfg.configuration.refresh_api_key_hook is not None
