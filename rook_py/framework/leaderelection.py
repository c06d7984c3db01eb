"""Leader election on a ``coordination.k8s.io/v1`` Lease, after client-go tools/leaderelection.

Protocol (leaderelection.go ``tryAcquireOrRenew``, resourcelock/leaselock.go):

* The Lease's spec is the election record: ``holderIdentity``, ``leaseDurationSeconds``,
  ``acquireTime``, ``renewTime``, ``leaseTransitions``. Every write is a PUT carrying the
  ``resourceVersion`` last read, so two candidates racing for one Lease cannot both win: the
  loser gets a 409 Conflict.
* Expiry is judged on the *local monotonic clock*: a candidate notes when it last saw the record
  change and treats the lease as held until ``leaseDurationSeconds`` (the holder's own declared
  duration) have passed since then. Clocks of different machines are never compared.
* A leader renews every ``retry_period``; if it cannot renew within ``renew_deadline`` it
  considers the lease lost and stops. The requests themselves are bounded by that deadline
  (``Client.deadline``), as client-go's renew runs under a ``RenewDeadline`` context: a hung
  (not refusing) API server is noticed at the deadline, not after the client's 30 s timeout. ``lease_duration > renew_deadline`` guarantees the old
  leader has stopped before anyone else may take over.
* On a clean shutdown the leader releases the lease by writing an empty ``holderIdentity``, so a
  standby takes over at its next retry instead of waiting a whole lease duration.

Write fencing (``WriteFence``). client-go's election does not fence (its package doc,
staging/src/k8s.io/client-go/tools/leaderelection/doc.go, says so): a leader that is frozen past
its lease (SIGSTOP, a long GC pause, a stalled VM) wakes up believing it leads, and its workers'
queued writes go out before its renew loop notices. The fence closes that gap on the client side:
every mutating request of the manager's client asks the fence first, as late as possible before
the bytes leave (``Client.write_guard``), and the fence allows it only while the last successful
acquire/renew was *sent* less than ``renew_deadline`` ago on the local monotonic clock. A standby
starts its expiry countdown no earlier than it observes that write, and only takes over
``lease_duration > renew_deadline`` later, so while the fence is open no standby can lead (with
equal clock rates; the ``lease_duration - renew_deadline`` margin absorbs the request's flight
time and rate skew). A frozen process's monotonic clock keeps running, so on resume the check
fails at once. Once closed, the fence stays closed (leadership is lost for good, as after a failed
renewal); the renew loop itself writes only while the fence is open, and release is attempted
only then too. Reads are never fenced. What remains is inherent to a client-side fence: a request
frozen *between* the check and the socket write still goes out on resume (at most one per
thread); Kubernetes has no server-side fencing token, so such a write is caught only by the
object's own preconditions (resourceVersion on updates, AlreadyExists on creates).
"""

from __future__ import annotations

import contextlib
import copy
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rook_py.framework import metrics
from rook_py.framework.client.errors import ApiError, NotFound
from rook_py.framework.kube.times import format_micro_time, parse_time_or_none
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
log = get_logger(__name__)

JITTER_FACTOR = 1.2  # client-go's leaderelection.JitterFactor
LEASE_API_VERSION = "coordination.k8s.io/v1"


class LeaderElectionLost(RuntimeError):
    """This process lost (or could not keep) its lease; it must exit non-zero and restart."""


class NotLeader(LeaderElectionLost):
    """A mutating request was refused *before it was sent*: this process can no longer be sure it
    holds the lease (see ``WriteFence``). Not an ``ApiError``: the server never saw the request.
    A controller stops on it instead of retrying (another process leads now)."""


