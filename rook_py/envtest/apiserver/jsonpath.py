"""The subset of Kubernetes JSONPath that CRD printer columns use.

Supported (k8s.io/client-go/util/jsonpath): an optional ``{...}`` wrapper and ``$`` root,
``.field``, ``['quoted.key']`` / ``["key"]``, ``[n]`` (negative counts from the end),
``[start:end]`` slices, ``[*]`` and ``.*`` wildcards, ``..field`` recursive descent, and filters
``[?(@.path OP literal)]`` with ``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` or a bare
``[?(@.path)]`` existence test.

Evaluation follows the apiserver's printer-column setting (``AllowMissingKeys(true)``): a path
that does not exist yields no result rather than an error. Syntax errors raise ``ValueError``
so CRD validation can reject a bad ``jsonPath`` up front.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["compile_path", "evaluate"]

Step = Callable[[list[Any]], list[Any]]

_NAME_RE: Final = re.compile(r"""[^.\[\]\s=!<>()'"{},]+""")
_INDEX_RE: Final = re.compile(r"^\s*(-?\d+)\s*$")
_SLICE_RE: Final = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?$")
_FILTER_RE: Final = re.compile(r"^\?\((.*)\)$", re.S)
_COMPARE_RE: Final = re.compile(r"^\s*(@[^\s=!<>]*)\s*(==|!=|<=|>=|<|>)\s*(.+?)\s*$", re.S)
_MISSING: Final = object()


def _children(node: Any) -> list[Any]:
    if isinstance(node, dict):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _field(name: str) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        return [n[name] for n in nodes if isinstance(n, dict) and name in n]

    return step


def _wildcard(nodes: list[Any]) -> list[Any]:
    out: list[Any] = []
    for n in nodes:
        out.extend(_children(n))
    return out


def _descendants(nodes: list[Any]) -> list[Any]:
    """Every node and all nodes below it, depth first (the ``..`` operator)."""
    out: list[Any] = []

    def walk(n: Any) -> None:
        out.append(n)
        for c in _children(n):
            walk(c)

    for n in nodes:
        walk(n)
    return out


def _index(i: int) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if isinstance(n, list) and -len(n) <= i < len(n):
                out.append(n[i])
        return out

    return step


def _slice(start: int | None, end: int | None, stride: int | None) -> Step:
    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            if isinstance(n, list):
                out.extend(n[start:end:stride])
        return out

    return step


def _literal(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text == "true":
        return True
    if text == "false":
        return False
    if text == "nil" or text == "null":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"unrecognized filter literal {text!r}") from None


def _relative(path: str) -> list[Step]:
    """Steps of an ``@``-rooted path inside a filter."""
    if not path.startswith("@"):
        raise ValueError(f"filter operand must start with '@': {path!r}")
    return _parse_steps(path[1:])


def _run(steps: list[Step], node: Any) -> list[Any]:
    nodes = [node]
    for s in steps:
        nodes = s(nodes)
    return nodes


def _compare(have: Any, op: str, want: Any) -> bool:
    if op in ("==", "!="):
        same = type(have) is type(want) or (
            isinstance(have, int | float)
            and isinstance(want, int | float)
            and not isinstance(have, bool)
            and not isinstance(want, bool)
        )
        eq = same and have == want
        return eq if op == "==" else not eq
    if isinstance(have, bool) or isinstance(want, bool):
        return False
    if isinstance(have, int | float) and isinstance(want, int | float):
        a: Any = have
        b: Any = want
    elif isinstance(have, str) and isinstance(want, str):
        a, b = have, want
    else:
        return False
    return bool({"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op])


def _filter(expr: str) -> Step:
    m = _COMPARE_RE.match(expr)
    if m is None:
        exists = _relative(expr.strip())

        def exists_step(nodes: list[Any]) -> list[Any]:
            return [c for n in nodes for c in _children(n) if _run(exists, c)]

        return exists_step
    lhs = _relative(m.group(1))
    op = m.group(2)
    rhs_text = m.group(3)
    rhs_steps = _relative(rhs_text) if rhs_text.startswith("@") else None
    rhs_value = None if rhs_steps is not None else _literal(rhs_text)

    def step(nodes: list[Any]) -> list[Any]:
        out: list[Any] = []
        for n in nodes:
            for c in _children(n):
                lefts = _run(lhs, c)
                rights = _run(rhs_steps, c) if rhs_steps is not None else [rhs_value]
                if lefts and rights and _compare(lefts[0], op, rights[0]):
                    out.append(c)
        return out

    return step


def _split_union(body: str) -> list[str]:
    """Split ``'a','b'`` on commas outside quotes."""
    parts: list[str] = []
    cur: list[str] = []
    quote = ""
    for ch in body:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
            cur.append(ch)
        elif ch == ",":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _bracket(body: str) -> Step:
    body = body.strip()
    if body == "*":
        return _wildcard
    if (f := _FILTER_RE.match(body)) is not None:
        return _filter(f.group(1))
    if (m := _INDEX_RE.match(body)) is not None:
        return _index(int(m.group(1)))
    if (m := _SLICE_RE.match(body)) is not None:
        start, end, stride = (int(g) if g else None for g in m.groups())
        if stride == 0:
            raise ValueError("step must be > 0")
        return _slice(start, end, stride)
    keys: list[str] = []
    for part in _split_union(body):
        p = part.strip()
        if len(p) >= 2 and p[0] == p[-1] and p[0] in "'\"":
            keys.append(p[1:-1])
        else:
            raise ValueError(f"invalid array index or key {body!r}")
    if len(keys) == 1:
        return _field(keys[0])
    fields = [_field(k) for k in keys]

    def union(nodes: list[Any]) -> list[Any]:
        return [r for n in nodes for f in fields for r in f([n])]

    return union


def _closing_bracket(s: str, start: int) -> int:
    """Index of the ``]`` matching the ``[`` at ``start``, skipping quoted text and parens."""
    depth = 0
    quote = ""
    i = start
    while i < len(s):
        ch = s[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in ")]":
            depth -= 1
            if depth == 0 and ch == "]":
                return i
        i += 1
    raise ValueError(f"unterminated array notation in {s!r}")


def _parse_steps(path: str) -> list[Step]:
    steps: list[Step] = []
    i = 0
    n = len(path)
    while i < n:
        ch = path[i]
        if ch.isspace():
            i += 1
        elif path.startswith("..", i):
            steps.append(_descendants)
            i += 2
            if i < n and path[i] == "*":
                steps.append(_wildcard)
                i += 1
                continue
            m = _NAME_RE.match(path, i)
            if m is not None:
                steps.append(_field(m.group(0)))
                i = m.end()
        elif ch == ".":
            i += 1
            if i < n and path[i] == "*":
                steps.append(_wildcard)
                i += 1
                continue
            m = _NAME_RE.match(path, i)
            if m is None:
                if i >= n or path[i] == "[":
                    continue  # A lone "." (the current node) or ".[...]".
                raise ValueError(f"invalid field name at position {i} in {path!r}")
            steps.append(_field(m.group(0)))
            i = m.end()
        elif ch == "[":
            end = _closing_bracket(path, i)
            steps.append(_bracket(path[i + 1 : end]))
            i = end + 1
        else:
            raise ValueError(f"unexpected {ch!r} at position {i} in {path!r}: paths start with '.' or '['")
    return steps


@dataclass(frozen=True)
class _Compiled:
    steps: tuple[Step, ...]

    def evaluate(self, obj: Any) -> list[Any]:
        return _run(list(self.steps), obj)


def compile_path(expr: str) -> _Compiled:
    """Parse ``expr`` once; ``.evaluate(obj)`` on the result. Raises ``ValueError`` on bad syntax."""
    text = expr.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if not text:
        raise ValueError("empty JSONPath expression")
    return _Compiled(tuple(_parse_steps(text)))


def evaluate(expr: str, obj: Any) -> list[Any]:
    """All values ``expr`` selects in ``obj`` (empty when the path is missing)."""
    return compile_path(expr).evaluate(obj)
