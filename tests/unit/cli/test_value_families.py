"""Every value a Rook user's manifests carry is read as Rook's Go code reads it (issue: Rook's
conventions). One test per family: booleans (strconv.ParseBool), durations (time.ParseDuration),
integers (pflag), log levels (capnslog), boolean flags on the command line (pflag), and an audit
that every flag of every command reads back the default its help and the reference show."""

from __future__ import annotations

import argparse
import io
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rook_py import cli
from rook_py.framework import cmdline
from rook_py.framework.cmdline import Fatal, Flag, FlagSet
from rook_py.framework.logging import LEVELS, configure_logging, get_logger, parse_level


@pytest.fixture(autouse=True)
def _logging_to_the_real_stderr() -> Iterator[None]:
    """Tests here configure logging; leave it on a stream that outlives pytest's capture."""
    yield
    configure_logging("info", "json", sys.__stderr__)


GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


def parsed(argv: list[str], *flags: Flag, env: dict[str, str] | None = None) -> dict[str, Any]:
    parser = cmdline.ArgumentParser(prog="t")
    flagset = FlagSet().add(parser, *flags)
    return flagset.resolve(parser.parse_args(argv), env or {})


LEADER = Flag("leader-elect", True, kind="bool")


# -- booleans -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [*GO_TRUE, "tRuE", " yes ", "ON"])
def test_every_go_true_spelling_in_env_and_after_equals(text: str) -> None:
    off = Flag("x", False, kind="bool")
    assert parsed([], off, env={"ROOK_X": text})["x"] is True
    assert parsed([f"--x={text}"], off)["x"] is True


@pytest.mark.parametrize("text", [*GO_FALSE, "fAlSe", "no", "OFF"])
def test_every_go_false_spelling_in_env_and_after_equals(text: str) -> None:
    assert parsed([], LEADER, env={"ROOK_LEADER_ELECT": text})["leader_elect"] is False
    assert parsed([f"--leader-elect={text}"], LEADER)["leader_elect"] is False


@pytest.mark.parametrize("text", ["2", "truee", "", "nope", "+1"])
def test_a_bad_boolean_names_its_source(text: str, capsys: pytest.CaptureFixture[str]) -> None:
    if text:
        with pytest.raises(Fatal, match=r"^\$ROOK_LEADER_ELECT: invalid boolean"):
            parsed([], LEADER, env={"ROOK_LEADER_ELECT": text})
    with pytest.raises(SystemExit) as exit_:
        parsed([f"--leader-elect={text}"], LEADER)
    assert exit_.value.code == 2
    assert "argument --leader-elect: invalid boolean" in capsys.readouterr().err


# -- boolean flags on the command line, as pflag reads them --------------------------------------

def test_bool_flag_forms_follow_pflag(capsys: pytest.CaptureFixture[str]) -> None:
    assert parsed(["--leader-elect"], LEADER, env={"ROOK_LEADER_ELECT": "false"})["leader_elect"] is True
    assert parsed(["--no-leader-elect"], LEADER)["leader_elect"] is False
    assert parsed(["--leader-elect=false", "--leader-elect=true"], LEADER)["leader_elect"] is True  # last wins
    # pflag: a bool flag's value follows "=" only; a separate word is a positional argument,
    # which no rook command takes.
    with pytest.raises(SystemExit):
        parsed(["--leader-elect", "false"], LEADER)
    assert "unrecognized arguments: false" in capsys.readouterr().err
    # "--" ends the flags: nothing after it is rewritten.
    parser = cmdline.ArgumentParser(prog="t")
    FlagSet().add(parser, LEADER)
    parser.add_argument("rest", nargs="*")
    assert parser.parse_args(["--", "--leader-elect=false"]).rest == ["--leader-elect=false"]


def test_no_flag_is_expanded_from_a_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parsed(["--leader=false"], LEADER)
    assert "unrecognized arguments" in capsys.readouterr().err


def test_each_subcommand_knows_its_own_bool_flags() -> None:
    """``--cluster`` is a bool of ``rook envtest serve`` and a string of ``rook chubaofs agent``."""
    parser = cli.build_parser()
    serve = parser.parse_args(["envtest", "serve", "--cluster=false"])
    assert serve.cluster is False
    agent = parser.parse_args(["chubaofs", "agent", "--cluster=false"])
    assert agent.cluster == "false"
    operator = parser.parse_args(["chubaofs", "operator", "--leader-elect=false", "--enable-agent=F",
                                  "--current-namespace-only=1"])
    assert (operator.leader_elect, operator.enable_agent, operator.current_namespace_only) == (False, False, True)


# -- durations ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("300ms", 0.3), ("0", 0.0), ("0s", 0.0),
    ("2h45m30.5s", 9930.5), ("1m.5s", 60.5), ("100us", 1e-4), ("100µs", 1e-4), ("100μs", 1e-4), ("7ns", 7e-9),
    ("+5m", 300.0), ("-1.5h", -5400.0), ("60M", 3600.0), ("90S", 90.0), ("45", 45.0), (" 1h ", 3600.0),
])
def test_durations_as_go_parses_them(text: str, seconds: float) -> None:
    assert cmdline.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", ".s", "1d", "1 h", "1h 30m", "h1", "1.2.3s", "--1s", "1e3s"])
def test_durations_go_refuses_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        cmdline.parse_duration(text)


