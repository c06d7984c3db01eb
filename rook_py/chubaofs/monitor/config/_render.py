"""Helpers shared by the monitoring config renderers.

Every renderer in this package is a pure function: same input, byte-identical output. That lets
the controller compare rendered text with what a ConfigMap holds and skip writes (and reloads)
when nothing changed. Determinism rests on two rules kept here: mappings are dumped in insertion
order (callers build them in a fixed order) and YAML is emitted by one configured dumper.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

JSON = dict[str, Any]


class _IndentedListDumper(yaml.SafeDumper):
    """SafeDumper that indents block sequences under their key, as Prometheus' own docs do.

    PyYAML's default puts `- item` flush with the parent key; both forms are valid YAML, this one
    is simply easier for humans reading a mounted ConfigMap.
    """

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def dump_yaml(document: Mapping[str, Any]) -> str:
    """Render `document` as block-style YAML, keys in insertion order, no aliases.

    Every reconcile re-renders the whole Prometheus config and rule file, and PyYAML's emitter is
    pure Python (about a millisecond per kilobyte), so the text is memoized. The key is the
    document's JSON text: cheap to build in C, exact (insertion order included), and decoding it
    yields fresh objects, so shared sub-objects can never become YAML anchors/aliases.
    """
    return _dump_json_text(json.dumps(document, separators=(",", ":"), allow_nan=False))


@functools.lru_cache(maxsize=512)
def _dump_json_text(json_text: str) -> str:
    text: str = yaml.dump(
        json.loads(json_text),
        Dumper=_IndentedListDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=4096,
    )
    return text


# host:port where host is a DNS name, an IPv4 address or a bracketed IPv6 address. Prometheus'
# consul_sd `server` and alertmanager static targets both take this form; a scheme ("http://")
# silently breaks consul_sd, which is why it is refused here rather than passed through.
_HOST_PORT = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9\-.]{0,251}[A-Za-z0-9])?):(\d{1,5})$"
)


def require_host_port(value: str, what: str) -> str:
    """Return `value` if it is `host:port`; raise ValueError naming `what` otherwise."""
    match = _HOST_PORT.match(value)
    if match is None or not 0 < int(match.group(1)) < 65536:
        raise ValueError(f"{what} must be host:port without a scheme, got {value!r}")
    return value


# Prometheus durations (model.ParseDuration): one or more <int><unit> pairs, units y w d h m s ms.
_DURATION = re.compile(r"^(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?$")


def require_duration(value: str, what: str) -> str:
    """Return `value` if it is a non-zero Prometheus duration such as `30s` or `1h30m`."""
    if not value or _DURATION.match(value) is None or not any(ch.isdigit() and ch != "0" for ch in value):
        raise ValueError(f"{what} must be a Prometheus duration like 30s or 5m, got {value!r}")
    return value


def promql_string(value: str) -> str:
    """Quote `value` as a PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def re2_literal(value: str) -> str:
    """Escape `value` so an RE2 (Prometheus relabel) regex matches it literally.

    RE2 accepts a backslash before any punctuation, so Python's escaping is a safe superset.
    """
    return re.escape(value)


_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def require_label_name(value: str, what: str) -> str:
    """Return `value` if it is a valid Prometheus label name."""
    if _LABEL_NAME.match(value) is None or value.startswith("__"):
        raise ValueError(f"{what}: {value!r} is not a valid label name")
    return value


def require_cluster_name(value: str) -> str:
    """The ChubaoFS cluster name ends up in regexes, PromQL literals and Consul tags: keep it sane."""
    if not value or len(value) > 253 or any(ch in value for ch in ",=\n\r\t "):
        raise ValueError(f"cluster_name must be non-empty without commas, '=' or whitespace, got {value!r}")
    return value
