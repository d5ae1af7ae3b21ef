"""Where each effective setting comes from, what a change changed, and how to undo one.

Settings are sparse layers merged in order (see :mod:`preferences.model`). For the
console a layer is flattened into *paths*, the units a person sets one at a time:
``channels``, ``language``, ``timezone``, ``quiet_hours``, ``addresses.<channel>`` and
``topics.<topic>.<field>``. A value's source is the highest layer holding its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from preferences.model import JsonDict

BUILTIN = "builtin"
DEFAULT = "default"
OWN = "own"

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Sourced:
    """One effective setting and the layer it comes from (``builtin``, ``default``,
    ``segment:<name>`` or ``own``); ``by``/``via`` name who set an ``own`` value."""

    path: str
    value: Any
    source: str
    by: str = ""
    via: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    old: Any
    new: Any


def flatten(layer: Mapping[str, Any]) -> dict[str, Any]:
    """A layer as ``{path: value}``; only topics and addresses are split further."""
    out: dict[str, Any] = {}
    for key, value in layer.items():
        if key == "topics" and isinstance(value, Mapping):
            for topic, fields in value.items():
                for name, v in (fields or {}).items():
                    out[f"topics.{topic}.{name}"] = v
        elif key == "addresses" and isinstance(value, Mapping):
            for channel, address in value.items():
                out[f"addresses.{channel}"] = address
        else:
            out[key] = value
    return out


def unflatten(paths: Mapping[str, Any]) -> JsonDict:
    out: JsonDict = {}
    for path, value in paths.items():
        parts = path.split(".")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """What changed between two versions of a layer, path by path (sorted)."""
    a, b = flatten(old), flatten(new)
    return [
        Change(p, a.get(p), b.get(p))
        for p in sorted(set(a) | set(b))
        if a.get(p, _MISSING) != b.get(p, _MISSING)
    ]


def own_setters(history: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str]]:
    """For each path of a customer's own layer, who last set it and how (``(actor, via)``),
    from the customer's history records (any order)."""
    out: dict[str, tuple[str, str]] = {}
    for rec in sorted(history, key=lambda r: int(r["version"])):
        for change in diff(rec.get("old") or {}, rec.get("new") or {}):
            out[change.path] = (str(rec.get("actor", "")), str(rec.get("via", "")))
    return out


def effective(
    layers: Sequence[tuple[str, Mapping[str, Any]]], setters: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, Sourced]:
    """Every path of the merged settings with the layer that decides it (``layers``
    lowest first, each ``(source, layer)``)."""
    out: dict[str, Sourced] = {}
    for source, layer in layers:
        for path, value in flatten(layer).items():
            by, via = (setters or {}).get(path, ("", "")) if source == OWN else ("", "")
            out[path] = Sourced(path, value, source, by, via)
    return out


def is_customers_own(customer_id: str, actor: str, via: str) -> bool:
    """Whether a change was the customer's own choice (in chat, or as the customer)."""
    return actor == customer_id or actor == "customer" or via == "chat"


def revert_patch(current: Mapping[str, Any], change_old: Mapping[str, Any], change_new: Mapping[str, Any]) -> tuple[JsonDict, list[str]]:
    """The layer with one change undone, and the paths that changed again since (which
    the revert leaves alone and reports)."""
    now = flatten(current)
    conflicts: list[str] = []
    result = dict(now)
    for c in diff(change_old, change_new):
        if now.get(c.path, _MISSING) != (c.new if c.new is not None else _MISSING) and not (c.new is None and c.path not in now):
            conflicts.append(c.path)
            continue
        if c.old is None:
            result.pop(c.path, None)
        else:
            result[c.path] = c.old
    return unflatten(result), conflicts
