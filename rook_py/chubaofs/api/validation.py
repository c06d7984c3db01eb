"""Semantic validation of a (defaulted) ``ChubaoMonitor`` spec.

The CRD schema rejects wrong types, enums, patterns and bounds at admission. What a schema
cannot say is checked here and reported as human-readable problems (``field: message``) that
the controller puts into the ``InvalidSpec`` condition and a Warning Event, without touching
any owned object. The checks are repeated for grammar the schema also covers (durations, sizes)
because objects stored by a server that does not validate, or before a pattern existed, must
still never crash the operator.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from typing import Any

from rook_py.chubaofs import versions
from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.schema import LABEL_NAME_PATTERN
from rook_py.framework.kube.quantity import parse_quantity

JSON = dict[str, Any]
SecretLookup = Callable[[str], "JSON | None"]

_DURATION_UNITS = (("y", 365 * 24 * 3600.0), ("w", 7 * 24 * 3600.0), ("d", 24 * 3600.0),
                   ("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 0.001))
_DURATION_RE = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_BYTE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40,
               "PB": 1 << 50, "EB": 1 << 60}
_BYTE_RE = re.compile(r"^(\d+)(B|KB|MB|GB|TB|PB|EB)$")
_LABEL_NAME_RE = re.compile(LABEL_NAME_PATTERN)


def parse_duration(text: str) -> float:
    """Seconds of a Prometheus duration (``1d12h``, ``30s``, ``0``); ``ValueError`` otherwise.

    Mirrors prometheus/common model.ParseDuration: units in descending order, each at most once.
    """
    if text == "0":
        return 0.0
    match = _DURATION_RE.match(text or "")
    if not text or match is None:
        raise ValueError(f"not a valid duration: {text!r} (use e.g. 15d, 12h, 30s)")
    return sum(int(n) * factor for n, (_, factor) in zip(match.groups(), _DURATION_UNITS,
                                                            strict=True) if n is not None)


def parse_byte_size(text: str) -> int:
    """Bytes of a Prometheus byte size (``512MB``, ``20GB``; powers of 1024)."""
    if text == "0":
        return 0
    match = _BYTE_RE.match(text or "")
    if match is None:
        raise ValueError(f"not a valid size: {text!r} (use e.g. 512MB, 20GB)")
    return int(match.group(1)) * _BYTE_UNITS[match.group(2)]


def _secret_keys(secret: JSON) -> set[str]:
    return set(secret.get("data") or {}) | set(secret.get("stringData") or {})


def secret_value(secret: JSON, key: str) -> str | None:
    """The decoded value of ``key`` in a Secret, or ``None`` when absent or not UTF-8/base64."""
    if key in (secret.get("stringData") or {}):
        return str(secret["stringData"][key])
    raw = (secret.get("data") or {}).get(key)
    if raw is None:
        return None
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _check_storage(problems: list[str], field: str, storage: JSON | None) -> None:
    if not storage:
        return
    size = storage.get("size", "")
    try:
        if parse_quantity(size).sign() <= 0:
            problems.append(f"{field}.size: must be greater than zero")
    except ValueError as exc:
        problems.append(f"{field}.size: not a valid quantity: {size!r}: {exc}")


def _check_resources(problems: list[str], field: str, resources: JSON | None) -> None:
    resources = resources or {}
    for section in ("requests", "limits"):
        for name, quantity in (resources.get(section) or {}).items():
            try:
                parse_quantity(quantity)
            except ValueError as exc:
                problems.append(f"{field}.{section}.{name}: not a valid quantity: {quantity!r}: {exc}")
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for name in set(requests) & set(limits):
        try:
            if parse_quantity(requests[name]) > parse_quantity(limits[name]):
                problems.append(f"{field}.requests.{name}: must be less than or equal to "
                                f"the {name} limit")
        except ValueError:
            pass  # already reported above


def _check_secret(problems: list[str], field: str, name: str | None, keys: tuple[str, ...],
                  lookup: SecretLookup | None) -> None:
    if not name or lookup is None:
        return
    secret = lookup(name)
    if secret is None:
        problems.append(f"{field}: Secret {name!r} not found")
        return
    missing = [k for k in keys if k not in _secret_keys(secret)]
    if missing:
        problems.append(f"{field}: Secret {name!r} has no key {', '.join(missing)}")


def validate(spec: JSON, *, secrets: SecretLookup | None = None) -> list[str]:
    """Problems with a defaulted spec (empty when valid).

    ``secrets`` looks a Secret up by name in the resource's namespace (``None`` when absent); when
    it is not given, Secret references are not checked.
    """
    problems: list[str] = []
    if not (spec.get("cluster") or {}).get("name"):
        problems.append("cluster.name: required")

    chubaofs = spec.get("chubaofs") or {}
    for key in ("version", "upgradingFrom"):
        if chubaofs.get(key) is not None:
            try:
                versions.check_supported(str(chubaofs[key]))
            except ValueError as exc:
                problems.append(f"chubaofs.{key}: {exc}")

    consul = spec.get("consul") or {}
    external = consul.get("externalAddress")
    if external:
        if "://" in external:
            problems.append("consul.externalAddress: must be host:port, not a URL")
    elif not consul.get("enabled", True):
        problems.append("consul.enabled: false needs consul.externalAddress; without a Consul "
                        "Prometheus cannot discover ChubaoFS daemons")
    else:
        replicas = consul.get("replicas", 3)
        if replicas not in (1, 3, 5):
            problems.append(f"consul.replicas: {replicas} is not 1, 3 or 5; an even server count "
                            "adds no fault tolerance and risks a split vote")
        _check_storage(problems, "consul.storage", consul.get("storage"))
    _check_resources(problems, "consul.resources", consul.get("resources"))

    prom = spec.get("prometheus") or {}
    for key in ("retention", "scrapeInterval", "evaluationInterval"):
        if prom.get(key) is not None:
            try:
                seconds = parse_duration(str(prom[key]))
                if key != "retention" and seconds <= 0:
                    problems.append(f"prometheus.{key}: must be greater than zero")
            except ValueError as exc:
                problems.append(f"prometheus.{key}: {exc}")
    if prom.get("retentionSize") is not None:
        try:
            parse_byte_size(str(prom["retentionSize"]))
        except ValueError as exc:
            problems.append(f"prometheus.retentionSize: {exc}")
    for label in prom.get("externalLabels") or {}:
        if not _LABEL_NAME_RE.match(label):
            problems.append(f"prometheus.externalLabels: {label!r} is not a valid label name")
        elif label == "replica" and prom.get("replicas", 1) > 1:
            problems.append("prometheus.externalLabels: 'replica' is set by the operator when "
                            "replicas > 1")
    _check_storage(problems, "prometheus.storage", prom.get("storage"))
    _check_resources(problems, "prometheus.resources", prom.get("resources"))

    am = spec.get("alertmanager") or {}
    if am.get("enabled", True):
        _check_secret(problems, "alertmanager.configSecret", am.get("configSecret"),
                      (t.ALERTMANAGER_CONFIG_KEY,), secrets)
        _check_storage(problems, "alertmanager.storage", am.get("storage"))
        _check_resources(problems, "alertmanager.resources", am.get("resources"))

    graf = spec.get("grafana") or {}
    if graf.get("enabled", True):
        _check_secret(problems, "grafana.adminSecret", graf.get("adminSecret"),
                      (t.GRAFANA_ADMIN_USER_KEY, t.GRAFANA_ADMIN_PASSWORD_KEY), secrets)
        _check_storage(problems, "grafana.storage", graf.get("storage"))
        _check_resources(problems, "grafana.resources", graf.get("resources"))

    thresholds = (spec.get("rules") or {}).get("thresholds") or {}
    warning, critical = thresholds.get("capacityWarningPercent"), thresholds.get(
        "capacityCriticalPercent")
    if warning is not None and critical is not None and warning >= critical:
        problems.append(f"rules.thresholds.capacityWarningPercent: {warning} must be below "
                        f"capacityCriticalPercent ({critical})")
    for i, group in enumerate((spec.get("rules") or {}).get("extraRules") or []):
        if not isinstance(group, dict) or not group.get("name") or not isinstance(
                group.get("rules"), list):
            problems.append(f"rules.extraRules[{i}]: a rule group needs a name and a rules list")

    return problems
