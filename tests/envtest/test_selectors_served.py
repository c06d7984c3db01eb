"""The informer cache selects what the API server selects, and refuses what it refuses.

Hypothesis generates label selectors (valid and broken) and the same question goes to the API
server (a list with ``labelSelector``) and to the framework's ``CacheReader``: the same objects,
or the same 400 message. On the emulator both sides share ``kube.selectors``; with
``KUBEBUILDER_ASSETS`` set the server is a real kube-apiserver, and this checks the shared code
against it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rook_py.envtest import Environment
from rook_py.framework.cache import CacheReader, SharedInformerFactory
from rook_py.framework.client import errors
from rook_py.framework.kube.selectors import parse_field_selector

NS = "default"
KEYS = ["app", "tier", "n", "example.com/role", "in"]
VALUES = ["a", "b", "web", "1", "2", "10", "007", ""]


def _labels(rnd: random.Random) -> dict[str, str]:
    return {k: rnd.choice(VALUES) for k in KEYS if rnd.random() < 0.6}


@pytest.fixture
def served(envtest: Environment) -> Iterator[tuple[Any, CacheReader]]:
    client = envtest.client()
    rnd = random.Random(20240501)
    for i in range(16):
        client.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": f"sel-{i}", "namespace": NS, "labels": _labels(rnd)}})
    factory = SharedInformerFactory(client, namespace=NS)
    stop = threading.Event()
    factory.informer("v1", "ConfigMap")
    factory.start(stop)
    assert factory.wait_for_cache_sync(30)
    yield client, CacheReader(factory, sync_timeout=30)
    stop.set()
    factory.join(10)


_key = st.sampled_from([*KEYS, "bad key", "-x", "a/b/c"])
_value = st.sampled_from([*VALUES, "x y", "+1", "1.5", "(", "in"])
_term = st.one_of(
    st.builds(lambda k, op, v: f"{k}{op}{v}", _key, st.sampled_from(["=", "==", "!=", ">", "<", ">=", " "]), _value),
    st.builds(lambda k, op, vs: f"{k} {op} ({','.join(vs)})", _key, st.sampled_from(["in", "notin"]),
              st.lists(_value, max_size=3)),
    st.builds(lambda k: k, _key),
    st.builds(lambda k: f"!{k}", _key),
)
_selector = st.builds(lambda terms, sep: sep.join(terms), st.lists(_term, min_size=1, max_size=3),
                      st.sampled_from([",", ", ", ",,"]))


def _names(objs: list[Any]) -> list[str]:
    return sorted(o["metadata"]["name"] for o in objs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selector=_selector)
@example(selector="app in (a,,)")  # found by CI on kube-apiserver: refused there, accepted by us
def test_cache_selects_what_the_server_selects(served: tuple[Any, CacheReader], selector: str) -> None:
    client, reader = served
    try:
        expected = _names(client.list("v1", "ConfigMap", NS, label_selector=selector)["items"])
    except errors.BadRequest as exc:
        with pytest.raises(ValueError) as refused:
            reader.list("v1", "ConfigMap", NS, label_selector=selector)
        assert str(refused.value) == exc.message
        return
    assert _names(reader.list("v1", "ConfigMap", NS, label_selector=selector)) == expected


@pytest.mark.parametrize(("selector", "message"), [
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("metadata.name=a\\b", "invalid field selector: invalid escape sequence: \\b"),
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: 61"),
    ("x=y", '"x" is not a known field selector: only "metadata.name", "metadata.namespace"'),
])
def test_field_selector_errors_are_the_servers(envtest: Environment, selector: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        envtest.client().list("v1", "ConfigMap", NS, field_selector=selector)
    assert exc.value.message == message
    if not message.startswith('"x"'):  # the parser's own errors; the last one is the server's field table
        with pytest.raises(ValueError, match="invalid"):
            parse_field_selector(selector)
