"""Running a Manager on a background thread in tests."""

from __future__ import annotations

import threading

from rook_py.framework.manager import Manager


class ManagerRun:
    """Starts ``mgr.start(stop)`` on a daemon thread at once; ``errors`` holds what it raised."""

    def __init__(self, mgr: Manager) -> None:
        self.mgr, self.stop = mgr, threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="manager", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.mgr.start(self.stop)
        except BaseException as err:  # reported by the test, never swallowed
            self.errors.append(err)

    @property
    def error(self) -> BaseException | None:
        return self.errors[0] if self.errors else None

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"manager did not stop within {timeout}s"
