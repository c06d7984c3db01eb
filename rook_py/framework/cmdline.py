"""Command-line plumbing shared by every ``rook`` subcommand.

Flags fall back to environment variables the way Rook's commands do (rook/rook
``pkg/util/flags/flags.go``, ``SetFlagsFromEnv``: every flag the user did not set is looked up
as ``ROOK_<FLAG>``, upper case, ``-`` -> ``_``). The precedence is therefore

    command-line flag  >  $ROOK_<FLAG>  >  extra env names (e.g. $POD_NAMESPACE)  >  default

``FlagSet`` records the specs it adds to a parser so that, after ``parse_args``, ``resolve``
can tell an explicit flag from an argparse default (flags are registered with default ``None``)
and knows which values are secret when the start-up log prints them.

``run_fatal_guarded`` turns a ``Fatal`` (or any unexpected exception) into the container
convention Kubernetes understands: a one-line reason in ``/dev/termination-log`` (shown by
``kubectl describe pod`` as the termination message) and exit status 1.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rook_py.framework.logging import FORMATS, LEVEL_NAMES, configure_logging, get_logger

ENV_PREFIX = "ROOK_"
TERMINATION_LOG = "/dev/termination-log"
MASK = "*****"
#: Attribute under which a subcommand's parser stores its handler (``set_defaults(handler=...)``).
HANDLER = "handler"
#: Attribute under which a subcommand's parser stores its FlagSet.
FLAGSET = "flagset"
#: Attribute under which a subcommand's parser stores its full name, for logs and errors.
COMMAND_PATH = "command_path"

Handler = Callable[[argparse.Namespace, dict[str, Any]], int]

# Go's strconv.ParseBool spellings (1 t T TRUE true True 0 f F FALSE false False), read in any
# case, plus yes/no/on/off which earlier rook-py releases documented.
_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})
# Go's time.ParseDuration grammar: [-+]? then one or more <decimal><unit>; "0" needs no unit.
_DURATION = re.compile(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Fatal(Exception):
    """An error that ends the process with status 1 and a one-line reason (no traceback)."""


def env_name(flag: str) -> str:
    """``"log-level"`` -> ``"ROOK_LOG_LEVEL"``."""
    return ENV_PREFIX + flag.upper().replace("-", "_")


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool`` spellings in any case, plus yes/no/on/off; anything else is an error."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r} (use true or false)")


def parse_duration(text: str) -> float:
    """A Go duration (``time.ParseDuration``: ``90s``, ``1h30m``, ``1.5h``, ``300ms``, ``-2m``, ``0``)
    -> seconds. Units are also read in upper case (``90S``: nothing else could be meant), and a
    bare number counts as seconds, as earlier rook-py releases documented."""
    value = text.strip()
    if re.fullmatch(r"[-+]?(?:\d+\.?\d*|\.\d+)", value):
        return float(value)
    if value[-2:].lower() in ("µs", "μs"):
        lowered = value
    else:
        lowered = value.lower()
    match = _DURATION.fullmatch(lowered)
    if not match:
        raise ValueError(f"invalid duration {text!r} (use e.g. 300ms, 90s, 1h30m, 1.5h)")
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _DURATION_PART.findall(match.group(2)))
    return -seconds if match.group(1) == "-" else seconds


def format_duration(seconds: float) -> str:
    """Seconds -> a duration as Go's ``Duration.String`` writes it (``1h30m0s``, ``1.5s``, ``300ms``,
    ``0s``), which ``parse_duration`` and every Go program read back."""
    nanos = round(seconds * 1e9)
    if nanos == 0:
        return "0s"
    sign, nanos = ("-", -nanos) if nanos < 0 else ("", nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return f"{sign}{_trim(nanos / size)}{unit}"
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    out = f"{hours}h" if hours else ""
    out += f"{minutes}m" if hours or minutes else ""
    return f"{sign}{out}{_trim(rest / 1e9)}s"


def _trim(number: float) -> str:
    text = f"{number:.9f}".rstrip("0").rstrip(".")
    return text or "0"


def parse_non_negative_duration(text: str) -> float:
    seconds = parse_duration(text)
    if seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    return seconds


def parse_int(text: str) -> int:
    """An integer as Go's pflag reads one (``strconv.ParseInt(s, 0, 64)``): decimal, ``0x1f``,
    ``0o17``, ``0b101``, ``1_000``, with a sign."""
    value = text.strip()
    try:
        return int(value, 0)
    except ValueError:
        pass
    try:
        return int(value, 10)  # "010": Go reads octal 8; a leading zero is almost always a decimal
    except ValueError:
        raise ValueError(f"invalid integer {text!r}") from None


def parse_float(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"invalid number {text!r}") from None


def parse_list(text: str) -> list[str]:
    """Comma-separated values, blanks dropped; read as pflag reads a string slice (CSV, so a
    double-quoted value may hold a comma: ``a,"b,c"``)."""
    try:
        fields = next(csv.reader([text], skipinitialspace=True), [])
    except csv.Error as err:
        raise ValueError(f"invalid list {text!r}: {err}") from None
    return [item.strip() for item in fields if item.strip()]


def parse_log_level(text: str) -> str:
    from rook_py.framework.logging import parse_level

    return parse_level(text)


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str, "int": parse_int, "float": parse_float, "bool": parse_bool,
    "duration": parse_non_negative_duration, "list": parse_list, "log-level": parse_log_level,
}


_METAVARS = {"str": "VALUE", "int": "N", "float": "NUMBER", "duration": "DURATION", "list": "A,B,...",
             "log-level": "LEVEL"}


@dataclass(frozen=True)
class Flag:
    """One flag. ``kind`` is str|int|float|bool|duration|list|log-level, or any name when ``parse``
    converts the text; ``env`` lists extra environment names consulted after ``ROOK_<FLAG>``
    (e.g. the downward-API ``POD_NAMESPACE``, or a name Rook's manifests use)."""

    name: str
    default: Any = None
    help: str = ""
    kind: str = "str"
    secret: bool = False
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()
    parse: Callable[[str], Any] | None = field(default=None, compare=False)
    metavar: str | None = None

    def __post_init__(self) -> None:
        if self.parse is None and self.kind not in _CONVERTERS:
            raise ValueError(f"flag --{self.name}: unknown kind {self.kind!r}")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    @property
    def env_names(self) -> tuple[str, ...]:
        """Every environment variable the flag reads, in precedence order."""
        return (env_name(self.name), *(e for e in self.env if e != env_name(self.name)))

    def convert(self, raw: str, source: str) -> Any:
        try:
            value = (self.parse or _CONVERTERS[self.kind])(raw)
        except ValueError as err:
            raise Fatal(f"{source}: {err}") from None
        if self.choices:
            folded = value.strip().lower() if isinstance(value, str) else value
            if folded not in self.choices:
                raise Fatal(f"{source}: {value!r} is not one of {', '.join(self.choices)}")
            value = folded
        return value

    def shown_default(self) -> str:
        """The default as a user would write it, for help texts and the reference."""
        if self.default in (None, "", [], (), {}) or self.secret:
            return ""
        if self.kind == "bool":
            return "true" if self.default else "false"
        if self.kind == "duration":
            return format_duration(float(self.default))
        if isinstance(self.default, (list, tuple)):
            return ",".join(str(v) for v in self.default)
        return str(self.default)


class ArgumentParser(argparse.ArgumentParser):
    """argparse reading boolean flags as Go's pflag does: ``--leader-elect``, ``--no-leader-elect``
    and ``--leader-elect=false`` (how controller-runtime manifests turn leader election off).

    As in pflag, a bool flag takes its value only after ``=``: in ``--leader-elect false`` the
    ``false`` is a positional argument (so an error here, since no command takes one). Parsers
    made by ``add_subparsers`` are of the same class, so each subcommand knows its own bool flags.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)  # pflag never expands a prefix of a flag name
        super().__init__(*args, **kwargs)
        self.bool_flags: set[str] = set()

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        arg_list = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(self._explicit_bools(arg_list), namespace)

    def _explicit_bools(self, args: list[str]) -> list[str]:
        out: list[str] = []
        for i, arg in enumerate(args):
            if arg == "--":
                return out + args[i:]
            name, sep, value = arg.partition("=")
            if sep and name.startswith("--") and name[2:] in self.bool_flags:
                try:
                    out.append(name if parse_bool(value) else f"--no-{name[2:]}")
                except ValueError as err:
                    self.error(f"argument {name}: {err}")
                continue
            out.append(arg)
        return out


@dataclass
class FlagSet:
    """The flags of one subcommand; see the module docstring for the precedence."""

    flags: list[Flag] = field(default_factory=list)

    def add(self, parser: argparse.ArgumentParser, *flags: Flag) -> FlagSet:
        taken = {f.name for f in self.flags}
        for flag in flags:
            if flag.name in taken:
                raise ValueError(f"flag --{flag.name} is declared twice")
            taken.add(flag.name)
            shown = flag.shown_default()
            help_text = f"{flag.help} (env {', '.join(flag.env_names)}{'; default ' + shown if shown else ''})"
            if flag.kind == "bool":
                parser.add_argument(f"--{flag.name}", dest=flag.dest, default=None,
                                    action=argparse.BooleanOptionalAction, help=help_text)
                if isinstance(parser, ArgumentParser):
                    parser.bool_flags.add(flag.name)
            else:
                # Values stay strings here: conversion happens in resolve(), identically for
                # flags and environment variables, so both produce the same errors.
                metavar = flag.metavar or (("{" + ",".join(flag.choices) + "}") if flag.choices
                                           else _METAVARS.get(flag.kind, "VALUE"))
                parser.add_argument(f"--{flag.name}", dest=flag.dest, default=None, metavar=metavar,
                                    help=help_text)
            self.flags.append(flag)
        parser.set_defaults(**{FLAGSET: self})
        return self

    def resolve(self, args: argparse.Namespace, environ: Mapping[str, str] | None = None,
                sources: dict[str, str] | None = None) -> dict[str, Any]:
        """Every flag's effective value by dest name: flag > ROOK_<FLAG> > extra env > default.

        ``sources``, when given, receives where each value came from (``--flag``, ``$VAR`` or
        ``default``), for the start-up log.
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        found: dict[str, str] = {}
        for flag in self.flags:
            given = getattr(args, flag.dest, None)
            if isinstance(given, bool):
                values[flag.dest], found[flag.dest] = given, f"--{flag.name}"
                continue
            if given is not None:
                values[flag.dest], found[flag.dest] = flag.convert(given, f"--{flag.name}"), f"--{flag.name}"
                continue
            for name in flag.env_names:
                raw = env.get(name)
                if raw is not None and raw != "":
                    values[flag.dest], found[flag.dest] = flag.convert(raw, f"${name}"), f"${name}"
                    break
            else:
                values[flag.dest], found[flag.dest] = flag.default, "default"
        if sources is not None:
            sources.update(found)
        return values

    def masked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` keyed by flag name, secret values replaced (empty secrets stay empty),
        durations written as Go durations."""
        out: dict[str, Any] = {}
        for flag in self.flags:
            value = values.get(flag.dest)
            if flag.secret and value not in (None, ""):
                value = MASK
            elif flag.kind == "duration" and isinstance(value, (int, float)):
                value = format_duration(float(value))
            out[flag.name] = value
        return out


LOGGING_FLAGS = (
    Flag("log-level", "info", f"log level: {', '.join(LEVEL_NAMES)} (Rook's names, any case)",
         kind="log-level"),
    Flag("log-format", "json", "log format", choices=FORMATS),
)


def require_node_identity(values: Mapping[str, Any]) -> tuple[str, str]:
    """``(node_name, namespace)`` of a per-node daemon (``--node-name``, ``--namespace``), or ``Fatal``.

    Node daemons get both from the downward API (``spec.nodeName`` -> ``NODE_NAME``,
    ``metadata.namespace`` -> ``POD_NAMESPACE``); neither has a usable default, because a wrong
    node name silently reports another node's state. The error names the variable the DaemonSet
    should have set, since that is what is missing in a pod.
    """
    node, namespace = values.get("node_name"), values.get("namespace")
    if not node:
        raise Fatal("NODE_NAME is not set: pass --node-name or set it from spec.nodeName")
    if not namespace:
        raise Fatal("POD_NAMESPACE is not set: pass --namespace or set it from metadata.namespace")
    return str(node), str(namespace)


def start_logging(command: str, flagset: FlagSet, values: Mapping[str, Any], stream: TextIO | None = None,
                  sources: Mapping[str, str] | None = None) -> None:
    """Configure logging from ``--log-level``/``--log-format`` and log every flag (secrets masked).

    Rook prints its flag values at start-up (``rook.go`` ``printFlags``) because "which value did
    the process really use" is the first question when debugging a pod configured through env.
    """
    configure_logging(str(values.get("log_level") or "info"), str(values.get("log_format") or "json"), stream)
    set_by = {f.name: sources[f.dest] for f in flagset.flags if sources and sources.get(f.dest, "default") != "default"}
    get_logger("rook").info("starting", command=command, flags=flagset.masked(values), set_by=set_by)


def preconfigure_logging(argv: list[str], environ: Mapping[str, str] | None = None,
                         stream: TextIO | None = None) -> None:
    """Configure logging from ``--log-level``/``--log-format`` (or their env) found anywhere in
    ``argv``, before the real parser exists; invalid values are left for the real parser."""
    pre = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    for flag in LOGGING_FLAGS:
        pre.add_argument(f"--{flag.name}", dest=flag.dest, default=None)
    known, _ = pre.parse_known_args(argv)
    try:
        values = FlagSet(list(LOGGING_FLAGS)).resolve(known, environ)
        configure_logging(values["log_level"], values["log_format"], stream)
    except (Fatal, ValueError):
        pass


def write_termination_log(reason: str, path: str = TERMINATION_LOG) -> None:
    """Write ``reason`` to the termination log when that file exists (never create it: outside a
    container ``/dev/termination-log`` does not exist, and creating files in /dev is wrong)."""
    if not os.path.exists(path):
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(reason)
    except OSError:
        pass


def one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if isinstance(err, Fatal) else f"{type(err).__name__}: {text}"


def run_fatal_guarded(fn: Callable[[], int], *, termination_log: str = TERMINATION_LOG,
                      stderr: TextIO | None = None) -> int:
    """Run ``fn``; a raised exception becomes exit 1 with a one-line reason on stderr and in the
    termination log. ``KeyboardInterrupt`` exits 130 (the shell's convention) without a reason."""
    err_stream = stderr or sys.stderr
    try:
        return fn()
    except KeyboardInterrupt:
        return 130
    except SystemExit:
        raise
    except BaseException as err:  # the process boundary: everything becomes exit 1
        reason = one_line(err)
        print(f"rook: fatal: {reason}", file=err_stream, flush=True)
        write_termination_log(reason, termination_log)
        return 1


def dispatch(args: argparse.Namespace, environ: Mapping[str, str] | None = None,
             log_stream: TextIO | None = None) -> int:
    """Resolve the chosen subcommand's flags, start logging, and call its handler.

    A subcommand's parser sets ``handler`` (a ``Handler``), ``flagset`` (through
    ``FlagSet.add``) and ``command_path`` (e.g. ``"rook chubaofs agent"``) as defaults.
    """
    command = str(getattr(args, COMMAND_PATH, "rook"))
    handler: Handler | None = getattr(args, HANDLER, None)
    if handler is None:
        raise Fatal(f"{command}: missing subcommand (see --help)")
    flagset: FlagSet = getattr(args, FLAGSET, None) or FlagSet()
    sources: dict[str, str] = {}
    values = flagset.resolve(args, environ, sources)
    if any(f.dest == "log_level" for f in flagset.flags):
        start_logging(command, flagset, values, log_stream, sources)
    return handler(args, values)
