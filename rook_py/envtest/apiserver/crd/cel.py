"""CRD validation rules: ``x-kubernetes-validations`` evaluated with CEL.

After apiextensions-apiserver pkg/apiserver/schema/cel (compilation.go, validation.go). Rules
are compiled with cel-python (``celpy``, a maintained pure-Python CEL implementation) when the
CRD is admitted -- a rule that does not parse refuses the CRD -- and evaluated after schema
validation passed, at every schema node that carries rules:

* ``self`` is the node's value; a rule that mentions ``oldSelf`` is a *transition rule*: it
  runs only on update, and only where the old object has a value at the same path (reached
  through object properties and ``additionalProperties`` keys; list items do not correlate here,
  as upstream for atomic and set lists);
* a failed rule is ``<path>: Invalid value: "<schema type>": <message>``, the message being the
  ``messageExpression`` result when it yields a non-empty string, else ``message``, else
  ``failed rule: <rule>``; a rule that cannot be evaluated (a missing field without ``has()``)
  is reported as upstream does, ``<path>: Invalid value: "object": <error>``.

What CEL in Kubernetes 1.25-1.28 adds beyond standard CEL (the ``isSorted``/``indexOf`` list
and ``url`` libraries) is not provided; a rule using it fails to compile here and is refused.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from .fielderrors import INVALID, Cause, cause

JSON = dict[str, Any]
_OLD_SELF = re.compile(r"\boldSelf\b")
_NO_SUCH_MEMBER = re.compile(r"no such member in mapping: '([^']*)'")
_env = celpy.Environment()
_compiled: dict[str, Any] = {}
_compile_lock = threading.Lock()


class RuleError(Exception):
    pass


def compile_rule(expression: str) -> Any:
    """A runnable program for ``expression`` (cached); ``RuleError`` when it does not compile."""
    program = _compiled.get(expression)
    if program is None:
        try:
            program = _env.program(_env.compile(expression))
        except Exception as err:  # celpy raises CELParseError and friends
            raise RuleError(str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__) from None
        with _compile_lock:
            _compiled[expression] = program
    return program


def definition_causes(schema: Mapping[str, Any], path: str) -> list[Cause]:
    """Compilation problems of every rule under ``schema`` (CRD definition validation)."""
    out: list[Cause] = []

    def walk(node: Any, at: str) -> None:
        if not isinstance(node, Mapping):
            return
        if node.get("x-kubernetes-validations") and "default" in node:
            # kube-apiserver evaluates a node's rules against its default, as written (no
            # nested defaulting), when the CRD is admitted
            for problem in validate({k: v for k, v in node.items() if k != "properties"}, node["default"]):
                out.append(cause(INVALID, f"{at}.default", value=_type_name(node, node["default"]),
                                 detail=problem["message"].split(": ", 2)[-1]))
        for i, rule in enumerate(node.get("x-kubernetes-validations") or []):
            where = f"{at}.x-kubernetes-validations[{i}]"
            if not isinstance(rule, Mapping) or not isinstance(rule.get("rule"), str):
                out.append(cause("FieldValueRequired", f"{where}.rule"))
                continue
            for key in ("rule", "messageExpression"):
                if isinstance(rule.get(key), str):
                    try:
                        compile_rule(rule[key])
                    except RuleError as err:
                        label = "compilation failed" if key == "rule" else "messageExpression compilation failed"
                        out.append(cause(INVALID, f"{where}.{key}", value=rule[key], detail=f"{label}: {err}"))
        for key, sub in (node.get("properties") or {}).items():
            walk(sub, f"{at}.properties[{key}]")
        if isinstance(node.get("items"), Mapping):
            walk(node["items"], f"{at}.items")
        if isinstance(node.get("additionalProperties"), Mapping):
            walk(node["additionalProperties"], f"{at}.additionalProperties")

    walk(schema, path)
    return out


def has_rules(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return False
    if schema.get("x-kubernetes-validations"):
        return True
    return (any(has_rules(s) for s in (schema.get("properties") or {}).values())
            or has_rules(schema.get("items")) or has_rules(schema.get("additionalProperties")))


def _evaluate(expression: str, activation: JSON) -> Any:
    program = compile_rule(expression)
    try:
        result = program.evaluate({k: json_to_cel(v) for k, v in activation.items()})
    except CELEvalError as err:  # raised by some paths, returned by others
        result = err
    if isinstance(result, CELEvalError):
        text = str(result.args[0]) if result.args else "evaluation error"
        raise RuleError(_NO_SUCH_MEMBER.sub(r"no such key: \1", text))
    return result


def _rule_error_string(rule: Mapping[str, Any]) -> str:
    """validation.go ruleErrorString: the message when there is one, else the rule."""
    return str(rule.get("message") or "").strip() or _compact(str(rule.get("rule") or ""))


def _compact(rule: str) -> str:
    return " ".join(rule.split())


def _type_name(schema: Mapping[str, Any], value: Any) -> str:
    declared = schema.get("type")
    if isinstance(declared, str) and declared:
        return declared
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer",
            float: "number"}.get(type(value), "object")


def _check_node(schema: Mapping[str, Any], value: Any, old: Any, has_old: bool, path: str,
                out: list[Cause]) -> None:
    for rule in schema.get("x-kubernetes-validations") or []:
        expression = str(rule.get("rule") or "")
        transition = bool(_OLD_SELF.search(expression))
        if transition and not has_old:
            continue
        activation: JSON = {"self": value}
        if transition:
            activation["oldSelf"] = old
        try:
            result = _evaluate(expression, activation)
        except Exception as err:  # RuleError, or an evaluation bug in the library
            out.append(cause(INVALID, path, value=_type_name(schema, value),
                             detail=f"{err} evaluating rule: {_rule_error_string(rule)}"))
            continue
        if result == celtypes.BoolType(True):
            continue
        message = ""
        if rule.get("messageExpression"):
            try:
                produced = _evaluate(str(rule["messageExpression"]), activation)
                if isinstance(produced, str) and produced.strip() and "\n" not in produced:
                    message = str(produced)
            except Exception:
                message = ""
        if not message:
            message = str(rule.get("message") or "") or f"failed rule: {_compact(expression)}"
        out.append(cause(INVALID, path, value=_type_name(schema, value), detail=message))


def validate(schema: Mapping[str, Any], obj: Any, old: Any = None, *, has_old: bool = False,
             path: str = "") -> list[Cause]:
    """Causes for every failed rule under ``schema`` (``path`` is the dotted field path)."""
    out: list[Cause] = []

    def walk(node: Any, value: Any, old_value: Any, correlated: bool, at: str) -> None:
        if not isinstance(node, Mapping) or value is None:
            return
        if node.get("x-kubernetes-validations"):
            _check_node(node, value, old_value, correlated, at or "<root>", out)
        if isinstance(value, dict):
            props = node.get("properties") or {}
            for key, sub in props.items():
                if key in value:
                    old_has = correlated and isinstance(old_value, dict) and key in old_value
                    walk(sub, value[key], old_value.get(key) if old_has else None, old_has,
                         f"{at}.{key}" if at else key)
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping):
                for key, item in value.items():
                    if key not in props:
                        old_has = correlated and isinstance(old_value, dict) and key in old_value
                        walk(extra, item, old_value.get(key) if old_has else None, old_has,
                             f"{at}[{key}]")
        elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
            for i, item in enumerate(value):
                walk(node["items"], item, None, False, f"{at}[{i}]")

    walk(schema, obj, old, has_old, path)
    return out
