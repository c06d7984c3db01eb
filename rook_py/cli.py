"""The ``rook`` command (installed by ``pip install`` as a console script).

    rook version
    rook discover                      node daemon: block devices -> ConfigMap local-device-<node>
    rook envtest serve                 the Kubernetes API emulator with a simulated cluster
    rook <provider> operator           for every provider from ``load_providers()``
    rook <provider> <command>          whatever the provider adds (``rook chubaofs agent``)

Every flag falls back to ``ROOK_<FLAG>`` (see ``rook_py.framework.cmdline``). A provider adds
subcommands in ``Provider.add_commands(subparsers)``: each subcommand parser registers its flags
through ``cmdline.FlagSet().add(parser, ...)`` and sets ``handler`` (``(args, values) -> int``)
and ``command_path`` with ``parser.set_defaults``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import rook_py
from rook_py.framework import cmdline
from rook_py.framework.cmdline import COMMAND_PATH, HANDLER, FlagSet

if TYPE_CHECKING:
    from rook_py.framework.provider import Provider


def _version(args: argparse.Namespace, values: dict[str, Any]) -> int:
    print(f"rook-py {rook_py.__version__} (python {platform.python_version()})")
    return 0


def _envtest_serve(args: argparse.Namespace, values: dict[str, Any]) -> int:
    from rook_py.envtest.serve import serve

    if not values["kubeconfig"]:
        raise cmdline.Fatal("--kubeconfig is required: where to write the kubeconfig")
    if values["nodes"] < 0:
        raise cmdline.Fatal("--nodes must be >= 0")
    return serve(values["kubeconfig"], nodes=values["nodes"], port=values["port"], host=values["host"],
                 history_size=values["history_size"], simulate_cluster=values["cluster"],
                 pod_ready_delay=values["pod_ready_delay"])


ENVTEST_SERVE_FLAGS = (
    cmdline.Flag("kubeconfig", None, "where to write the kubeconfig (required)"),
    cmdline.Flag("nodes", 3, "simulated nodes", kind="int"),
    cmdline.Flag("host", "127.0.0.1", "address to listen on"),
    cmdline.Flag("port", 0, "port to listen on (0: a free one)", kind="int"),
    cmdline.Flag("history-size", 10_000, "watch history window (events)", kind="int"),
    cmdline.Flag("pod-ready-delay", 0.05, "seconds before simulated pods turn Ready", kind="float"),
    cmdline.Flag("cluster", True, "simulate nodes, kubelet, garbage collector (--no-cluster: API only)",
                 kind="bool"),
)


def _operator_handler(provider: Provider) -> cmdline.Handler:
    def run(args: argparse.Namespace, values: dict[str, Any]) -> int:
        from rook_py.framework.operator import run_operator, settings_from_values

        flagset: FlagSet = getattr(args, cmdline.FLAGSET)
        explicit = {f.dest for f in flagset.flags if getattr(args, f.dest, None) is not None}
        return run_operator(provider, settings_from_values(provider.name, values, provider.settings_type),
                            explicit=explicit)

    return run


def _subcommand(subparsers: argparse._SubParsersAction[Any], name: str, help_: str, path: str,
                handler: cmdline.Handler, flags: Sequence[cmdline.Flag] = ()) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(name, help=help_, description=help_)
    FlagSet().add(parser, *flags)
    parser.set_defaults(**{HANDLER: handler, COMMAND_PATH: path})
    return parser


def build_parser(providers: Mapping[str, Provider] | None = None) -> argparse.ArgumentParser:
    """The whole command tree; ``providers`` defaults to ``load_providers()``."""
    from rook_py.framework.daemons.discover import DISCOVER_FLAGS, run_discover_command
    from rook_py.framework.operator import operator_flags
    from rook_py.framework.provider import load_providers

    providers = load_providers() if providers is None else providers
    parser = cmdline.ArgumentParser(
        prog="rook", description="rook-py: Kubernetes storage operators. Every flag also reads "
                                 "ROOK_<FLAG> from the environment (flag > env > default).")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    _subcommand(sub, "version", "print the version", "rook version", _version)
    _subcommand(sub, "discover", "node daemon: publish this node's block devices in a ConfigMap",
                "rook discover", run_discover_command, DISCOVER_FLAGS)

    envtest = sub.add_parser("envtest", help="the Kubernetes API emulator for tests and demos",
                             description="the Kubernetes API emulator for tests and demos")
    envtest_sub = envtest.add_subparsers(title="commands", metavar="COMMAND")
    _subcommand(envtest_sub, "serve", "run the emulator with a simulated cluster in the foreground",
                "rook envtest serve", _envtest_serve, ENVTEST_SERVE_FLAGS)

    for name, provider in sorted(providers.items()):
        provider_parser = sub.add_parser(name, help=f"the {name} provider",
                                         description=f"commands of the {name} provider")
        provider_sub = provider_parser.add_subparsers(title="commands", metavar="COMMAND")
        _subcommand(provider_sub, "operator", f"run the {name} operator", f"rook {name} operator",
                    _operator_handler(provider), operator_flags(provider))
        provider.add_commands(provider_sub)
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None,
         providers: Mapping[str, Provider] | None = None,
         termination_log: str = cmdline.TERMINATION_LOG, stderr: TextIO | None = None) -> int:
    """Entry point; returns the exit status (argparse usage errors exit 2 through SystemExit)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # Modules bind their loggers when imported (building the parser imports every provider), so
    # logging is configured from --log-level/--log-format/env before that; dispatch() applies
    # the same values again after full flag parsing.
    cmdline.preconfigure_logging(argv, environ)
    parser = build_parser(providers)
    args = parser.parse_args(argv)
    if getattr(args, HANDLER, None) is None:
        parser.parse_args([*argv, "--help"])  # a bare group ("rook chubaofs"): show its help
        return 2
    return cmdline.run_fatal_guarded(lambda: cmdline.dispatch(args, environ), termination_log=termination_log,
                                     stderr=stderr)


if __name__ == "__main__":
    sys.exit(main())
