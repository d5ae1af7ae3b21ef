"""The import structure of Kefu's own packages, read from the source with ``ast``.

``python -m tests.import_rules`` prints the package-level edges, every circle between
modules and every broken rule; ``tests/core/test_import_rules.py`` fails on any of them.
Imports inside functions and under ``TYPE_CHECKING`` count like any other: a circle
hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bot", "channels", "skills", "preferences", "speech", "admin", "portal", "webui")
# The composition root and the command line above it: nothing else may import them.
ROOT_MODULES = frozenset({"bot.app"})
ENTRY_POINTS = frozenset({"bot.cli"})
# What speech may use of ours besides itself.
SPEECH_ALLOWED = frozenset({"bot.config", "bot.errors"})
# What webui may use of ours besides itself: the root of every error's tree.
WEBUI_ALLOWED = frozenset({"bot.errors"})
# A channel's public face, which the console may use; the rest is the channel's own.
CHANNEL_PUBLIC = frozenset({"channels", "channels.base", "channels.errors"})


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    line: int


def modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, known: Mapping[str, Path]) -> str | None:
    """The longest known module ``name`` is in (``from a.b import c`` may name a module c)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in known:
            return candidate
        parts.pop()
    return None


def _imported(module: str, path: Path, known: Mapping[str, Path]) -> Iterator[tuple[str, int]]:
    """Each module ``module`` imports: ``from pkg import sub`` names ``pkg.sub`` when that
    is a module, else ``pkg``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield (sub if sub in known else base), node.lineno


def edges() -> list[Edge]:
    known = modules()
    out: set[Edge] = set()
    for module, path in known.items():
        seen: set[str] = set()
        for name, line in _imported(module, path, known):
            target = _resolve(name, known)
            if target is None or target == module or target in seen:
                continue
            seen.add(target)
            out.add(Edge(module, target, line))
    return sorted(out, key=lambda e: (e.source, e.target))


def circles(found: list[Edge]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm)."""
    graph: dict[str, list[str]] = defaultdict(list)
    for e in found:
        graph[e.source].append(e.target)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted({e.source for e in found} | {e.target for e in found}):
        if node not in index:
            visit(node)
    return sorted(groups)


def _top(module: str) -> str:
    return module.split(".")[0]


def broken_rules(found: list[Edge]) -> list[str]:
    out: list[str] = []
    for e in found:
        src, dst = _top(e.source), _top(e.target)
        where = f"{e.source}:{e.line} imports {e.target}"
        if e.target in ROOT_MODULES and e.source not in ENTRY_POINTS:
            out.append(f"{where}: the composition root is imported by nothing but the entry point")
        if e.target in ENTRY_POINTS:
            out.append(f"{where}: the command line is an entry point, not a library")
        if src == "skills" and dst == "channels":
            out.append(f"{where}: skills never import channels (the root hands them what they need)")
        if src == "channels" and dst in ("skills", "preferences", "admin"):
            out.append(f"{where}: channels know nothing of skills, preferences or the console")
        if src == "speech" and dst != "speech" and e.target not in SPEECH_ALLOWED:
            out.append(f"{where}: speech uses only {', '.join(sorted(SPEECH_ALLOWED))} of ours")
        if src in ("channels", "skills", "preferences", "admin") and dst == "portal":
            out.append(f"{where}: the portal is a web app on top; the root hands others what they need of it")
        if src == "webui" and dst != "webui" and e.target not in WEBUI_ALLOWED:
            out.append(f"{where}: webui is shared by the web apps and uses only {', '.join(sorted(WEBUI_ALLOWED))} of ours")
        if src == "portal" and dst == "admin":
            out.append(f"{where}: the portal and the console share webui, never each other")
        if src == "portal" and dst == "channels":
            out.append(f"{where}: the portal knows no channel's internals")
        if src == "admin" and dst == "channels" and e.target not in CHANNEL_PUBLIC:
            out.append(f"{where}: the console uses a channel's public face only ({', '.join(sorted(CHANNEL_PUBLIC))})")
    return out


def package_edges(found: list[Edge]) -> dict[tuple[str, str], int]:
    """Imports between top-level packages, with how many module edges each stands for."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for e in found:
        if _top(e.source) != _top(e.target):
            counts[(_top(e.source), _top(e.target))] += 1
    return dict(sorted(counts.items()))


def main() -> int:
    found = edges()
    print(f"{len(modules())} modules, {len(found)} import edges between them")
    print("package edges (module edges behind each):")
    for (src, dst), n in package_edges(found).items():
        print(f"  {src} -> {dst}: {n}")
    root_users = sorted(e.source for e in found if e.target in ROOT_MODULES)
    print(f"modules importing the composition root {sorted(ROOT_MODULES)}: {root_users or 'none'}")
    groups = circles(found)
    print(f"module circles: {len(groups)}")
    for group in groups:
        print("  " + " <-> ".join(group))
    problems = broken_rules(found)
    print(f"broken rules: {len(problems)}")
    for p in problems:
        print("  " + p)
    return 1 if groups or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
