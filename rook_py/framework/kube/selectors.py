"""Label and field selectors with the semantics of k8s.io/apimachinery.

Label selectors follow ``pkg/labels/selector.go``: the same grammar (``=``, ``==``, ``!=``,
``in``, ``notin``, ``key`` for exists, ``!key`` for does-not-exist, plus ``gt``/``lt`` as
``>``/``<``), the same key/value validation (``pkg/util/validation``), the same canonical
string form (requirements sorted by key, set values sorted), and the same matching rules
(``!=`` and ``notin`` match objects that do not carry the key at all).

Field selectors follow ``pkg/fields/selector.go``: comma-joined ``field=value``,
``field==value`` and ``field!=value`` terms, with ``\\``, ``\\,`` and ``\\=`` escapes in values,
and a missing field reading as the empty string.

Both selector types are immutable values: parse once, share freely between threads.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "DOES_NOT_EXIST",
    "DOUBLE_EQUALS",
    "EQUALS",
    "EXISTS",
    "GREATER_THAN",
    "IN",
    "LESS_THAN",
    "NOT_EQUALS",
    "NOT_IN",
    "FieldRequirement",
    "FieldSelector",
    "Requirement",
    "Selector",
    "escape_field_value",
    "everything",
    "fit_label_value",
    "format_selector",
    "nothing",
    "parse_field_selector",
    "parse_selector",
    "selector_from_label_selector",
    "validate_label_value",
    "validate_qualified_name",
]

# Operator spellings, as in k8s.io/apimachinery/pkg/selection/operator.go.
DOES_NOT_EXIST: Final = "!"
EQUALS: Final = "="
DOUBLE_EQUALS: Final = "=="
IN: Final = "in"
NOT_EQUALS: Final = "!="
NOT_IN: Final = "notin"
EXISTS: Final = "exists"
GREATER_THAN: Final = "gt"
LESS_THAN: Final = "lt"

_SET_OPERATORS: Final = frozenset({IN, NOT_IN})
_EXACT_OPERATORS: Final = frozenset({EQUALS, DOUBLE_EQUALS, NOT_EQUALS})
_NUMERIC_OPERATORS: Final = frozenset({GREATER_THAN, LESS_THAN})
_PRESENCE_OPERATORS: Final = frozenset({EXISTS, DOES_NOT_EXIST})
# selection.go's validRequirementOperators, in its order (the "supported values" of an error)
_VALID_OPERATORS: Final = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN,
                           EXISTS, DOES_NOT_EXIST)
_INT64_RE: Final = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_int64(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: ASCII digits with an optional sign, in range;
    None otherwise (Python's int() would also take "1_0", " 1" and non-ASCII digits)."""
    if not _INT64_RE.fullmatch(text):
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def go_quote(text: str) -> str:
    """A string as Go's ``%q`` prints it, as field errors show bad values."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif not ch.isprintable():
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_strings(values: list[str]) -> str:
    """A []string as Go's ``%#v`` prints it (nil when empty: the callers pass nil slices)."""
    return "[]string{" + ", ".join(go_quote(v) for v in values) + "}" if values else "[]string(nil)"


