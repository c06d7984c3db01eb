"""Flag/env precedence, parsing, masking and the fatal-error convention of ``cmdline``."""

from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from rook_py.framework import cmdline
from rook_py.framework.cmdline import Fatal, Flag, FlagSet


def make(*flags: Flag) -> tuple[argparse.ArgumentParser, FlagSet]:
    parser = argparse.ArgumentParser()
    return parser, FlagSet().add(parser, *flags)


def resolve(flags: tuple[Flag, ...], argv: list[str], env: dict[str, str]) -> dict[str, object]:
    parser, fs = make(*flags)
    return fs.resolve(parser.parse_args(argv), env)


FLAGS = (Flag("log-level", "info"), Flag("namespace", None, env=("POD_NAMESPACE",)),
         Flag("leader-elect", True, kind="bool"), Flag("interval", 3600.0, kind="duration"),
         Flag("workers", 1, kind="int"), Flag("paths", [], kind="list"))


def test_env_name_upper_cases_and_replaces_dashes() -> None:
    assert cmdline.env_name("log-level") == "ROOK_LOG_LEVEL"
    assert cmdline.env_name("discover-devices-interval") == "ROOK_DISCOVER_DEVICES_INTERVAL"


def test_default_when_nothing_given() -> None:
    values = resolve(FLAGS, [], {})
    assert values == {"log_level": "info", "namespace": None, "leader_elect": True, "interval": 3600.0,
                      "workers": 1, "paths": []}


def test_env_over_default_and_flag_over_env() -> None:
    env = {"ROOK_LOG_LEVEL": "debug", "ROOK_WORKERS": "4", "ROOK_LEADER_ELECT": "false",
           "ROOK_INTERVAL": "1h30m", "ROOK_PATHS": "/a, /b,,"}
    values = resolve(FLAGS, [], env)
    assert values["log_level"] == "debug" and values["workers"] == 4
    assert values["leader_elect"] is False and values["interval"] == 5400.0 and values["paths"] == ["/a", "/b"]
    values = resolve(FLAGS, ["--log-level", "error", "--workers", "2", "--leader-elect"], env)
    assert values["log_level"] == "error" and values["workers"] == 2 and values["leader_elect"] is True


def test_rook_env_wins_over_extra_env_names() -> None:
    assert resolve(FLAGS, [], {"POD_NAMESPACE": "a"})["namespace"] == "a"
    assert resolve(FLAGS, [], {"POD_NAMESPACE": "a", "ROOK_NAMESPACE": "b"})["namespace"] == "b"
    assert resolve(FLAGS, ["--namespace", "c"], {"POD_NAMESPACE": "a", "ROOK_NAMESPACE": "b"})["namespace"] == "c"


def test_empty_env_value_counts_as_unset() -> None:
    assert resolve(FLAGS, [], {"ROOK_LOG_LEVEL": ""})["log_level"] == "info"


def test_no_flag_turns_a_bool_off() -> None:
    assert resolve(FLAGS, ["--no-leader-elect"], {"ROOK_LEADER_ELECT": "true"})["leader_elect"] is False


@pytest.mark.parametrize(("argv", "env", "where"), [
    (["--workers", "many"], {}, "--workers"),
    ([], {"ROOK_WORKERS": "x"}, "$ROOK_WORKERS"),
    ([], {"ROOK_LEADER_ELECT": "maybe"}, "$ROOK_LEADER_ELECT"),
    ([], {"ROOK_INTERVAL": "10 parsecs"}, "$ROOK_INTERVAL"),
])
def test_bad_values_name_their_source(argv: list[str], env: dict[str, str], where: str) -> None:
    with pytest.raises(Fatal, match=f"^{where.replace('$', '[$]')}: "):
        resolve(FLAGS, argv, env)


def test_choices_are_enforced_for_env_too() -> None:
    with pytest.raises(Fatal, match="not one of"):
        resolve((Flag("log-format", "json", choices=("json", "console")),), [], {"ROOK_LOG_FORMAT": "xml"})


@pytest.mark.parametrize(("text", "seconds"), [("60m", 3600.0), ("1h30m", 5400.0), ("500ms", 0.5), ("45", 45.0),
                                               ("1.5s", 1.5)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert cmdline.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "m", "5 m", "1x", "1h 30m", "1.2.3s", "--1s"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        cmdline.parse_duration(text)


def test_a_duration_flag_refuses_a_negative_duration_go_would_parse() -> None:
    assert cmdline.parse_duration("-1s") == -1.0
    with pytest.raises(Fatal, match=r"^\$ROOK_INTERVAL: .*must not be negative"):
        resolve(FLAGS, [], {"ROOK_INTERVAL": "-1s"})


def test_masked_hides_secrets_but_not_empty_ones() -> None:
    parser, fs = make(Flag("consul-token", None, secret=True), Flag("password", "", secret=True), Flag("name", "x"))
    values = fs.resolve(parser.parse_args(["--consul-token", "s3cr3t"]), {})
    assert fs.masked(values) == {"consul-token": cmdline.MASK, "password": "", "name": "x"}


def test_help_names_the_env_variable_but_never_a_secret_default() -> None:
    parser, _ = make(Flag("token", "abc", secret=True), Flag("port", 9500, kind="int"))
    text = parser.format_help()
    assert "ROOK_TOKEN" in text and "abc" not in text
    assert "ROOK_PORT; default 9500" in text


def test_start_logging_logs_every_flag_masked() -> None:
    parser, fs = make(*cmdline.LOGGING_FLAGS, Flag("token", None, secret=True), Flag("name", "n"))
    values = fs.resolve(parser.parse_args(["--token", "hunter2"]), {})
    stream = io.StringIO()
    cmdline.start_logging("rook test", fs, values, stream)
    line = json.loads(stream.getvalue().splitlines()[0])
    assert line["command"] == "rook test"
    assert line["flags"] == {"log-level": "info", "log-format": "json", "token": cmdline.MASK, "name": "n"}
    assert "hunter2" not in stream.getvalue()


def test_fatal_writes_one_line_to_an_existing_termination_log(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    err = io.StringIO()

    def boom() -> int:
        raise Fatal("POD_NAMESPACE is not set:\n  set it")

    assert cmdline.run_fatal_guarded(boom, termination_log=str(log), stderr=err) == 1
    assert log.read_text() == "POD_NAMESPACE is not set: set it"
    assert err.getvalue() == "rook: fatal: POD_NAMESPACE is not set: set it\n"


def test_unexpected_errors_carry_their_type_and_missing_log_is_not_created(tmp_path: Path) -> None:
    log = tmp_path / "absent"

    def boom() -> int:
        raise KeyError("x")

    assert cmdline.run_fatal_guarded(boom, termination_log=str(log), stderr=io.StringIO()) == 1
    assert not log.exists()


def test_success_passes_the_status_through(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    assert cmdline.run_fatal_guarded(lambda: 3, termination_log=str(log)) == 3
    assert log.read_text() == ""