@pytest.mark.parametrize(("seconds", "text"), [
    (0.0, "0s"), (5400.0, "1h30m0s"), (3600.0, "1h0m0s"), (90.0, "1m30s"), (1.5, "1.5s"), (0.3, "300ms"),
    (1e-4, "100µs"), (7e-9, "7ns"), (-90.0, "-1m30s"), (30.0, "30s"),
])
def test_durations_are_written_as_go_writes_them(seconds: float, text: str) -> None:
    assert cmdline.format_duration(seconds) == text


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_written_durations_read_back(nanos: int) -> None:
    seconds = nanos / 1e9
    assert cmdline.parse_duration(cmdline.format_duration(seconds)) == pytest.approx(seconds, abs=1e-9)


# -- integers and numbers -----------------------------------------------------------------------

@pytest.mark.parametrize(("text", "value"), [("30", 30), ("+3", 3), ("-2", -2), ("0x1f", 31), ("0o17", 15),
                                             ("0b101", 5), ("1_000", 1000), ("010", 10), (" 7 ", 7)])
def test_integers_as_pflag_reads_them(text: str, value: int) -> None:
    assert cmdline.parse_int(text) == value


@pytest.mark.parametrize("text", ["", "1.5", "ten", "0x"])
def test_bad_integers(text: str) -> None:
    with pytest.raises(ValueError, match="invalid integer"):
        cmdline.parse_int(text)


def test_numbers() -> None:
    assert cmdline.parse_float("1e3") == 1000.0 and cmdline.parse_float(" 20 ") == 20.0
    with pytest.raises(ValueError, match="invalid number"):
        cmdline.parse_float("fast")


# -- lists --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "items"), [("/a,/b", ["/a", "/b"]), (" /a, /b ,,", ["/a", "/b"]), ("", []),
                                             ('a,"b,c"', ["a", "b,c"]), ('"x y", z', ["x y", "z"])])
def test_lists_as_pflag_reads_a_string_slice(text: str, items: list[str]) -> None:
    assert cmdline.parse_list(text) == items
    assert parsed([], Flag("paths", [], kind="list"), env={"ROOK_PATHS": text})["paths"] == items


# -- log levels ---------------------------------------------------------------------------------

CAPNSLOG = {"CRITICAL": "critical", "ERROR": "error", "WARNING": "warning", "NOTICE": "info", "INFO": "info",
            "DEBUG": "debug", "TRACE": "debug"}


@pytest.mark.parametrize(("rook", "ours"), sorted(CAPNSLOG.items()))
def test_rooks_log_levels_in_any_case(rook: str, ours: str) -> None:
    for text in (rook, rook.lower(), rook.capitalize()):
        assert parse_level(text) == ours
    assert parsed([], *cmdline.LOGGING_FLAGS, env={"ROOK_LOG_LEVEL": rook})["log_level"] == ours


def test_capnslog_short_forms_and_ours() -> None:
    assert [parse_level(x) for x in ("C", "e", "W", "n", "I", "d", "T", "0", "5")] == [
        "critical", "error", "warning", "info", "info", "debug", "debug", "error", "debug"]
    assert {parse_level(x) for x in LEVELS} == set(LEVELS) and parse_level("warn") == "warning"
    with pytest.raises(ValueError, match="use one of critical, error, warning, notice, info, debug, trace"):
        parse_level("loud")


def test_a_rook_log_level_filters_as_its_name_says() -> None:
    stream = io.StringIO()
    configure_logging("WARNING", "json", stream)
    log = get_logger("t")
    log.info("hidden")
    log.warning("shown")
    configure_logging("CRITICAL", "JSON", stream)
    log.error("hidden too")
    log.critical("shown too")
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["shown", "shown too"]


def test_rook_log_level_info_starts_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    """The reported failure: ``ROOK_LOG_LEVEL=INFO`` made every command exit at once."""
    assert cli.main(["version"], environ={"ROOK_LOG_LEVEL": "INFO"}) == 0
    assert "rook-py" in capsys.readouterr().out
    status = cli.main(["discover"], environ={"ROOK_LOG_LEVEL": "INFO"}, termination_log="/nonexistent/x")
    assert status == 1  # fails for the missing NODE_NAME, not for the log level
    assert "NODE_NAME is not set" in capsys.readouterr().err


# -- audit: every flag of every command ----------------------------------------------------------

def _flagsets(parser: argparse.ArgumentParser) -> Iterator[tuple[str, FlagSet]]:
    flagset = parser.get_default(cmdline.FLAGSET)
    if flagset is not None:
        yield parser.prog, flagset
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _flagsets(sub)


def test_every_flag_reads_back_the_default_it_documents() -> None:
    """The help text and docs/reference.md show each default as a user would write it; reading
    that text through the flag (as an env value) gives the default itself, for every command."""
    seen = 0
    for prog, flagset in _flagsets(cli.build_parser()):
        for flag in flagset.flags:
            shown = flag.shown_default()
            if not shown:
                continue
            value = flag.convert(shown, f"{prog} --{flag.name}")
            expected = list(flag.default) if isinstance(flag.default, tuple) else flag.default
            assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected, (
                prog, flag.name, shown)
            seen += 1
    assert seen > 30


def test_every_bool_flag_of_every_command_takes_an_explicit_value() -> None:
    for prog, flagset in _flagsets(cli.build_parser()):
        parser = cmdline.ArgumentParser(prog=prog)
        bools = [f for f in flagset.flags if f.kind == "bool"]
        if not bools:
            continue
        FlagSet().add(parser, *bools)
        argv = [f"--{f.name}={'false' if f.default else 'true'}" for f in bools]
        values = vars(parser.parse_args(argv))
        assert all(values[f.dest] is (not f.default) for f in bools), prog