def aggregate(messages: list[str]) -> str:
    """utilerrors.NewAggregate(...).Error(): one message alone, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


# ---------------------------------------------------------------------------------------------
# Validation (k8s.io/apimachinery/pkg/util/validation/validation.go)
# ---------------------------------------------------------------------------------------------

# fullmatch, never match: Python's "$" also matches before a trailing newline, Go's does not
_QUALIFIED_NAME_FMT: Final = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE: Final = re.compile(f"^{_QUALIFIED_NAME_FMT}$")
_QUALIFIED_NAME_MAX: Final = 63
_LABEL_VALUE_FMT: Final = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_LABEL_VALUE_RE: Final = re.compile(f"^{_LABEL_VALUE_FMT}$")
_LABEL_VALUE_MAX: Final = 63
_DNS1123_LABEL_FMT: Final = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE: Final = re.compile(f"^{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*$")
_DNS1123_SUBDOMAIN_MAX: Final = 253


def validate_qualified_name(value: str) -> list[str]:
    """Problems with ``value`` as a label/annotation key (``IsQualifiedName``); empty when valid.

    A qualified name is ``[prefix/]name``: the optional prefix a DNS-1123 subdomain of at most
    253 characters, the name at most 63 alphanumerics, ``-``, ``_`` or ``.`` with alphanumeric
    ends.
    """
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            if len(prefix) > _DNS1123_SUBDOMAIN_MAX:
                errs.append(f"prefix part must be no more than {_DNS1123_SUBDOMAIN_MAX} characters")
            if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
                errs.append(
                    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric "
                    "characters, '-' or '.', and must start and end with an alphanumeric character "
                    "(e.g. 'example.com', regex used for validation is "
                    f"'{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*')"
                )
    else:
        return [
            "a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must "
            "start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
            f"'123-abc', regex used for validation is '{_QUALIFIED_NAME_FMT}') with an optional DNS "
            "subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif len(name) > _QUALIFIED_NAME_MAX:
        errs.append(f"name part must be no more than {_QUALIFIED_NAME_MAX} characters")
    if name and not _QUALIFIED_NAME_RE.fullmatch(name):
        errs.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
            "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
            f"used for validation is '{_QUALIFIED_NAME_FMT}')"
        )
    return errs


def fit_label_value(value: str) -> str:
    """``value`` when it is a valid label value, else its md5 in hex (32 characters, always valid).

    For labels (and so selectors) whose value derives from a name that may be longer than 63
    characters or contain characters a label value may not (a custom resource's name can be a
    253-character DNS subdomain; a node name too). Rook does the same for node names
    (pkg/operator/k8sutil: ``TruncateNodeName`` hashes with ``Hash``, an md5 in hex): cutting
    the value instead could end in '-' or '.' and make two names collide on their prefix. The
    mapping is stable, so a selector built from the same name matches what the label carries.
    """
    if len(value) <= _LABEL_VALUE_MAX and _LABEL_VALUE_RE.fullmatch(value):
        return value
    return hashlib.md5(value.encode("utf-8"), usedforsecurity=False).hexdigest()


def validate_label_value(value: str) -> list[str]:
    """Problems with ``value`` as a label value (``IsValidLabelValue``); empty when valid."""
    errs: list[str] = []
    if len(value) > _LABEL_VALUE_MAX:
        errs.append(f"must be no more than {_LABEL_VALUE_MAX} characters")
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
            "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
            f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE_FMT}')"
        )
    return errs


# ---------------------------------------------------------------------------------------------
# Label selectors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One ``key <op> values`` term of a label selector.

    Invariants (enforced by :meth:`new`): the key is a qualified name; set operators carry at
    least one value, exact and numeric operators exactly one, presence operators none; values
    are valid label values (numeric operators: integers) and are stored sorted and unique.
    """

    key: str
    operator: str
    values: tuple[str, ...] = ()

    @classmethod
    def new(cls, key: str, operator: str, values: Iterable[str] = ()) -> Requirement:
        """Validated constructor (``labels.NewRequirement``); raises ``ValueError`` whose message is
        upstream's aggregated field errors, word for word. Values are validated in the order
        given, then stored sorted and unique (the order only shows in error paths)."""
        given = list(values)
        errs = [f"key: Invalid value: {go_quote(key)}: {'; '.join(e)}"
                for e in (validate_qualified_name(key),) if e]
        if operator in _SET_OPERATORS:
            if not given:
                errs.append(f"values: Invalid value: {_go_strings(given)}: "
                            "for 'in', 'notin' operators, values set can't be empty")
        elif operator in _EXACT_OPERATORS:
            if len(given) != 1:
                errs.append(f"values: Invalid value: {_go_strings(given)}: "
                            "exact-match compatibility requires one single value")
        elif operator in _PRESENCE_OPERATORS:
            if given:
                errs.append(f"values: Invalid value: {_go_strings(given)}: "
                            "values set must be empty for exists and does not exist")
        elif operator in _NUMERIC_OPERATORS:
            if len(given) != 1:
                errs.append(f"values: Invalid value: {_go_strings(given)}: "
                            "for 'Gt', 'Lt' operators, exactly one value is required")
            errs.extend(f"values[{i}]: Invalid value: {go_quote(v)}: "
                        "for 'Gt', 'Lt' operators, the value must be an integer"
                        for i, v in enumerate(given) if parse_int64(v) is None)
        else:
            supported = ", ".join(go_quote(o) for o in _VALID_OPERATORS)
            errs.append(f"operator: Unsupported value: {go_quote(operator)}: supported values: {supported}")
        # every value, numeric ones too, must also be a valid label value
        errs.extend(f"values[{i}][{key}]: Invalid value: {go_quote(v)}: {'; '.join(e)}"
                    for i, v in enumerate(given) if (e := validate_label_value(v)))
        if errs:
            raise ValueError(aggregate(errs))
        return cls(key, operator, tuple(sorted(set(given))))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when ``labels`` satisfy this term (``Requirement.Matches``)."""
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            # Upstream: a missing key satisfies a negative requirement.
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: both sides must parse as integers, otherwise no match.
        if self.key not in labels:
            return False
        have, want = parse_int64(labels[self.key]), parse_int64(self.values[0])
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want

    def __str__(self) -> str:
        if self.operator == EXISTS:
            return self.key
        if self.operator == DOES_NOT_EXIST:
            return "!" + self.key
        if self.operator in _SET_OPERATORS:
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{self.values[0]}"


class Selector:
    """A conjunction of :class:`Requirement` terms, or the selector that matches nothing.

    ``str(selector)`` is the canonical form the apiserver and kubectl print: requirements in
    key order, joined with ``,``; it parses back to an equal selector. The empty selector
    matches every label set; :func:`nothing` matches none (as ``labels.Nothing()``).
    """

    __slots__ = ("_nothing", "_requirements")

    def __init__(self, requirements: Iterable[Requirement] = (), *, match_nothing: bool = False) -> None:
        # Stable sort by key, as labels.Parse and internalSelector.Add keep terms ordered by key.
        self._requirements: tuple[Requirement, ...] = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = match_nothing

    @classmethod
    def everything(cls) -> Selector:
        """The selector with no requirements; matches everything."""
        return cls()

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return self._requirements

    def empty(self) -> bool:
        """True when the selector has no requirements and so matches everything (``Empty()``)."""
        return not self._nothing and not self._requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        lbls: Mapping[str, str] = labels or {}
        return all(r.matches(lbls) for r in self._requirements)

    def add(self, *requirements: Requirement) -> Selector:
        """A new selector with ``requirements`` added (this one is unchanged)."""
        return Selector((*self._requirements, *requirements), match_nothing=self._nothing)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must equal (``=``, ``==`` or one-value ``in``), else None."""
        for r in self._requirements:
            if r.key == key and r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                return r.values[0]
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        return "Selector(<nothing>)" if self._nothing else f"Selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._nothing == other._nothing and self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash((self._nothing, self._requirements))


