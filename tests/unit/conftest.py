"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.client.fake_apiserver import FakeAPIServer


@pytest.fixture
def server() -> Iterator[FakeAPIServer]:
    """A scripted fake API server on 127.0.0.1, stopped after the test."""
    srv = FakeAPIServer().start()
    try:
        yield srv
    finally:
        srv.stop()
