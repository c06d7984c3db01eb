"""Admission and conversion webhooks: server, typed handlers, certificates (see each module)."""

from rook_py.framework.webhook.admission import (
    AdmissionRequest,
    CustomDefaulter,
    CustomValidator,
    Denied,
    FieldError,
    FieldErrors,
    forbidden,
    invalid,
    not_supported,
    required,
)
from rook_py.framework.webhook.builder import WebhookBuilder, webhook_path
from rook_py.framework.webhook.certs import (
    CertDir,
    CertOptions,
    CertSource,
    KeyPair,
    SelfManagedCerts,
    StaticCert,
    make_ca,
    make_serving_cert,
)
from rook_py.framework.webhook.conversion import ConversionHandler, Hub
from rook_py.framework.webhook.jsonpatch import diff as json_patch_diff
from rook_py.framework.webhook.server import MAX_BODY, WebhookServer

__all__ = [
    "MAX_BODY", "AdmissionRequest", "CertDir", "CertOptions", "CertSource", "ConversionHandler",
    "CustomDefaulter", "CustomValidator", "Denied", "FieldError", "FieldErrors", "Hub", "KeyPair",
    "SelfManagedCerts", "StaticCert", "WebhookBuilder", "WebhookServer", "forbidden", "invalid",
    "json_patch_diff", "make_ca", "make_serving_cert", "not_supported", "required", "webhook_path",
]
