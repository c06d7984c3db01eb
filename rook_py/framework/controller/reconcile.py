"""The reconciler's surface: Request in, Result (or an exception) out.

Semantics follow controller-runtime pkg/reconcile/reconcile.go:

* a ``Request`` names one object (namespace/name); it carries no event type or object body, so a
  reconciler must read the current state and converge to it (level-triggered, not edge-triggered);
* returning ``None`` or ``Result()`` means "done": the key's rate-limiter history is forgotten;
* ``Result(requeue_after=s)`` re-adds the key after ``s`` seconds (and forgets its failures);
* ``Result(requeue=True)`` re-adds the key through the rate limiter;
* raising any exception re-adds the key through the rate limiter, except ``TerminalError``, which is
  logged and counted but never retried (the next watch event for the object starts afresh).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Request:
    """The key of one object to reconcile. ``namespace`` is ``None`` for cluster-scoped objects.

    Frozen and hashable: it is the workqueue item, and the workqueue deduplicates on equality.
    """

    namespace: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name


@dataclass(frozen=True, slots=True)
class Result:
    """What the controller does with the key after a reconcile that did not raise.

    ``requeue_after`` wins over ``requeue`` when both are set, as in controller-runtime.
    """

    requeue: bool = False
    requeue_after: float | None = None

    def __post_init__(self) -> None:
        if self.requeue_after is not None and self.requeue_after < 0:
            raise ValueError(f"requeue_after must be >= 0, got {self.requeue_after}")

    def is_zero(self) -> bool:
        return not self.requeue and not self.requeue_after


class TerminalError(Exception):
    """An error retrying cannot fix (e.g. an invalid spec). Logged and counted, never requeued.

    Raise it directly, or wrap a cause: ``raise TerminalError("bad spec") from err``.
    """


@runtime_checkable
class Reconciler(Protocol):
    """Drives the object named by ``request`` toward its desired state; must be idempotent."""

    def reconcile(self, request: Request) -> Result | None: ...
