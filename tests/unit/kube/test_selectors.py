"""Label and field selectors: grammar, validation, canonical form and matching."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rook_py.framework.kube.selectors import (
    DOES_NOT_EXIST,
    EQUALS,
    EXISTS,
    IN,
    NOT_EQUALS,
    NOT_IN,
    FieldSelector,
    Requirement,
    Selector,
    escape_field_value,
    everything,
    fit_label_value,
    format_selector,
    nothing,
    parse_field_selector,
    parse_selector,
    selector_from_label_selector,
    validate_label_value,
    validate_qualified_name,
)

# --- parsing and canonical form ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("x=1,a=2", "a=2,x=1"),
        ("env in (prod, dev)", "env in (dev,prod)"),
        ("env notin (a,b,a)", "env notin (a,b)"),
        ("tier", "tier"),
        ("!tier", "!tier"),
        ("  a = b ,  !c ", "a=b,!c"),
        ("a=", "a="),
        ("example.com/role=db", "example.com/role=db"),
        ("k in ()", "k in ()"),
        ("n>5", "n>5"),
        ("n<5", "n<5"),
        ("in=notin", "in=notin"),
    ],
)
def test_parse_canonical_string(text: str, canonical: str) -> None:
    sel = parse_selector(text)
    assert str(sel) == canonical
    # The canonical form is a fixed point.
    assert parse_selector(str(sel)) == sel


# Messages recorded from kube-apiserver v1.28 (the message of the 400 a list with this
# labelSelector gets); tests/envtest/test_selectors_served.py checks them against a server.
_VALUE_ERR = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
              "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
              "'my_value',  or '12345', regex used for validation is "
              "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
_NAME_ERR = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
             "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
             "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
SERVER_MESSAGES = {
    "a=b,": "found '', expected: identifier after ','",
    "a=b,,c=d": "found ',', expected: identifier after ','",
    "!a=b": "found '=', expected: ',' or 'end of string'",
    "a in b": "unable to parse requirement: found 'b' expected: '('",
    ",a": "found ',', expected: !, identifier, or 'end of string'",
    "a b": "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt",
    "a=b c": "found 'c', expected: ',' or 'end of string'",
    "-a=b": f'unable to parse requirement: <nil>: Invalid value: "-a": {_NAME_ERR}',
    "a=-b": f'unable to parse requirement: values[0][a]: Invalid value: "-b": {_VALUE_ERR}',
    "a!!=b": "unable to parse requirement: found '!', expected: in, notin, =, ==, !=, gt, lt",
    "x in (a,b": "unable to parse requirement: found '', expected: ',' or ')'",
    "a in (b c)": "unable to parse requirement: found 'c', expected: ',' or ')'",
    "!": "unable to parse requirement: found '', expected: identifier",
    "a=(b)": "unable to parse requirement: found '(', expected: identifier",
    "a>=1": "unable to parse requirement: found '=', expected: identifier",
    "a>x": "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, "
           "the value must be an integer",
    "a>+1": f'unable to parse requirement: values[0][a]: Invalid value: "+1": {_VALUE_ERR}',
    "a>-1": f'unable to parse requirement: values[0][a]: Invalid value: "-1": {_VALUE_ERR}',
    "a>1.5": "unable to parse requirement: values[0]: Invalid value: \"1.5\": for 'Gt', 'Lt' operators, "
             "the value must be an integer",
    f"a={'x' * 64}": f'unable to parse requirement: values[0][a]: Invalid value: "{"x" * 64}": '
                     "must be no more than 63 characters",
}
#: accepted by kube-apiserver v1.28
SERVER_ACCEPTS = ["a>1", "a in ()", "a in (b,)", "a!=", "a==", "a=", "a/b=c", "in=b", "a=in",
                  "a in (in)", "a = b , c", "  ", "a in(x)", "!a,b", "a>1,a<5", "a>01"]


@pytest.mark.parametrize(("text", "message"), sorted(SERVER_MESSAGES.items()))
def test_parse_errors_are_the_servers(text: str, message: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_selector(text)
    assert str(exc.value) == message


@pytest.mark.parametrize("text", SERVER_ACCEPTS)
def test_parses_what_the_server_accepts(text: str) -> None:
    parse_selector(text)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a/b/c=d", "a qualified name must consist of"),
        ("Example.com/a=b", "prefix part"),
        ("/a=b", "prefix part must be non-empty"),
        (f"{'k' * 64}=v", "no more than 63 characters"),
    ],
)
def test_key_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_selector(text)
    assert fragment in str(exc.value)


def test_several_problems_are_aggregated_as_upstream() -> None:
    with pytest.raises(ValueError) as exc:
        parse_selector("a>x-")
    assert str(exc.value) == (
        "unable to parse requirement: [values[0]: Invalid value: \"x-\": for 'Gt', 'Lt' operators, the "
        f'value must be an integer, values[0][a]: Invalid value: "x-": {_VALUE_ERR}]')


# --- matching -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("a=b", {"a": "b"}, True),
        ("a=b", {"a": "c"}, False),
        ("a=b", {}, False),
        ("a==b", {"a": "b", "x": "y"}, True),
        ("a!=b", {"a": "c"}, True),
        ("a!=b", {"a": "b"}, False),
        ("a!=b", {}, True),  # A missing key satisfies !=.
        ("a in (x,y)", {"a": "y"}, True),
        ("a in (x,y)", {"a": "z"}, False),
        ("a in (x,y)", {}, False),
        ("a notin (x,y)", {"a": "z"}, True),
        ("a notin (x,y)", {}, True),  # ...and notin.
        ("a notin (x,y)", {"a": "x"}, False),
        ("a", {"a": ""}, True),
        ("a", {"b": "a"}, False),
        ("!a", {"b": "1"}, True),
        ("!a", {"a": "1"}, False),
        ("a=1,b", {"a": "1", "b": "2"}, True),
        ("a=1,b", {"a": "1"}, False),
        ("n>5", {"n": "6"}, True),
        ("n>5", {"n": "5"}, False),
        ("n<5", {"n": "x"}, False),
        ("", {}, True),
    ],
)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_selector(text).matches(labels) is expected


def test_everything_and_nothing() -> None:
    assert everything().empty()
    assert Selector.everything().matches({"any": "thing"})
    assert everything().matches(None)
    assert not nothing().empty()
    assert not nothing().matches({})
    assert str(nothing()) == ""
    assert nothing() != everything()


def test_requires_exact_match_and_add() -> None:
    sel = parse_selector("app=web,tier in (fe)")
    assert sel.requires_exact_match("app") == "web"
    assert sel.requires_exact_match("tier") == "fe"
    assert sel.requires_exact_match("other") is None
    bigger = sel.add(Requirement.new("zone", EXISTS))
    assert str(bigger) == "app=web,tier in (fe),zone"
    assert str(sel) == "app=web,tier in (fe)"  # Unchanged.


def test_requirement_new_validates_value_counts() -> None:
    with pytest.raises(ValueError, match="values set can't be empty"):
        Requirement.new("a", IN, [])
    with pytest.raises(ValueError, match="one single value"):
        Requirement.new("a", EQUALS, ["x", "y"])
    with pytest.raises(ValueError, match="must be empty"):
        Requirement.new("a", DOES_NOT_EXIST, ["x"])
    with pytest.raises(ValueError, match="Unsupported"):
        Requirement.new("a", "like", ["x"])


# --- metav1.LabelSelector --------------------------------------------------------------------------


def test_selector_from_label_selector() -> None:
    sel = selector_from_label_selector(
        {
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["fe", "be"]},
                {"key": "env", "operator": "NotIn", "values": ["dev"]},
                {"key": "zone", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == "app=web,env notin (dev),!legacy,tier in (be,fe),zone"
    assert sel.matches({"app": "web", "tier": "fe", "zone": "a"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "a", "legacy": "1"})
    assert not sel.matches({"app": "web", "tier": "fe", "zone": "a", "env": "dev"})
    assert [r.operator for r in sel.requirements] == [EQUALS, NOT_IN, DOES_NOT_EXIST, IN, EXISTS]


def test_selector_from_label_selector_edge_cases() -> None:
    assert not selector_from_label_selector(None).matches({})
    assert selector_from_label_selector({}).matches({"x": "y"})
    assert selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).empty()
    with pytest.raises(ValueError, match='"Like" is not a valid label selector operator'):
        selector_from_label_selector(
            {"matchExpressions": [{"key": "a", "operator": "Like", "values": ["x"]}]}
        )
    with pytest.raises(ValueError):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    with pytest.raises(ValueError):
        selector_from_label_selector({"matchLabels": {"bad key": "x"}})


def test_format_selector() -> None:
    assert format_selector({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_selector({}) == ""
    assert parse_selector(format_selector({"b": "2", "a": "1"})).matches({"a": "1", "b": "2"})


# --- validation helpers ----------------------------------------------------------------------------


def test_validate_qualified_name_and_value() -> None:
    assert validate_qualified_name("app.kubernetes.io/name") == []
    assert validate_qualified_name("a") == []
    assert validate_qualified_name("") == ["name part must be non-empty"]
    assert validate_qualified_name("a_b.c-D") == []
    assert validate_qualified_name("_a") != []
    assert validate_label_value("") == []
    assert validate_label_value("v1.2_x-y") == []
    assert validate_label_value("a b") != []


_key_part = st.from_regex(r"[a-z0-9]([a-z0-9_.-]{0,10}[a-z0-9])?", fullmatch=True)
_value = st.one_of(st.just(""), _key_part)


@given(
    st.dictionaries(_key_part, _value, max_size=4),
    st.lists(
        st.tuples(_key_part, st.sampled_from(["=", "!=", "in", "notin", "exists", "!"]), _value), max_size=4
    ),
)
def test_canonical_form_round_trips_and_keeps_meaning(
    labels: dict[str, str], terms: list[tuple[str, str, str]]
) -> None:
    parts = []
    for key, op, value in terms:
        if op in ("in", "notin"):
            parts.append(f"{key} {op} ({value})")
        elif op == "exists":
            parts.append(key)
        elif op == "!":
            parts.append(f"!{key}")
        else:
            parts.append(f"{key}{op}{value}")
    sel = parse_selector(",".join(parts))
    again = parse_selector(str(sel))
    assert again == sel
    assert again.matches(labels) == sel.matches(labels)


# --- field selectors -------------------------------------------------------------------------------


def test_field_selector_parse_and_match() -> None:
    sel = parse_field_selector("spec.nodeName=node-1,metadata.name!=skip")
    assert str(sel) == "metadata.name!=skip,spec.nodeName=node-1"  # Terms are sorted upstream.
    assert [(r.field, r.operator, r.value) for r in sel.requirements] == [
        ("metadata.name", NOT_EQUALS, "skip"),
        ("spec.nodeName", EQUALS, "node-1"),
    ]
    assert sel.matches({"spec.nodeName": "node-1", "metadata.name": "a"})
    assert not sel.matches({"spec.nodeName": "node-1", "metadata.name": "skip"})
    assert not sel.matches({"metadata.name": "a"})
    assert sel.requires_exact_match("spec.nodeName") == "node-1"
    assert sel.requires_exact_match("metadata.name") is None


def test_field_selector_double_equals_and_missing_field() -> None:
    sel = parse_field_selector("metadata.namespace==default")
    assert str(sel) == "metadata.namespace=default"
    # A missing field reads as "" (fields.Set.Get), so `f=` selects objects without it.
    assert parse_field_selector("spec.nodeName=").matches({})
    assert not parse_field_selector("spec.nodeName!=").matches({})


def test_field_selector_empty() -> None:
    sel = parse_field_selector("")
    assert isinstance(sel, FieldSelector)
    assert sel.empty()
    assert sel.matches({"anything": "x"})
    assert str(sel) == ""


def test_field_selector_escapes() -> None:
    value = r"a\,b\=c\\d"
    sel = parse_field_selector(f"metadata.name={value}")
    assert sel.requirements[0].value == "a,b=c\\d"
    assert str(sel) == f"metadata.name={value}"
    assert escape_field_value("a,b=c\\d") == value
    assert parse_field_selector(str(sel)) == sel


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("metadata.name", "can't understand 'metadata.name'"),
        (r"metadata.name=a\x", "invalid escape sequence"),
        ("metadata.name=a=b", "unescaped character in value: 61"),
        ("metadata.name=a\\", "invalid escape sequence"),
    ],
)
def test_field_selector_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_field_selector(text)


# --- fitting a name into a label value -------------------------------------------------------------

def test_fit_label_value_keeps_valid_values_and_hashes_the_rest() -> None:
    assert fit_label_value("mon") == "mon"
    assert fit_label_value("a" * 63) == "a" * 63
    long_name = ("a" * 60 + ".") * 4 + "b" * 9  # 253 characters: a valid custom-resource name
    hashed = fit_label_value(long_name)
    assert len(hashed) == 32 and hashed == fit_label_value(long_name)  # stable
    assert hashed != fit_label_value(long_name[:-1] + "c")
    assert fit_label_value("-bad-") != "-bad-"


@given(st.text(max_size=300))
def test_fit_label_value_is_always_a_valid_label_value_usable_in_a_selector(value: str) -> None:
    fitted = fit_label_value(value)
    assert validate_label_value(fitted) == []
    assert parse_selector(f"app.kubernetes.io/instance={fitted}").matches(
        {"app.kubernetes.io/instance": fitted})


@pytest.mark.parametrize("text", ["a\n", "\n"])
def test_a_trailing_newline_is_not_a_valid_label_value_or_key(text: str) -> None:
    """Go's regexp "$" does not match before a final newline; Python's does, so the validators
    use fullmatch."""
    assert validate_label_value(text) != []
    assert validate_qualified_name(text) != []
    assert fit_label_value(text) != text


@pytest.mark.parametrize(("selector", "refused"), [
    ("app in (a,,)", True), ("app notin (,,)", True), ("app in (a,,,)", False), ("app in (,,a)", False),
    ("app in (a,,b)", False), ("app in (a,)", False)])
def test_consecutive_commas_as_kube_apiserver_reads_them(selector: str, refused: bool) -> None:
    """Recorded from kube-apiserver v1.28: a second comma is taken with the first, so a ')' may
    not follow it."""
    if refused:
        with pytest.raises(ValueError, match="found '\\)', expected: ',', or identifier"):
            parse_selector(selector)
    else:
        parse_selector(selector)
