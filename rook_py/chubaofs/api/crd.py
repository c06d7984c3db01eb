"""The ``CustomResourceDefinition`` of ``ChubaoMonitor`` (apiextensions.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from rook_py.chubaofs.api import types as t
from rook_py.chubaofs.api.schema import open_api_v3_schema

JSON = dict[str, Any]


def _ready_column(component: str) -> JSON:
    title = component.capitalize()
    return {"name": title, "type": "boolean",
            "description": f"Whether {title} is ready.",
            "jsonPath": f".status.components.{component}.ready"}


def chubao_monitor_crd() -> JSON:
    """A fresh CRD object, ready for ``client.create``/``apply``."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": t.CRD_NAME,
            "labels": {"app.kubernetes.io/part-of": "chubaofs",
                       "app.kubernetes.io/managed-by": "rook-chubaofs-operator"},
        },
        "spec": {
            "group": t.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": t.KIND,
                "listKind": t.LIST_KIND,
                "plural": t.PLURAL,
                "singular": t.SINGULAR,
                "shortNames": list(t.SHORT_NAMES),
                "categories": list(t.CATEGORIES),
            },
            "versions": [{
                "name": t.VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [
                    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                    _ready_column(t.PROMETHEUS),
                    _ready_column(t.ALERTMANAGER),
                    _ready_column(t.GRAFANA),
                    _ready_column(t.CONSUL),
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                ],
                "schema": {"openAPIV3Schema": open_api_v3_schema()},
            }],
        },
    }
