"""Helpers shared by the fault-tolerance suite (tests/faults, issue 6).

Iteration counts come from ``ROOK_FAULT_ITERATIONS``: unset (``make test``) runs a few iterations
so the whole directory stays well under 90 s on 2 cores; ``full`` (``make faults``) runs the
counts the issue asks for. Every wait is bounded; a test that cannot converge fails with what it
saw rather than hanging.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from rook_py.framework import Manager, ManagerOptions
from tests.support import waiting

T = TypeVar("T")
FULL = os.environ.get("ROOK_FAULT_ITERATIONS", "").strip().lower() == "full"


def iterations(quick: int, full: int) -> int:
    """``full`` under ``make faults`` (ROOK_FAULT_ITERATIONS=full), else ``quick``."""
    return full if FULL else quick


def eventually(fn: Callable[[], T | None], timeout: float, what: str, interval: float = 0.05) -> T:
    """``tests.support.waiting.eventually`` at the fault suites' pace (timeout and ``what`` required)."""
    return waiting.eventually(fn, timeout, interval=interval, what=what)


def manager_options(**overrides: Any) -> ManagerOptions:
    """No HTTP servers (tests run in parallel processes on fixed ports otherwise), quick shutdown."""
    base: dict[str, Any] = {"metrics_bind_address": "0", "health_probe_bind_address": "0",
                            "graceful_shutdown_timeout": 10.0}
    base.update(overrides)
    return ManagerOptions(**base)


class ManagerThread:
    """Runs ``Manager.start`` on a thread; ``errors`` holds what it raised. Context manager."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="manager", daemon=True)

    def _run(self) -> None:
        try:
            self.manager.start(self.stop)
        except BaseException as err:  # reported by the test, never swallowed
            self.errors.append(err)

    def __enter__(self) -> ManagerThread:
        self.thread.start()
        if not self.manager.elected.wait(15):
            raise AssertionError("manager did not start its controllers within 15s")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "manager did not stop within 30s"

    @property
    def alive(self) -> bool:
        return self.thread.is_alive() and not self.errors


def report(test: str, **figures: Any) -> None:
    """Print a test's figures (visible with ``pytest -s``); with ``ROOK_FAULT_REPORT=path`` also
    append them as one JSON line, for the closing note of a ``make faults`` run."""
    import json

    line = json.dumps({"test": test, "full": FULL, **figures}, default=str)
    print(f"\n[faults] {line}")
    path = os.environ.get("ROOK_FAULT_REPORT")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")


class Process:
    """A Python module run as a child process (repo root on the path, ``KUBECONFIG`` set).

    Lines on its stdout that are JSON objects with a ``fault`` key are its reports (``expect``);
    the rest, and stderr, are kept for the failure message. Always ``kill()`` it (context manager).
    """

    def __init__(self, module: str, args: list[str], kubeconfig: str) -> None:
        import queue
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        environ = dict(os.environ, KUBECONFIG=kubeconfig, PYTHONUNBUFFERED="1",
                       PYTHONPATH=os.pathsep.join(p for p in (str(root), os.environ.get("PYTHONPATH")) if p))
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], cwd=root, env=environ,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, text=True)
        self.reports: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        import json

        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            # stdout and stderr share the pipe, and a log line is written as text then "\n": a
            # report written between the two lands at the end of the log line. Split it off.
            cut = raw.find('{"fault"')
            line = raw
            if cut > 0:
                self.output.append(raw[:cut])
                line = raw[cut:]
            report: Any = None
            glued = line.find('{"fault"', 1)
            if glued > 0:
                # stdout (reports) and stderr (logs) share the pipe: a log line written by another
                # thread can end up in front of a report, with its newline after it
                self.output.append(line[:glued])
                line = line[glued:]
            if line.startswith("{"):
                try:
                    report = json.loads(line)
                except ValueError:
                    report = None
            if isinstance(report, dict) and "fault" in report:
                self.reports.put(report)
            else:
                self.output.append(line.rstrip())
                del self.output[:-100]
        self.reports.put(None)

    def expect(self, name: str, timeout: float) -> dict[str, Any]:
        import queue

        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                item = self.reports.get(timeout=remaining)
            except queue.Empty:
                break
            if item is None:
                self.reports.put(None)
                raise AssertionError(f"process exited ({self.proc.poll()}) before {name!r}:\n"
                                     + "\n".join(self.output[-30:]))
            if item.get("fault") == name:
                return item
        raise AssertionError(f"no {name!r} within {timeout}s:\n" + "\n".join(self.output[-30:]))

    def kill(self, sig: int = 9) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except Exception:
            self.proc.kill()
            self.proc.wait(5)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
        self._reader.join(5)
