"""Writes docs/reference.md from the code: every command's flags and env vars, every
ChubaoMonitor field (from the CRD schema), and every metric the operator and agent expose.

`make manifests` runs it; tests/unit/test_reference_doc.py fails when the committed file is stale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "docs" / "reference.md"


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    subactions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subactions:
        yield " ".join(path), parser
        return
    for action in subactions:
        for name, sub in sorted(action.choices.items()):
            yield from _commands(sub, (*path, name))


def _flags_section() -> str:
    from rook_py.cli import build_parser

    out = ["## Commands and flags\n",
           "Every flag also reads `ROOK_<FLAG>` from the environment (upper case, `-` becomes `_`): "
           "flag over env over default.\n"]
    for name, parser in _commands(build_parser(), ("rook",)):
        parser.formatter_class = lambda prog: argparse.HelpFormatter(prog, width=100)
        out.append(f"### `{name}`\n\n```text\n{parser.format_help().strip()}\n```\n")
    return "\n".join(out)


def _settings_table(cls: Any) -> list[str]:
    from rook_py.framework.settings import declared

    rows = ["| flag | env | default | settings ConfigMap | meaning |", "|---|---|---|---|---|"]
    for d in declared(cls):
        flag = d.flag
        envs = ", ".join(f"`{e}`" for e in flag.env_names)
        shown = flag.shown_default()
        default = f"`{shown}`" if shown else ""
        where = ("no (flag or env only)" if not d.configmap
                 else f"`{d.key}`, " + ("applied live" if d.live else "restarts the operator"))
        meaning = " ".join(flag.help.split()).replace("|", "\\|")
        if flag.choices:
            meaning += f" ({', '.join(flag.choices)})"
        rows.append(f"| `--{flag.name}` | {envs} | {default} | {where} | {meaning} |")
    return rows


def _settings_section() -> str:
    from rook_py.framework.operator_config import configmap_name
    from rook_py.framework.provider import load_providers
    from rook_py.framework.settings import OperatorSettings

    out = ["## Operator settings\n",
           "Every setting of `rook <provider> operator` is declared once (`rook_py/framework/settings.py`, "
           "and a provider's `settings_type`); its flag, environment variables, default, settings "
           "ConfigMap key and this table come from that declaration. Precedence: command-line flag, then "
           "the settings ConfigMap, then the environment (`ROOK_<FLAG>` first), then the default. The "
           "operator watches its settings ConfigMap (`rook-<provider>-operator-config` in its namespace, "
           "every key commented in `manifests/common.yaml`): a change to a setting marked *applied live* "
           "takes effect at once; any other change makes the operator release its Lease and exit 0, to "
           "start again with it. A value that does not parse there is logged and ignored.\n",
           "Values are read as Rook's Go code reads them, in any case: booleans as `strconv.ParseBool` "
           "(`1`, `t`, `true`, `TRUE`, `0`, `f`, `false`, `False`, ...; also yes/no/on/off), durations as "
           "`time.ParseDuration` (`300ms`, `90s`, `1h30m`, `1.5h`; a bare number is seconds), integers as "
           "pflag (`0x1f`, `1_000`), log levels by our names or Rook's capnslog names (`CRITICAL`, `ERROR`, "
           "`WARNING`, `NOTICE`, `INFO`, `DEBUG`, `TRACE`). A boolean flag takes a value only after `=` "
           "(`--leader-elect=false`), as in pflag; `--no-<flag>` also turns it off.\n",
           "### The framework's settings\n", *_settings_table(OperatorSettings), ""]
    for name, provider in sorted(load_providers().items()):
        if provider.settings_type is not None:
            out += [f"### The {name} provider's settings\n",
                    f"Settings ConfigMap: `{configmap_name(name)}` in the operator's namespace.\n",
                    *_settings_table(provider.settings_type), ""]
    return "\n".join(out)


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key in ("enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        if key in schema:
            value = schema[key]
            parts.append(f"{key} `{json.dumps(value) if key != 'pattern' else value}`")
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        parts.append("free-form")
    if schema.get("x-kubernetes-int-or-string"):
        parts.append("int or string")
    return ", ".join(parts).replace("|", "\\|")


def _fields(schema: dict[str, Any], path: str, required: set[str]) -> Iterator[str]:
    for name, sub in schema.get("properties", {}).items():
        field = f"{path}.{name}" if path else name
        kind = sub.get("type", "int-or-string" if sub.get("x-kubernetes-int-or-string") else "any")
        if kind == "array" and "items" in sub:
            kind = f"[]{sub['items'].get('type', 'any')}"
        default = json.dumps(sub["default"]) if "default" in sub and sub["default"] != {} else ""
        description = " ".join(str(sub.get("description", "")).split()).replace("|", "\\|")
        flag = " (required)" if name in required else ""
        yield (f"| `{field}`{flag} | {kind} | {('`' + default + '`') if default else ''} | "
               f"{_constraints(sub)} | {description} |")
        if kind == "object" and "properties" in sub:
            yield from _fields(sub, field, set(sub.get("required", [])))
        if kind.startswith("[]") and "properties" in sub.get("items", {}):
            yield from _fields(sub["items"], f"{field}[]", set(sub["items"].get("required", [])))


def _monitor_section() -> str:
    from rook_py.chubaofs.api.crd import chubao_monitor_crd

    crd = chubao_monitor_crd()
    version = crd["spec"]["versions"][0]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    rows = "\n".join(_fields(spec, "spec", set(spec.get("required", []))))
    columns = ", ".join(c["name"] for c in version.get("additionalPrinterColumns", []))
    names = crd["spec"]["names"]
    return (f"## ChubaoMonitor (`{crd['spec']['group']}/{version['name']}`)\n\n"
            f"Kind `{names['kind']}`, plural `{names['plural']}`, short names "
            f"`{', '.join(names.get('shortNames', []))}`, {crd['spec']['scope']}; status subresource; "
            f"printer columns: {columns}. Defaults below are applied by the API server at admission.\n\n"
            "| field | type | default | constraints | description |\n|---|---|---|---|---|\n"
            f"{rows}\n")


def _metrics_section() -> str:
    from rook_py.chubaofs.agent import metrics as agent_metrics
    from rook_py.framework import events  # noqa: F401  (registers the events-dropped counter)
    from rook_py.framework.metrics import REGISTRY

    lines = ["## Metrics\n", "The operator serves these on `--metrics-bind-address` (`/metrics`), with "
             "controller-runtime's names and labels.\n", "| metric | type | help |", "|---|---|---|"]
    for family in sorted(REGISTRY.collect(), key=lambda f: f.name):
        if family.name.startswith(("process_", "python_")):
            continue
        name = family.name + ("_total" if family.type == "counter" else "")
        lines.append(f"| `{name}` | {family.type} | {' '.join(family.documentation.split())} |")
    lines.append("\nThe node agent (`rook chubaofs agent`, port 9500) serves:\n")
    doc = agent_metrics.__doc__ or ""
    bullets = [line.strip() for line in doc.splitlines() if line.strip().startswith("* ``rook_chubaofs_node_")]
    lines.extend("- `" + b[2:].split("``")[1] + "`" for b in bullets)
    return "\n".join(lines) + "\n"


README = ROOT / "README.md"
_README_START = "<!-- chubaofs-versions:start (generated by make manifests) -->"
_README_END = "<!-- chubaofs-versions:end -->"


def versions_table() -> str:
    """What each alert and dashboard panel shows on each tested ChubaoFS/CubeFS release."""
    from rook_py.chubaofs.monitor.config.grafana import dashboards, panel_availability
    from rook_py.chubaofs.monitor.config.rules import alert_availability
    from rook_py.chubaofs.versions import TESTED_VERSIONS, parse_release

    releases = [parse_release(v) for v in TESTED_VERSIONS]
    head = "| | " + " | ".join(r.display for r in releases) + " |\n|---|" + "---|" * len(releases) + "\n"

    def cell(available: bool, note: str) -> str:
        return (note if note else "yes") if available else "—"

    rows = []
    per_release = [alert_availability(r) for r in releases]
    for alert in per_release[0]:
        cells = []
        for availability in per_release:
            note = availability[alert]
            cells.append("— (" + note + ")" if note.startswith("not available") else cell(True, note))
        rows.append(f"| alert `{alert}` | " + " | ".join(cells) + " |")
    for file, text in dashboards().items():
        for panel in json.loads(text).get("panels", []):
            if panel.get("type") == "row" or not panel.get("targets"):
                continue
            cells = []
            for release in releases:
                available, notes = panel_availability(panel, release)
                cells.append(cell(available, " ".join(notes)).replace("|", "\\|"))
            if len(set(cells)) > 1 or cells[0] != "yes":
                rows.append(f"| {file.removesuffix('.json')}: {panel['title']} | " + " | ".join(cells) + " |")
    return ("Every alert and panel not listed below shows data on every release in the table. "
            "\"—\" means the release exports nothing it could show; Grafana then shows that sentence "
            "in the panel for the configured `spec.chubaofs.version`.\n\n" + head + "\n".join(rows) + "\n")


def _normalised_section() -> str:
    from rook_py.chubaofs.monitor.config.normalise import SIGNALS

    rows = [f"| `{s.record}` | {', '.join(s.labels)} | {s.unit} | {s.since.display} | "
            f"{s.sources.replace('|', '/')} | {s.meaning} |" for s in SIGNALS]
    return ("## ChubaoFS releases\n\nThe rule file's first group records these series from whatever "
            "release the daemons run (names, labels and units differ between ChubaoFS 2.x and CubeFS 3.x); "
            "alerts and dashboards read only them.\n\n| series | labels | unit | data from | upstream "
            "metrics | meaning |\n|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n" + versions_table())


def render() -> str:
    return ("# rook-py reference\n\n_Generated by `make manifests` (scripts/gen_reference.py); do not edit._\n\n"
            + _flags_section() + "\n" + _settings_section() + "\n" + _monitor_section() + "\n" + _metrics_section()
            + "\n" + _normalised_section())


def render_readme(current: str) -> str:
    """README.md with the versions table between its markers replaced."""
    start, end = current.index(_README_START), current.index(_README_END)
    return current[:start + len(_README_START)] + "\n\n" + versions_table() + "\n" + current[end:]


def main(argv: list[str]) -> int:
    text = render()
    readme = render_readme(README.read_text())
    if "--check" in argv:
        stale = [path for path, wanted in ((TARGET, text), (README, readme))
                 if not path.exists() or path.read_text() != wanted]
        for path in stale:
            print(f"{path.relative_to(ROOT)} is stale; run `make manifests`", file=sys.stderr)
        return 1 if stale else 0
    TARGET.write_text(text)
    README.write_text(readme)
    print(f"wrote {TARGET.relative_to(ROOT)} and the versions table in {README.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main(sys.argv[1:]))
