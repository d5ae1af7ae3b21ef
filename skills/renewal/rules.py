"""Renewal rules without code: a small, safe condition language evaluated on plain data.

A rule (stored in MongoDB ``renewal_rules``, edited through the JSON API)::

    {"name": "big deal: tell the CTO",
     "when": {"all": [{"field": "amount", "op": ">", "value": 1000000}]},
     "then": [{"action": "notify_contact", "role": "CTO", "channel": "email"}],
     "enabled": true}

A condition is ``{"all": [...]}``, ``{"any": [...]}``, ``{"not": cond}`` or a leaf
``{"field", "op", "value"}``. ``field`` is a dotted path into the facts (the contract's
fields, ``customer.*``, ``days_left``, ``offset``, ``past_contracts``). Operators:
``== != > >= < <= in not_in contains exists``. Nothing is ever evaluated as code: the
operators are a fixed table of functions, and validation rejects anything else before a
rule is stored.

Actions: ``notify_contact`` (``role``: a contact of the customer, ``channel``: email or
wechat), ``legal_review`` (quoting waits for legal), ``sales_todo`` (a to-do for the
sales owner), ``handoff`` (the chat goes to a person instead of quoting).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "in": lambda a, b: a in b,
    "not_in": lambda a, b: a not in b,
    "contains": lambda a, b: b in a,
    "exists": lambda a, b: (a is not None) == bool(b),
}
ACTIONS = {
    "notify_contact": {"role"},
    "legal_review": set(),
    "sales_todo": set(),
    "handoff": set(),
}
_MAX_DEPTH = 8
_MISSING = object()


class RuleError(ValueError):
    """A rule that cannot be stored; ``field`` is where in the rule."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def resolve(facts: Mapping[str, Any], path: str) -> Any:
    value: Any = facts
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            return _MISSING
    return value


def evaluate(cond: Mapping[str, Any], facts: Mapping[str, Any]) -> bool:
    """Whether ``cond`` holds for ``facts``; a comparison with a missing or mistyped
    field is false, never an error (one odd contract must not stop a scan)."""
    if "all" in cond:
        return all(evaluate(c, facts) for c in cond["all"])
    if "any" in cond:
        return any(evaluate(c, facts) for c in cond["any"])
    if "not" in cond:
        return not evaluate(cond["not"], facts)
    value = resolve(facts, str(cond["field"]))
    op = str(cond["op"])
    if op == "exists":
        return OPERATORS[op](None if value is _MISSING else value, cond.get("value", True))
    if value is _MISSING:
        return False
    try:
        return bool(OPERATORS[op](value, cond["value"]))
    except TypeError:
        return False


def validate_condition(cond: Any, where: str = "when", depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise RuleError("conditions nest too deep", where)
    if not isinstance(cond, Mapping):
        raise RuleError("expected an object", where)
    for key in ("all", "any"):
        if key in cond:
            items = cond[key]
            if not isinstance(items, list) or not items:
                raise RuleError(f"{key}: expected a non-empty list", f"{where}.{key}")
            for i, c in enumerate(items):
                validate_condition(c, f"{where}.{key}[{i}]", depth + 1)
            return
    if "not" in cond:
        validate_condition(cond["not"], f"{where}.not", depth + 1)
        return
    if set(cond) - {"field", "op", "value"}:
        raise RuleError(f"unknown keys {sorted(set(cond) - {'field', 'op', 'value'})}", where)
    if not isinstance(cond.get("field"), str) or not cond["field"]:
        raise RuleError("field: expected a dotted path", f"{where}.field")
    if cond.get("op") not in OPERATORS:
        raise RuleError(f"op: one of {', '.join(OPERATORS)}", f"{where}.op")
    if cond["op"] != "exists" and "value" not in cond:
        raise RuleError("value is required", f"{where}.value")
    value = cond.get("value")
    if cond["op"] in ("in", "not_in") and not isinstance(value, list):
        raise RuleError("value: expected a list", f"{where}.value")
    if not isinstance(value, (str, int, float, bool, list, type(None))):
        raise RuleError("value: expected a JSON scalar or list", f"{where}.value")


def validate_rule(data: Mapping[str, Any]) -> dict[str, Any]:
    """A clean copy of a rule for storage; raises :class:`RuleError`."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleError("name is required", "name")
    validate_condition(data.get("when"), "when")
    then = data.get("then")
    if not isinstance(then, list) or not then:
        raise RuleError("then: expected a non-empty list of actions", "then")
    for i, action in enumerate(then):
        if not isinstance(action, Mapping) or action.get("action") not in ACTIONS:
            raise RuleError(f"action: one of {', '.join(ACTIONS)}", f"then[{i}].action")
        missing = ACTIONS[str(action["action"])] - set(action)
        if missing:
            raise RuleError(f"missing {sorted(missing)}", f"then[{i}]")
    return {"name": name.strip(), "when": dict(data["when"]), "then": [dict(a) for a in then], "enabled": bool(data.get("enabled", True))}


def matching_actions(rules: Sequence[Mapping[str, Any]], facts: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The actions of every enabled rule that holds, each tagged with its rule's name."""
    out: list[dict[str, Any]] = []
    for rule in rules:
        if rule.get("enabled", True) and evaluate(rule["when"], facts):
            out += [{**a, "rule": rule.get("name", "")} for a in rule["then"]]
    return out
