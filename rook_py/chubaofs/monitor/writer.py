"""The monitor controller's writes to a ChubaoMonitor's objects, each announced by an Event.

One place for them so the controller and the storage transitions (:mod:`.storage`) write and
report the same way: ``apply`` writes only differences (a steady-state pass makes no request),
and every create, update or delete leaves a Normal Event on the ChubaoMonitor.
"""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.monitor.common import MonitorContext, describe
from rook_py.framework import objects
from rook_py.framework.client.errors import AlreadyExists, NotFound
from rook_py.framework.logging import get_logger

JSON = dict[str, Any]
NORMAL, WARNING = "Normal", "Warning"
#: the server-side apply field manager of everything the ChubaoFS provider applies (rook-<provider>)
FIELD_MANAGER = "rook-chubaofs"
log = get_logger(__name__)


class Writer:
    """Writes through the API client, reads through the cache, reports through the recorder."""

    def __init__(self, client: Any, reader: Any, recorder: Any) -> None:
        self.client = client
        self._reader = reader
        self._recorder = recorder

    def event(self, monitor: JSON, type_: str, reason: str, message: str) -> None:
        self._recorder.event(monitor, type_, reason, message)

    def apply(self, ctx: MonitorContext, desired: JSON) -> JSON:
        """Create or update ``desired`` when it differs from what exists; the object as stored."""
        result = objects.apply(self.client, desired, reader=self._reader, field_manager=FIELD_MANAGER)
        if result.action in ("created", "updated"):
            self.event(ctx.monitor, NORMAL, result.action.capitalize(),
                       f"{result.action.capitalize()} {describe(desired)}")
            log.info(f"{result.action} object", kind=desired["kind"], object=desired["metadata"]["name"])
        obj: JSON = result.object
        return obj

    def create_if_absent(self, ctx: MonitorContext, obj: JSON) -> None:
        """For objects whose content must never change once made (a generated password)."""
        if self._reader.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                            ctx.namespace) is not None:
            return
        try:
            self.client.create(obj, namespace=ctx.namespace)
        except AlreadyExists:
            return  # the cache was behind; the existing one stays
        self.event(ctx.monitor, NORMAL, "Created", f"Created {describe(obj)}")

    def delete(self, ctx: MonitorContext, obj: JSON, why: str = "no longer wanted", *,
               propagation: str = "Background") -> None:
        try:
            self.client.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"],
                               ctx.namespace, propagation_policy=propagation)
        except NotFound:
            return
        self.event(ctx.monitor, NORMAL, "Deleted", f"Deleted {describe(obj)}: {why}")