class WriteFence:
    """Decides whether this process may still send mutating requests. Thread-safe.

    States: *open* (never led, or released the lease after leader-only work drained: writes pass,
    as without election), *leading* (writes pass while ``clock() - renewed_at < renew_deadline``,
    where ``renewed_at`` is when the last successful acquire/renew was sent), *lost* (latched:
    every write is refused from then on). ``on_lost(reason)`` runs once, on the thread that closed
    the fence. ``clock`` must be the elector's clock.
    """

    OPEN, LEADING, LOST = "open", "leading", "lost"

    def __init__(self, renew_deadline: float, *, clock: Callable[[], float] = time.monotonic,
                 on_lost: Callable[[str], None] | None = None, name: str = "") -> None:
        if renew_deadline <= 0:
            raise ValueError("renew_deadline must be greater than zero")
        self.renew_deadline = renew_deadline
        self.name = name
        self._clock = clock
        self._on_lost = on_lost
        self._lock = threading.Lock()
        self._renewed_at = 0.0
        self._state = self.OPEN

    @property
    def state(self) -> str:
        return self._state

    def renewed(self, sent_at: float) -> None:
        """A write of our record, sent at ``sent_at`` (elector clock), succeeded. No-op once lost."""
        with self._lock:
            if self._state == self.LOST:
                return
            # Order matters for the lock-free reader in ``check``: the time first, then the state.
            self._renewed_at = sent_at
            self._state = self.LEADING

    def released(self) -> None:
        """We gave the lease up cleanly (nothing leader-only runs any more): open again."""
        with self._lock:
            if self._state == self.LEADING:
                self._state = self.OPEN

    def expires_at(self) -> float:
        """When ``holds`` turns False unless a renewal succeeds first (elector clock)."""
        return self._renewed_at + self.renew_deadline

    def holds(self) -> bool:
        """True while leading and the last renewal was sent less than ``renew_deadline`` ago."""
        return (self._state == self.LEADING
                and self._clock() - self._renewed_at < self.renew_deadline)

    def lose(self, reason: str) -> None:
        """Close the fence for good (idempotent); the first call runs ``on_lost``."""
        with self._lock:
            if self._state == self.LOST:
                return
            self._state = self.LOST
        log.error("write fence closed; this process no longer leads", lease=self.name, reason=reason)
        if self._on_lost is not None:
            self._on_lost(reason)

    def check(self, method: str, path: str) -> None:
        """The client's ``write_guard``: return to let the write go, raise ``NotLeader`` if not.

        Runs before every mutating request (and before each retry of one), so the common case
        reads two attributes without taking the lock.
        """
        state = self._state
        if state == self.OPEN:
            return
        if state == self.LEADING:
            age = self._clock() - self._renewed_at
            if age < self.renew_deadline:
                return
            self.lose(f"last successful renewal was {age:.3f}s ago (renew deadline "
                      f"{self.renew_deadline}s)")
        raise NotLeader(f"refusing {method} {path}: this process can no longer be sure it holds "
                        f"lease {self.name!r}")




@dataclass(frozen=True)
class LeaderElectionRecord:
    """The election state stored in a Lease's spec (resourcelock.LeaderElectionRecord)."""

    holder_identity: str = ""
    lease_duration_seconds: int = 0
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    leader_transitions: int = 0

    @classmethod
    def from_lease_spec(cls, spec: JSON) -> LeaderElectionRecord:
        return cls(
            holder_identity=spec.get("holderIdentity") or "",
            lease_duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
            acquire_time=parse_time_or_none(spec.get("acquireTime")),
            renew_time=parse_time_or_none(spec.get("renewTime")),
            leader_transitions=int(spec.get("leaseTransitions") or 0),
        )

    def to_lease_spec(self) -> JSON:
        spec: JSON = {
            "holderIdentity": self.holder_identity,
            "leaseDurationSeconds": self.lease_duration_seconds,
            "leaseTransitions": self.leader_transitions,
        }
        if self.acquire_time is not None:
            spec["acquireTime"] = format_micro_time(self.acquire_time)
        if self.renew_time is not None:
            spec["renewTime"] = format_micro_time(self.renew_time)
        return spec


