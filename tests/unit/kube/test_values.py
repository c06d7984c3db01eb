"""kube.owners, kube.conditions and kube.times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from rook_py.framework.kube import conditions, owners, times

OWNER = {"apiVersion": "rook.io/v1", "kind": "ChubaoMonitor",
         "metadata": {"name": "m", "namespace": "ns", "uid": "u-1"}}


def test_controller_reference_is_new_controller_ref() -> None:
    assert owners.controller_reference(OWNER) == {
        "apiVersion": "rook.io/v1", "kind": "ChubaoMonitor", "name": "m", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True}
    plain = owners.owner_reference(OWNER, block_owner_deletion=False)
    assert plain["controller"] is False and plain["blockOwnerDeletion"] is False
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        owners.controller_reference({"apiVersion": "v1", "kind": "X", "metadata": {"name": "n"}})


def test_controller_of_and_is_controlled_by() -> None:
    child = {"metadata": {"ownerReferences": [owners.owner_reference(OWNER),
                                              owners.controller_reference(OWNER)]}}
    assert owners.controller_of(child) == owners.controller_reference(OWNER)
    assert owners.is_controlled_by(child, OWNER)
    recreated = {**OWNER, "metadata": {**OWNER["metadata"], "uid": "u-2"}}
    assert not owners.is_controlled_by(child, recreated)  # same name, another object
    assert owners.controller_of({"metadata": {}}) is None


def test_same_owner_ignores_the_version() -> None:
    a = {"apiVersion": "rook.io/v1", "kind": "K", "name": "n"}
    assert owners.same_owner(a, {"apiVersion": "rook.io/v2", "kind": "K", "name": "n"})
    assert not owners.same_owner(a, {"apiVersion": "other.io/v1", "kind": "K", "name": "n"})


def test_owner_scope() -> None:
    assert owners.owner_scope_error(OWNER, {"metadata": {"namespace": "ns"}}) is None
    assert "cross-namespace" in str(owners.owner_scope_error(OWNER, {"metadata": {"namespace": "other"}}))
    assert "cluster-scoped" in str(owners.owner_scope_error(OWNER, {"metadata": {}}))
    assert owners.owner_scope_error({"metadata": {"name": "node"}}, {"metadata": {"namespace": "x"}}) is None


def test_set_condition_moves_transition_time_only_on_status_change() -> None:
    clock = iter(["t1", "t2", "t3"])
    status: dict = {}
    assert conditions.set_condition(status, "Ready", "False", "Init", "starting", now=lambda: next(clock))
    assert conditions.set_condition(status, "Ready", "False", "Still", "waiting", 3, now=lambda: next(clock))
    assert conditions.get_condition(status, "Ready")["lastTransitionTime"] == "t1"
    assert not conditions.set_condition(status, "Ready", "False", "Still", "waiting", now=lambda: next(clock))
    assert conditions.set_condition(status, "Ready", "True", "Up", "ready", now=lambda: next(clock))
    ready = conditions.get_condition(status, "Ready")
    assert ready == {"type": "Ready", "status": "True", "lastTransitionTime": "t2", "reason": "Up",
                     "message": "ready", "observedGeneration": 3}
    assert conditions.is_condition_true(status, "Ready") and not conditions.is_condition_true(status, "Other")
    with pytest.raises(ValueError):
        conditions.set_condition(status, "Ready", "yes", "r", "m")


def test_times_are_metav1_time() -> None:
    t = datetime(2024, 5, 1, 12, 0, 0, 987654, tzinfo=timezone(timedelta(hours=2)))
    assert times.format_time(t) == "2024-05-01T10:00:00Z"  # UTC, fraction dropped
    assert times.format_micro_time(t) == "2024-05-01T10:00:00.987654Z"
    assert times.parse_time("2024-05-01T10:00:00Z") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert times.parse_time("2024-05-01T12:00:00.5+02:00") == datetime(2024, 5, 1, 10, 0, 0, 500000, tzinfo=UTC)
    for bad in ("2024-05-01", "2024-05-01T10:00:00", "yesterday"):
        with pytest.raises(ValueError):
            times.parse_time(bad)
        assert times.parse_time_or_none(bad) is None
    assert times.parse_time(times.now()) <= datetime.now(UTC)
