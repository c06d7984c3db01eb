"""The ``rook`` command tree: help everywhere, version, provider commands, fatal exits."""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

import pytest

from rook_py import cli
from rook_py.framework.cmdline import COMMAND_PATH, HANDLER, Flag, FlagSet
from rook_py.framework.provider import OperatorSettings, Provider


class ToyProvider(Provider):
    """A provider adding one subcommand, to check the generic wiring."""

    name = "toy"

    def __init__(self) -> None:
        self.ran: list[dict[str, Any]] = []

    def crds(self) -> list[dict[str, Any]]:
        return []

    def setup(self, manager: Any, settings: OperatorSettings) -> None:
        pass

    def add_commands(self, subparsers: argparse._SubParsersAction[Any]) -> None:
        parser = subparsers.add_parser("hello", help="say hello")
        FlagSet().add(parser, Flag("greeting", "hi"), Flag("secret", None, secret=True))

        def run(args: argparse.Namespace, values: dict[str, Any]) -> int:
            self.ran.append(values)
            return 7

        parser.set_defaults(**{HANDLER: run, COMMAND_PATH: "rook toy hello"})


@pytest.mark.parametrize("argv", [[], ["version"], ["discover"], ["envtest"], ["envtest", "serve"], ["chubaofs"],
                                  ["chubaofs", "operator"], ["chubaofs", "agent"]])
def test_help_everywhere(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: rook")


def test_operator_help_lists_the_contract_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["chubaofs", "operator", "--help"])
    out = capsys.readouterr().out
    for flag in ("--kubeconfig", "--image", "--install-crds", "--leader-elect", "--current-namespace-only",
                 "--metrics-bind-address", "--health-probe-bind-address", "--log-level", "--log-format"):
        assert flag in out
    assert "ROOK_CURRENT_NAMESPACE_ONLY" in out and "POD_NAMESPACE" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["version"], providers={}) == 0
    assert capsys.readouterr().out.startswith("rook-py 0.1.0")


def test_bare_group_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["envtest"], providers={})
    assert "serve" in capsys.readouterr().out


def test_every_loaded_provider_gets_operator_and_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    toy = ToyProvider()
    parser = cli.build_parser({"toy": toy})
    assert parser.parse_args(["toy", "operator"]).command_path == "rook toy operator"
    status = cli.main(["toy", "hello", "--secret", "pw"],
                      environ={"ROOK_GREETING": "hey"}, providers={"toy": toy})
    assert status == 7
    assert toy.ran[0]["greeting"] == "hey" and toy.ran[0]["secret"] == "pw"


def test_chubaofs_is_loaded_from_the_entry_point() -> None:
    parser = cli.build_parser()
    assert parser.parse_args(["chubaofs", "agent"]).command_path == "rook chubaofs agent"


def test_operator_without_pod_namespace_fails_with_one_line(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    err = io.StringIO()
    status = cli.main(["chubaofs", "operator", "--kubeconfig", str(tmp_path / "none")], environ={},
                      termination_log=str(log), stderr=err)
    assert status == 1
    assert log.read_text().startswith("POD_NAMESPACE is not set")
    assert "\n" not in log.read_text()
    assert err.getvalue().startswith("rook: fatal: POD_NAMESPACE is not set")


def test_operator_with_unreadable_kubeconfig_fails_clearly(tmp_path: Path) -> None:
    err = io.StringIO()
    status = cli.main(["chubaofs", "operator", "--kubeconfig", str(tmp_path / "missing")],
                      environ={"POD_NAMESPACE": "rook-chubaofs"}, termination_log=str(tmp_path / "x"), stderr=err)
    assert status == 1
    assert "cannot load kubeconfig" in err.getvalue()


def test_bad_env_value_is_a_fatal_error(tmp_path: Path) -> None:
    err = io.StringIO()
    status = cli.main(["chubaofs", "operator"], environ={"ROOK_LEADER_ELECT": "perhaps", "POD_NAMESPACE": "x"},
                      termination_log=str(tmp_path / "x"), stderr=err)
    assert status == 1
    assert "$ROOK_LEADER_ELECT: invalid boolean 'perhaps'" in err.getvalue()


def test_discover_requires_node_name(tmp_path: Path) -> None:
    err = io.StringIO()
    assert cli.main(["discover"], environ={"POD_NAMESPACE": "x"}, termination_log=str(tmp_path / "x"),
                    stderr=err) == 1
    assert "NODE_NAME is not set" in err.getvalue()


def test_envtest_serve_requires_kubeconfig(tmp_path: Path) -> None:
    err = io.StringIO()
    assert cli.main(["envtest", "serve"], environ={}, termination_log=str(tmp_path / "x"), stderr=err) == 1
    assert "--kubeconfig is required" in err.getvalue()


def test_container_entry_script_runs_from_anywhere_and_cmd_is_no_package(tmp_path: Path) -> None:
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    assert not (root / "cmd" / "__init__.py").exists()
    assert not (root / "cmd" / "rook" / "__init__.py").exists()
    out = subprocess.run([sys.executable, str(root / "cmd" / "rook" / "main.py"), "version"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.startswith("rook-py ")