class LeaseLock:
    """A resource lock backed by one Lease. Not thread-safe: owned by one LeaderElector.

    ``get`` remembers the Lease it read; ``update`` writes on top of it (so the PUT carries its
    resourceVersion). ``get`` raises ``NotFound`` when the Lease does not exist yet.
    """

    def __init__(self, client: Any, namespace: str, name: str, identity: str) -> None:
        if not identity:
            raise ValueError("leader election requires a non-empty identity")
        self.client = client
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self._lease: JSON | None = None

    def describe(self) -> str:
        return f"{self.namespace}/{self.name}"

    @contextlib.contextmanager
    def bounded(self, deadline: float | None) -> Iterator[None]:
        """Requests inside end by ``deadline`` (monotonic) when the client can bound them
        (``Client.deadline``); a client without it (a test fake) is used as it is."""
        bound = getattr(self.client, "deadline", None)
        if deadline is None or bound is None:
            yield
            return
        with bound(deadline):
            yield

    def get(self) -> tuple[LeaderElectionRecord, JSON]:
        """The record, and the raw spec (compared to detect a change of the record)."""
        lease: JSON = self.client.get(LEASE_API_VERSION, "Lease", self.name, self.namespace)
        self._lease = lease
        spec = dict(lease.get("spec") or {})
        return LeaderElectionRecord.from_lease_spec(spec), spec

    def create(self, record: LeaderElectionRecord) -> None:
        self._lease = self.client.create({
            "apiVersion": LEASE_API_VERSION, "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_lease_spec(),
        }, namespace=self.namespace)

    def update(self, record: LeaderElectionRecord) -> None:
        if self._lease is None:
            raise RuntimeError("lease not initialized; call get or create first")
        lease = copy.deepcopy(self._lease)
        lease.setdefault("apiVersion", LEASE_API_VERSION)
        lease.setdefault("kind", "Lease")
        lease["spec"] = record.to_lease_spec()
        self._lease = self.client.update(lease)


def validate_timing(lease_duration: float, renew_deadline: float, retry_period: float) -> None:
    """client-go's NewLeaderElector checks: all positive, lease > renew > JitterFactor * retry."""
    if lease_duration <= 0 or renew_deadline <= 0 or retry_period <= 0:
        raise ValueError("lease_duration, renew_deadline and retry_period must be greater than zero")
    if lease_duration <= renew_deadline:
        raise ValueError("lease_duration must be greater than renew_deadline")
    if renew_deadline <= JITTER_FACTOR * retry_period:
        raise ValueError("renew_deadline must be greater than retry_period*JitterFactor "
                         f"({JITTER_FACTOR})")


@dataclass
class LeaderCallbacks:
    """``on_started_leading`` and ``on_new_leader`` run on the elector's thread: return promptly.

    ``on_stopped_leading`` runs whenever ``run`` returns, leader or not (as in client-go).
    """

    on_started_leading: Callable[[], None] = lambda: None
    on_stopped_leading: Callable[[], None] = lambda: None
    on_new_leader: Callable[[str], None] = field(default=lambda _identity: None)


