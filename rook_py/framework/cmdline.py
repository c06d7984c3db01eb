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
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rook_py.framework.logging import FORMATS, LEVELS, configure_logging, get_logger

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

_TRUE = frozenset({"1", "t", "true", "y", "yes", "on"})
_FALSE = frozenset({"0", "f", "false", "n", "no", "off"})
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class Fatal(Exception):
    """An error that ends the process with status 1 and a one-line reason (no traceback)."""


def env_name(flag: str) -> str:
    """``"log-level"`` -> ``"ROOK_LOG_LEVEL"``."""
    return ENV_PREFIX + flag.upper().replace("-", "_")


def parse_bool(text: str) -> bool:
    """Go's ``strconv.ParseBool`` spellings plus yes/no/on/off; anything else is an error."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"invalid boolean {text!r}")


def parse_duration(text: str) -> float:
    """A Go duration (``"60m"``, ``"1h30m"``, ``"500ms"``) or a bare number of seconds -> seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d*)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f"invalid duration {text!r} (use e.g. 30s, 60m, 1h30m)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def parse_list(text: str) -> list[str]:
    """Comma-separated values, blanks dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str, "int": int, "float": float, "bool": parse_bool, "duration": parse_duration,
    "list": parse_list,
}


_METAVARS = {"str": "VALUE", "int": "N", "float": "NUMBER", "duration": "DURATION", "list": "A,B,..."}


@dataclass(frozen=True)
class Flag:
    """One flag. ``kind`` is str|int|float|bool|duration|list; ``env`` lists extra environment
    names consulted after ``ROOK_<FLAG>`` (e.g. the downward-API ``POD_NAMESPACE``)."""

    name: str
    default: Any = None
    help: str = ""
    kind: str = "str"
    secret: bool = False
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in _CONVERTERS:
            raise ValueError(f"flag --{self.name}: unknown kind {self.kind!r}")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")

    def convert(self, raw: str, source: str) -> Any:
        try:
            value = _CONVERTERS[self.kind](raw)
        except ValueError as err:
            raise Fatal(f"{source}: {err}") from None
        if self.choices and value not in self.choices:
            raise Fatal(f"{source}: {value!r} is not one of {', '.join(self.choices)}")
        return value


@dataclass
class FlagSet:
    """The flags of one subcommand; see the module docstring for the precedence."""

    flags: list[Flag] = field(default_factory=list)

    def add(self, parser: argparse.ArgumentParser, *flags: Flag) -> FlagSet:
        for flag in flags:
            envs = ", ".join((env_name(flag.name), *flag.env))
            shown_default = "" if flag.default in (None, "", [], ()) or flag.secret else f"; default {flag.default}"
            help_text = f"{flag.help} (env {envs}{shown_default})"
            if flag.kind == "bool":
                parser.add_argument(f"--{flag.name}", dest=flag.dest, default=None,
                                    action=argparse.BooleanOptionalAction, help=help_text)
            else:
                # Values stay strings here: conversion happens in resolve(), identically for
                # flags and environment variables, so both produce the same errors.
                parser.add_argument(f"--{flag.name}", dest=flag.dest, default=None,
                                    metavar=("{" + ",".join(flag.choices) + "}") if flag.choices else _METAVARS[flag.kind],
                                    help=help_text)
            self.flags.append(flag)
        parser.set_defaults(**{FLAGSET: self})
        return self

    def resolve(self, args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
        """Every flag's effective value by dest name: flag > ROOK_<FLAG> > extra env > default."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for flag in self.flags:
            given = getattr(args, flag.dest, None)
            if isinstance(given, bool):
                values[flag.dest] = given
                continue
            if given is not None:
                values[flag.dest] = flag.convert(given, f"--{flag.name}")
                continue
            for name in (env_name(flag.name), *flag.env):
                raw = env.get(name)
                if raw is not None and raw != "":
                    values[flag.dest] = flag.convert(raw, f"${name}")
                    break
            else:
                values[flag.dest] = flag.default
        return values

    def masked(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` keyed by flag name, secret values replaced (empty secrets stay empty)."""
        out: dict[str, Any] = {}
        for flag in self.flags:
            value = values.get(flag.dest)
            out[flag.name] = MASK if flag.secret and value not in (None, "") else value
        return out


LOGGING_FLAGS = (
    Flag("log-level", "info", "log level", choices=tuple(sorted(LEVELS))),
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


def start_logging(command: str, flagset: FlagSet, values: Mapping[str, Any], stream: TextIO | None = None) -> None:
    """Configure logging from ``--log-level``/``--log-format`` and log every flag (secrets masked).

    Rook prints its flag values at start-up (``rook.go`` ``printFlags``) because "which value did
    the process really use" is the first question when debugging a pod configured through env.
    """
    configure_logging(str(values.get("log_level") or "info"), str(values.get("log_format") or "json"), stream)
    get_logger("rook").info("starting", command=command, flags=flagset.masked(values))


def preconfigure_logging(argv: list[str], environ: Mapping[str, str] | None = None,
                         stream: TextIO | None = None) -> None:
    """Configure logging from ``--log-level``/``--log-format`` (or their env) found anywhere in
    ``argv``, before the real parser exists; invalid values are left for the real parser."""
    pre = argparse.ArgumentParser(add_help=False)
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
    values = flagset.resolve(args, environ)
    if any(f.dest == "log_level" for f in flagset.flags):
        start_logging(command, flagset, values, log_stream)
    return handler(args, values)
