"""cmdline.require_node_identity: the node daemons' shared NODE_NAME/POD_NAMESPACE check."""

from __future__ import annotations

from typing import Any

import pytest

from rook_py.framework.cmdline import Fatal, require_node_identity


def test_returns_node_and_namespace() -> None:
    assert require_node_identity({"node_name": "node-1", "namespace": "rook", "other": 1}) == ("node-1", "rook")


@pytest.mark.parametrize(("values", "missing"), [
    ({"namespace": "rook"}, "NODE_NAME is not set: pass --node-name"),
    ({"node_name": "", "namespace": "rook"}, "NODE_NAME is not set"),
    ({"node_name": "node-1", "namespace": None}, "POD_NAMESPACE is not set: pass --namespace"),
    ({}, "NODE_NAME is not set"),  # the node is checked first
])
def test_missing_identity_is_fatal_and_names_the_variable(values: dict[str, Any], missing: str) -> None:
    with pytest.raises(Fatal, match=missing):
        require_node_identity(values)