class LeaderElector:
    """Acquires, renews and releases one lease. ``run`` blocks until stopped or the lease is lost."""

    def __init__(
        self,
        lock: LeaseLock,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        callbacks: LeaderCallbacks | None = None,
        release_on_cancel: bool = True,
        name: str = "",
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fence: WriteFence | None = None,
    ) -> None:
        """``fence`` (default: a new one over ``renew_deadline`` and ``clock``) is told of every
        successful acquire/renew; pass one that shares ``clock`` and ``renew_deadline``."""
        validate_timing(lease_duration, renew_deadline, retry_period)
        self.lock = lock
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self.callbacks = callbacks or LeaderCallbacks()
        self.release_on_cancel = release_on_cancel
        self.name = name or lock.name
        self._clock = clock
        self._wall = wall_clock
        self.fence = fence or WriteFence(renew_deadline, clock=clock, name=self.name)
        self._observed = LeaderElectionRecord()
        self._observed_raw: JSON | None = None
        self._observed_time = 0.0
        self._reported_leader = ""
        self._status = metrics.LEADER_ELECTION_STATUS.labels(self.name)
        self._status.set(0)

    # -- state -----------------------------------------------------------------------------------

    def is_leader(self) -> bool:
        return self._observed.holder_identity == self.lock.identity

    def get_leader(self) -> str:
        return self._observed.holder_identity

    def _set_observed(self, record: LeaderElectionRecord) -> None:
        self._observed = record
        self._observed_time = self._clock()

    def _lease_valid(self, now: float) -> bool:
        return self._observed_time + self._observed.lease_duration_seconds > now

    # -- protocol --------------------------------------------------------------------------------

    def try_acquire_or_renew(self, deadline: float | None = None) -> bool:
        """One attempt; True when this candidate holds the lease afterwards. Never raises ApiError
        (nor ``NotLeader``: a write the fence refused is a failed attempt). Its requests end by
        ``deadline`` (monotonic clock; the elector's clock must be ``time.monotonic`` for it)."""
        with self.lock.bounded(deadline):
            return self._try_acquire_or_renew()

    def _try_acquire_or_renew(self) -> bool:
        # Taken before any request: the fence counts from when our write was *sent*, which is no
        # later than when any standby can observe it (and restart its expiry countdown).
        sent_at = self._clock()
        now_wall = self._wall()
        desired = LeaderElectionRecord(
            holder_identity=self.lock.identity,
            # The wire field is whole seconds; round up so a sub-second test lease is never 0.
            lease_duration_seconds=max(1, math.ceil(self.lease_duration)),
            acquire_time=now_wall, renew_time=now_wall)
        # Fast path: the leader writes over the version it last saw, skipping the GET.
        if self.is_leader() and self._lease_valid(self._clock()):
            renewed = LeaderElectionRecord(desired.holder_identity, desired.lease_duration_seconds,
                                           self._observed.acquire_time, now_wall,
                                           self._observed.leader_transitions)
            try:
                self.lock.update(renewed)
                self._set_observed(renewed)
                self._observed_raw = renewed.to_lease_spec()
                self.fence.renewed(sent_at)
                return True
            except NotLeader:
                return False
            except ApiError as err:
                log.info("optimistic lease renewal failed; re-reading", lease=self.lock.describe(),
                         error=str(err))
        try:
            old, raw = self.lock.get()
        except NotFound:
            try:
                self.lock.create(desired)
            except NotLeader:
                return False
            except ApiError as err:
                log.info("creating lease failed", lease=self.lock.describe(), error=str(err))
                return False
            self._set_observed(desired)
            self._observed_raw = desired.to_lease_spec()
            self.fence.renewed(sent_at)
            return True
        except ApiError as err:
            log.warning("reading lease failed", lease=self.lock.describe(), error=str(err))
            return False
        if raw != self._observed_raw:
            # The record changed since we last looked: restart the expiry clock from now.
            self._set_observed(old)
            self._observed_raw = raw
        if old.holder_identity and self._lease_valid(self._clock()) and not self.is_leader():
            return False
        if self.is_leader():
            record = LeaderElectionRecord(desired.holder_identity, desired.lease_duration_seconds,
                                          old.acquire_time, now_wall, old.leader_transitions)
        else:
            record = LeaderElectionRecord(desired.holder_identity, desired.lease_duration_seconds,
                                          now_wall, now_wall, old.leader_transitions + 1)
        try:
            self.lock.update(record)
        except NotLeader:
            return False
        except ApiError as err:
            log.info("updating lease failed", lease=self.lock.describe(), error=str(err))
            return False
        self._set_observed(record)
        self._observed_raw = record.to_lease_spec()
        self.fence.renewed(sent_at)
        return True

    def release(self) -> bool:
        """Give the lease up (empty holder) if we hold it; True when nothing is left to release.

        As client-go's ``release`` (leaderelection.go), only a leader releases; beyond that, only
        while our own fence is still open: past ``renew_deadline`` another candidate may already
        lead, and although our PUT would then fail on its stale resourceVersion, a process that is
        not sure it leads sends no write at all. False when the lease was not released.
        """
        if not self.is_leader():
            return True
        if not self.fence.holds():
            log.warning("not releasing lease: it may already have passed to another candidate",
                        lease=self.lock.describe())
            return False
        now_wall = self._wall()
        record = LeaderElectionRecord(holder_identity="", lease_duration_seconds=1,
                                      acquire_time=now_wall, renew_time=now_wall,
                                      leader_transitions=self._observed.leader_transitions)
        try:
            # Past the fence's expiry a release is pointless (see above): never wait longer.
            with self.lock.bounded(self._deadline(self.fence.expires_at())):
                self.lock.update(record)
        except (ApiError, NotLeader) as err:
            log.error("failed to release lease", lease=self.lock.describe(), error=str(err))
            return False
        self._set_observed(record)
        self.fence.released()
        log.info("released lease", lease=self.lock.describe())
        return True

    def _report_transition(self) -> None:
        leader = self._observed.holder_identity
        if leader and leader != self._reported_leader:
            self._reported_leader = leader
            log.info("new leader elected", lease=self.lock.describe(), leader=leader)
            self.callbacks.on_new_leader(leader)

    def _acquire(self, stop: threading.Event) -> bool:
        log.info("attempting to acquire leader lease", lease=self.lock.describe(),
                 identity=self.lock.identity)
        while not stop.is_set():
            # An answer later than renew_deadline is of no use to a candidate either.
            acquired = self.try_acquire_or_renew(self._deadline(self._clock() + self.renew_deadline))
            self._report_transition()
            if acquired:
                log.info("successfully acquired lease", lease=self.lock.describe())
                self._status.set(1)
                return True
            # wait.JitterUntil: retry_period plus up to JITTER_FACTOR * retry_period of jitter.
            stop.wait(self.retry_period * (1 + random.random() * JITTER_FACTOR))
        return False

    def _deadline(self, at: float) -> float | None:
        """``at`` as a request deadline, when the elector runs on the monotonic clock the client
        measures deadlines on (tests drive a fake clock and a fake client instead)."""
        return at if self._clock is time.monotonic else None

    def _renew_once(self) -> bool:
        """One renewal, attempted only while the fence is open: once this process cannot be sure
        it still leads (e.g. it just woke from a freeze), it sends no lease write either. Its
        requests end when the fence would close, so a hung server cannot hold it past that."""
        return (self.fence.holds()
                and self.try_acquire_or_renew(self._deadline(self.fence.expires_at()))
                and self.fence.holds())

    def _renew(self, stop: threading.Event) -> None:
        """Renew every retry_period; give up at the renew deadline (counted, as the write fence
        counts, from when the last successful renewal was sent), or at once when the fence has
        closed (leadership is then lost for good)."""
        while not stop.wait(self.retry_period):
            renewed = self._renew_once()
            # wait.PollUntilContextTimeout: retry every retry_period until the deadline passes.
            while not renewed and not stop.is_set() and self.fence.holds():
                stop.wait(min(self.retry_period, max(0.0, self.fence.expires_at() - self._clock())))
                renewed = self._renew_once()
            self._report_transition()
            if not renewed:
                self._status.set(0)
                if not stop.is_set():
                    log.error("failed to renew lease; leadership lost", lease=self.lock.describe())
                    self.fence.lose("failed to renew the lease within renew_deadline")
                return

    def run(self, stop: threading.Event) -> None:
        """Campaign, lead until ``stop`` is set or renewal fails, then release and call back."""
        try:
            if not self._acquire(stop):
                return
            self.callbacks.on_started_leading()
            self._renew(stop)
        finally:
            self._status.set(0)
            if self.release_on_cancel:
                self.release()
            self.callbacks.on_stopped_leading()
