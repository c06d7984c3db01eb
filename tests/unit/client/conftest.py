"""Fixtures for the client unit tests: a scripted fake API server and a client bound to it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from rook_py.framework.client import Client, RestConfig
from tests.unit.client.fake_apiserver import FakeAPIServer


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server: FakeAPIServer, sleeps: list[float]) -> Iterator[Client]:
    c = Client(RestConfig.for_host(server.url, token="s3cret"), timeout=2.0, user_agent="ut/1",
               sleep=sleeps.append)
    try:
        yield c
    finally:
        c.close()
