"""Wiring webhooks for a kind, beside ``ControllerBuilder`` (controller-runtime pkg/builder/webhook.go).

``WebhookBuilder(mgr).for_("rook.io/v1alpha1", "ChubaoMonitor").with_defaulter(d)
.with_validator(v).complete()`` registers ``/mutate-<group>-<version>-<kind>`` and
``/validate-<group>-<version>-<kind>`` (dots in the group become dashes, the kind is lower-cased,
as upstream's ``generateMutatePath``/``generateValidatePath``) on the manager's webhook server;
``with_conversion(hub)`` registers the kind's hub with the server's ``/convert`` handler.
"""

from __future__ import annotations

from typing import Any, Protocol

from rook_py.framework.webhook.admission import (
    CustomDefaulter,
    CustomValidator,
    defaulting_handle,
    validating_handle,
)
from rook_py.framework.webhook.conversion import Hub
from rook_py.framework.webhook.server import WebhookServer


class _Manager(Protocol):
    @property
    def webhook_server(self) -> WebhookServer | None: ...


def webhook_path(prefix: str, api_version: str, kind: str) -> str:
    group, _, version = api_version.rpartition("/")
    return f"/{prefix}-{group.replace('.', '-')}-{version}-{kind.lower()}" if group else \
        f"/{prefix}-core-{version}-{kind.lower()}"


class WebhookBuilder:
    def __init__(self, manager: _Manager | Any, server: WebhookServer | None = None) -> None:
        self._server = server or getattr(manager, "webhook_server", None)
        self._for: tuple[str, str] | None = None
        self._defaulter: CustomDefaulter | None = None
        self._validator: CustomValidator | None = None
        self._hub: Hub | None = None

    def for_(self, api_version: str, kind: str) -> WebhookBuilder:
        if self._for is not None:
            raise ValueError("for_ may be called only once")
        self._for = (api_version, kind)
        return self

    def with_defaulter(self, defaulter: CustomDefaulter) -> WebhookBuilder:
        self._defaulter = defaulter
        return self

    def with_validator(self, validator: CustomValidator) -> WebhookBuilder:
        self._validator = validator
        return self

    def with_conversion(self, hub: Hub) -> WebhookBuilder:
        self._hub = hub
        return self

    def complete(self) -> list[str]:
        """Register the handlers; returns the paths served."""
        if self._server is None:
            raise ValueError("the manager has no webhook server (Manager.set_webhook_server)")
        if self._for is None:
            raise ValueError("for_ must be called before complete")
        if not (self._defaulter or self._validator or self._hub):
            raise ValueError("a webhook needs a defaulter, a validator or a conversion hub")
        api_version, kind = self._for
        paths = []
        if self._defaulter is not None:
            path = webhook_path("mutate", api_version, kind)
            self._server.register_admission(path, defaulting_handle(self._defaulter))
            paths.append(path)
        if self._validator is not None:
            path = webhook_path("validate", api_version, kind)
            self._server.register_admission(path, validating_handle(self._validator))
            paths.append(path)
        if self._hub is not None:
            self._server.conversion().register(self._hub)
            paths.append("/convert")
        return paths