def everything() -> Selector:
    """``labels.Everything()``: matches every object."""
    return Selector()


def nothing() -> Selector:
    """``labels.Nothing()``: matches no object (a nil metav1.LabelSelector)."""
    return Selector(match_nothing=True)


# --- lexer -----------------------------------------------------------------------------------

_SPECIAL = frozenset("=!(),<>")
_WHITESPACE = frozenset(" \t\r\n")

_T_ID, _T_END, _T_COMMA, _T_OPEN, _T_CLOSE, _T_OP, _T_NOT, _T_IN, _T_NOTIN = (
    "identifier",
    "end of string",
    "','",
    "'('",
    "')'",
    "operator",
    "'!'",
    "'in'",
    "'notin'",
)
_SYMBOLS: Final = {"=": EQUALS, "==": DOUBLE_EQUALS, "!=": NOT_EQUALS, ">": GREATER_THAN, "<": LESS_THAN}


def _lex(s: str) -> list[tuple[str, str]]:
    """Tokens as (kind, literal); mirrors the apimachinery lexer's longest-match rules."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch in _WHITESPACE:
            i += 1
        elif ch in _SPECIAL:
            j = i
            while (
                j < n and s[j] in _SPECIAL and s[i : j + 1] in ("=", "==", "!", "!=", "(", ")", ",", "<", ">")
            ):
                j += 1
            lit = s[i:j]
            if lit == "!":
                out.append((_T_NOT, lit))
            elif lit in _SYMBOLS:
                out.append((_T_OP, lit))
            elif lit == ",":
                out.append((_T_COMMA, lit))
            elif lit == "(":
                out.append((_T_OPEN, lit))
            else:
                out.append((_T_CLOSE, lit))
            i = j
        else:
            j = i
            while j < n and s[j] not in _SPECIAL and s[j] not in _WHITESPACE:
                j += 1
            lit = s[i:j]
            kind = {"in": _T_IN, "notin": _T_NOTIN}.get(lit, _T_ID)
            out.append((kind, lit))
            i = j
    out.append((_T_END, ""))
    return out


class _Parser:
    """selector.go's recursive-descent parser, with its error messages word for word: errors
    inside one requirement carry the "unable to parse requirement: " prefix, errors between
    requirements do not (kube-apiserver returns the message as it is, with a 400)."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        """Lookahead in value context, where the keywords 'in'/'notin' are identifiers."""
        kind, lit = self.tokens[self.pos]
        return (_T_ID if kind in (_T_IN, _T_NOTIN) else kind), lit

    def take(self, *, keywords: bool = False) -> tuple[str, str]:
        kind, lit = self.tokens[self.pos]
        if kind != _T_END:
            self.pos += 1
        if not keywords and kind in (_T_IN, _T_NOTIN):
            kind = _T_ID
        return kind, lit

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            kind, lit = self.peek()
            if kind == _T_END:
                return reqs
            if kind not in (_T_ID, _T_NOT):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.requirement())
            except ValueError as exc:
                raise ValueError(f"unable to parse requirement: {exc}") from None
            kind, lit = self.take()
            if kind == _T_END:
                return reqs
            if kind != _T_COMMA:
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            kind, lit = self.peek()
            if kind not in (_T_ID, _T_NOT):
                raise ValueError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negate = False
        kind, key = self.take()
        if kind == _T_NOT:
            negate = True
            kind, key = self.take()
        if kind != _T_ID:
            raise ValueError(f"found '{key}', expected: identifier")
        if errs := validate_qualified_name(key):
            # validated before NewRequirement, with the parser's nil field path
            raise ValueError(f"<nil>: Invalid value: {go_quote(key)}: {'; '.join(errs)}")
        if negate:
            # whatever follows `!key` is judged by the caller: only ',' or the end may
            return Requirement.new(key, DOES_NOT_EXIST, ())
        if self.peek()[0] in (_T_END, _T_COMMA):
            return Requirement.new(key, EXISTS, ())
        kind, lit = self.take(keywords=True)
        if kind in (_T_IN, _T_NOTIN):
            return Requirement.new(key, IN if kind == _T_IN else NOT_IN, sorted(self.set_values()))
        if kind != _T_OP:
            raise ValueError(f"found '{lit}', expected: {', '.join(_VALID_OPERATORS[:7])}")
        op = _SYMBOLS[lit]
        if self.peek()[0] in (_T_END, _T_COMMA):
            return Requirement.new(key, op, ("",))  # `a=` selects the empty value
        kind, value = self.take()
        if kind != _T_ID:
            raise ValueError(f"found '{value}', expected: identifier")
        return Requirement.new(key, op, (value,))

    def set_values(self) -> set[str]:
        kind, lit = self.take()
        if kind != _T_OPEN:
            raise ValueError(f"found '{lit}' expected: '('")  # sic: upstream has no comma here
        kind, lit = self.peek()
        if kind == _T_CLOSE:
            self.take()
            return {""}  # `()` holds the empty value
        if kind not in (_T_ID, _T_COMMA):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values: set[str] = set()
        while True:
            kind, lit = self.take()
            if kind == _T_ID:
                values.add(lit)
                nxt, nlit = self.peek()
                if nxt == _T_CLOSE:
                    break
                if nxt != _T_COMMA:
                    raise ValueError(f"found '{nlit}', expected: ',' or ')'")
            elif kind == _T_COMMA:
                # `(,a)`, `(a,,b)` and `(a,)` each carry the empty value. A second comma is
                # consumed with the first, so what follows must be a value or a comma:
                # `(a,,)` is refused (labels/selector.go parseIdentifiersList), `(a,,,)` is not.
                nxt = self.peek()[0]
                if not values or nxt in (_T_CLOSE, _T_COMMA):
                    values.add("")
                if nxt == _T_CLOSE:
                    break
                if nxt == _T_COMMA:
                    self.take()
            else:
                raise ValueError(f"found '{lit}', expected: ',', or identifier")  # sic
        self.take()  # the ')' just seen
        return values


def parse_selector(s: str) -> Selector:
    """Parse a label selector string (``labels.Parse``); raises ``ValueError`` on bad syntax.

    The empty string (or whitespace) is the everything selector.
    """
    return Selector(_Parser(s).parse())


_LABEL_SELECTOR_OPERATORS: Final = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
}


def selector_from_label_selector(d: Mapping[str, Any] | None) -> Selector:
    """Convert a ``metav1.LabelSelector`` dict (``LabelSelectorAsSelector``).

    ``None`` selects nothing; a selector with neither matchLabels nor matchExpressions selects
    everything. Raises ``ValueError`` for unknown operators or invalid keys/values.
    """
    if d is None:
        return nothing()
    reqs: list[Requirement] = []
    for k, v in (d.get("matchLabels") or {}).items():
        reqs.append(Requirement.new(k, EQUALS, (v,)))
    for expr in d.get("matchExpressions") or []:
        op = expr.get("operator")
        if op not in _LABEL_SELECTOR_OPERATORS:
            raise ValueError(f"{go_quote(str(op))} is not a valid label selector operator")
        values = [str(v) for v in expr.get("values") or []]
        reqs.append(Requirement.new(str(expr.get("key", "")), _LABEL_SELECTOR_OPERATORS[op], values))
    return Selector(reqs)


def format_selector(match_labels: Mapping[str, str]) -> str:
    """``labels.SelectorFromSet(set).String()``: ``k1=v1,k2=v2`` in key order."""
    return ",".join(f"{k}={match_labels[k]}" for k in sorted(match_labels))


# ---------------------------------------------------------------------------------------------
# Field selectors (k8s.io/apimachinery/pkg/fields/selector.go)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldRequirement:
    """``field = value`` (operator ``=``) or ``field != value`` (operator ``!=``)."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        # Upstream's Fields.Get returns "" for a missing field, so `f=` matches its absence.
        have = fields.get(self.field, "")
        return have == self.value if self.operator == EQUALS else have != self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


