"""Release numbers of ChubaoFS / CubeFS as spec.chubaofs.version takes them."""

from __future__ import annotations

import pytest

from rook_py.chubaofs.versions import (
    DEFAULT_VERSION,
    TESTED_VERSIONS,
    Release,
    check_supported,
    parse_release,
)


def test_parse_accepts_a_leading_v_and_orders_numerically() -> None:
    assert parse_release("v3.5.2") == parse_release("3.5.2") == Release(3, 5, 2)
    assert parse_release("3.10.0") > parse_release("3.9.9") > parse_release("2.4.1")
    assert str(parse_release("v2.4.0")) == "2.4.0"


@pytest.mark.parametrize("text", ["3.5", "latest", "3.5.2-rc1", "", "v", "3..2", "1.2.3.4"])
def test_parse_refuses_anything_but_three_numbers(text: str) -> None:
    with pytest.raises(ValueError, match="not a release number"):
        parse_release(text)


def test_the_project_is_named_as_it_was_at_that_release() -> None:
    assert parse_release("2.5.0").display == "ChubaoFS 2.5.0"
    assert parse_release("3.0.0").display == "CubeFS 3.0.0"


@pytest.mark.parametrize(("text", "ok"), [("2.0.0", True), ("3.99.0", True), ("1.5.1", False), ("4.0.0", False)])
def test_supported_range(text: str, ok: bool) -> None:
    if ok:
        assert check_supported(text) == parse_release(text)
    else:
        with pytest.raises(ValueError, match="not supported"):
            check_supported(text)


def test_default_and_tested_releases_are_supported() -> None:
    for text in (DEFAULT_VERSION, *TESTED_VERSIONS):
        check_supported(text)
    assert DEFAULT_VERSION in TESTED_VERSIONS
