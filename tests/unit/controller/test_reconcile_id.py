"""The per-reconcile log id: a well-formed random (version 4) UUID, distinct per reconcile."""

from __future__ import annotations

import os
import uuid

from rook_py.framework.controller import controller as controller_module


def test_reconcile_id_is_a_version_4_rfc_4122_uuid() -> None:
    for _ in range(100):
        parsed = uuid.UUID(controller_module._reconcile_id())
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_reconcile_ids_do_not_repeat() -> None:
    ids = {controller_module._reconcile_id() for _ in range(10_000)}
    assert len(ids) == 10_000


def test_reconcile_ids_differ_across_fork() -> None:
    # The stdlib reseeds the process PRNG in a forked child, so a forked operator does not
    # replay its parent's ids.
    if not hasattr(os, "fork"):
        return
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report one id and leave without running pytest's teardown
        os.close(read)
        os.write(write, controller_module._reconcile_id().encode())
        os._exit(0)
    os.close(write)
    try:
        child_id = os.read(read, 64).decode()
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert uuid.UUID(child_id).version == 4
    assert child_id != controller_module._reconcile_id()