class FieldSelector:
    """A conjunction of field terms. The empty selector matches everything."""

    __slots__ = ("_requirements",)

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self._requirements = tuple(requirements)

    @property
    def requirements(self) -> tuple[FieldRequirement, ...]:
        return self._requirements

    def empty(self) -> bool:
        return not self._requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self._requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value ``field`` must equal, if the selector pins it (``RequiresExactMatch``)."""
        for r in self._requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        return f"FieldSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FieldSelector):
            return NotImplemented
        return self._requirements == other._requirements

    def __hash__(self) -> int:
        return hash(self._requirements)


_FIELD_ESCAPES: Final = {"\\": "\\\\", ",": "\\,", "=": "\\="}


def escape_field_value(value: str) -> str:
    """``fields.EscapeValue``: escape ``\\``, ``,`` and ``=`` so the value survives parsing."""
    return "".join(_FIELD_ESCAPES.get(c, c) for c in value)


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            if i + 1 >= len(value) or value[i + 1] not in _FIELD_ESCAPES:
                seq = value[i : i + 2]
                raise ValueError(f"invalid field selector: invalid escape sequence: {seq}")
            out.append(value[i + 1])
            i += 2
            continue
        if c in ",=":
            # Upstream formats the rune with %v, which prints its code point (61 for '=').
            raise ValueError(f"invalid field selector: unescaped character in value: {ord(c)}")
        out.append(c)
        i += 1
    return "".join(out)


def _split_field_terms(s: str) -> list[str]:
    """Split on commas that are not escaped; escapes stay in the terms."""
    terms: list[str] = []
    start, i = 0, 0
    while i < len(s):
        if s[i] == "\\":
            i += 2
            continue
        if s[i] == ",":
            terms.append(s[start:i])
            start = i + 1
        i += 1
    terms.append(s[start:])
    return terms


def parse_field_selector(s: str) -> FieldSelector:
    """Parse a field selector (``fields.ParseSelector``); raises ``ValueError``.

    Terms are sorted, as upstream does before building the conjunction, so ``str()`` of the
    result is canonical. ``==`` is read as ``=``.
    """
    reqs: list[FieldRequirement] = []
    for term in sorted(_split_field_terms(s)):
        if not term:
            continue
        for i in range(len(term)):
            rest = term[i:]
            op = next((o for o in ("!=", "==", "=") if rest.startswith(o)), None)
            if op is not None:
                field, value = term[:i], term[i + len(op) :]
                break
        else:
            raise ValueError(f"invalid selector: '{s}'; can't understand '{term}'")
        reqs.append(
            FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS, _unescape_field_value(value))
        )
    return FieldSelector(reqs)
