"""pytest plugin: the ``envtest`` fixture, the ``--envtest-backend`` option, the ``emulator_only`` marker.

Registered through the ``pytest11`` entry point, so any project that installs rook-py gets it, the
way controller-runtime users get ``envtest.Environment`` from a library rather than from their own
test helpers.

Backend choice, first match wins: ``--envtest-backend``, ``$ROOK_ENVTEST_BACKEND``, then automatic
(a real control plane when ``$KUBEBUILDER_ASSETS`` holds ``etcd`` and ``kube-apiserver``, else the
emulator). Tests that need what only the emulator provides (fault injection, the simulated kubelet,
controller-manager behaviour such as garbage collection) carry
``@pytest.mark.emulator_only(reason="...")``, the reason saying what a real control plane lacks for
them, and are skipped with that reason on a real control plane.

Nothing heavy is imported at plugin load: pytest loads this module for every run in the
environment, including runs that never touch envtest.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rook_py.envtest.environment import Environment

BACKEND_ENV = "ROOK_ENVTEST_BACKEND"
_CHOICES = ("auto", "emulator", "real")
MARKER = "emulator_only"
MARKER_HELP = (
    "emulator_only(reason): needs the envtest emulator; reason says what a real control plane lacks "
    "for the test (fault injection, a kubelet, the controller-manager); skipped on a real control plane"
)
GENERIC_REASON = "fault injection, simulated kubelet or controller-manager behaviour"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("envtest", "rook-py envtest")
    group.addoption(
        "--envtest-backend",
        action="store",
        choices=_CHOICES,
        default=None,
        help=f"API back end for the envtest fixture (default: ${BACKEND_ENV} or auto: a real "
             "control plane when $KUBEBUILDER_ASSETS holds etcd and kube-apiserver, else the emulator)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Registering here as well as in the project's setup.cfg keeps --strict-markers happy for
    # third-party projects that use the plugin without declaring the marker themselves.
    config.addinivalue_line("markers", MARKER_HELP)


def requested_backend(config: pytest.Config) -> str | None:
    """The backend asked for on the command line or in the environment; None means automatic."""
    value = config.getoption("--envtest-backend", default=None) or os.environ.get(BACKEND_ENV) or None
    if value is not None and value not in _CHOICES:
        raise pytest.UsageError(f"${BACKEND_ENV}={value!r}: expected one of {', '.join(_CHOICES)}")
    return None if value in (None, "auto") else str(value)


def selected_backend(config: pytest.Config) -> str:
    """The backend this session runs against ("emulator" or "real")."""
    from rook_py.envtest.environment import resolve_backend

    return resolve_backend(requested_backend(config))


def pytest_report_header(config: pytest.Config) -> str:
    try:
        return f"envtest backend: {selected_backend(config)}"
    except Exception as exc:  # a bad KUBEBUILDER_ASSETS must not hide the test run's own errors
        return f"envtest backend: unavailable ({exc})"


def marker_reason(marker: pytest.Mark) -> str:
    """What a real control plane lacks for a test, as its ``emulator_only`` marker says it:
    ``reason=...`` or the first positional argument; a generic phrase for a bare marker."""
    reason = marker.kwargs.get("reason", marker.args[0] if marker.args else None)
    return str(reason) if reason else GENERIC_REASON


def pytest_runtest_setup(item: pytest.Item) -> None:
    # Done per item rather than inside the fixture so that emulator-only tests that do not use the
    # fixture (for example ones that start a SimulatedCluster directly) are skipped as well.
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return
    backend = selected_backend(item.config)
    if backend != "emulator":
        pytest.skip(f"needs the envtest emulator: {marker_reason(marker)}; running against the {backend} "
                    "control plane")


WARM_ENV = "ROOK_ENVTEST_WARM"


class WarmControlPlanes:
    """Fresh real control planes without waiting for them: kube-apiserver takes ~3 s to start
    (its post-start hooks), which, paid by every test, was most of a real-server run. The next
    test's control plane starts while the current test runs, and a used one stops in the
    background. Each test still gets a new etcd and kube-apiserver of its own."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._next: tuple[threading.Thread, dict[str, Any]] | None = None
        self._stopping: list[threading.Thread] = []

    def _begin(self) -> None:
        from rook_py.envtest.environment import Environment

        box: dict[str, Any] = {}

        def start() -> None:
            try:
                box["env"] = Environment(backend=self.backend).start()
            except BaseException as exc:  # re-raised in the test that takes it
                box["error"] = exc

        thread = threading.Thread(target=start, name="envtest-warm-start", daemon=True)
        thread.start()
        self._next = (thread, box)

    def take(self) -> Environment:
        if self._next is None:
            self._begin()
        assert self._next is not None
        thread, box = self._next
        self._next = None
        thread.join()
        if "error" in box:
            raise box["error"]
        self._begin()
        env: Environment = box["env"]
        return env

    def release(self, env: Environment) -> None:
        self._stopping = [t for t in self._stopping if t.is_alive()]
        thread = threading.Thread(target=env.stop, name="envtest-stop", daemon=True)
        thread.start()
        self._stopping.append(thread)

    def close(self) -> None:
        if self._next is not None:
            thread, box = self._next
            self._next = None
            thread.join()
            if "env" in box:
                box["env"].stop()
        for thread in self._stopping:
            thread.join()
        self._stopping = []


_warm: dict[str, WarmControlPlanes] = {}


def _warm_for(backend: str) -> WarmControlPlanes | None:
    """Only real control planes are kept warm (the emulator starts in milliseconds);
    ``ROOK_ENVTEST_WARM=0`` turns it off."""
    if backend != "real" or os.environ.get(WARM_ENV, "1").lower() in ("0", "false", "no"):
        return None
    if backend not in _warm:
        _warm[backend] = WarmControlPlanes(backend)
    return _warm[backend]


def pytest_sessionfinish(session: pytest.Session) -> None:
    for warm in _warm.values():
        warm.close()
    _warm.clear()


@pytest.fixture
def envtest(request: pytest.FixtureRequest) -> Iterator[Environment]:
    """A fresh, started Environment for one test; stopped (and its temp files removed) afterwards."""
    from rook_py.envtest.environment import Environment

    backend = selected_backend(request.config)
    warm = _warm_for(backend)
    if warm is None:
        with Environment(backend=backend) as env:
            yield env
        return
    env = warm.take()
    try:
        yield env
    finally:
        warm.release(env)
