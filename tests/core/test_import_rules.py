"""The import structure holds: no circles, the composition root is a leaf, and the layer
rules between packages (see tests/import_rules.py; run it as a module to see the edges)."""

from __future__ import annotations

from tests import import_rules


def test_no_import_circles() -> None:
    assert import_rules.circles(import_rules.edges()) == []


def test_layer_rules_hold() -> None:
    assert import_rules.broken_rules(import_rules.edges()) == []


def test_rules_catch_what_they_forbid() -> None:
    forbidden = [
        import_rules.Edge("skills.notifier", "channels.wechat.client", 1),
        import_rules.Edge("channels.wechat.channel", "preferences.store", 2),
        import_rules.Edge("speech.pool", "bot.store", 3),
        import_rules.Edge("admin.pages", "channels.wecom.crypto", 4),
        import_rules.Edge("preferences.api", "bot.app", 5),
        import_rules.Edge("portal.access", "admin.forms", 6),
        import_rules.Edge("admin.views_inbox", "portal.state", 7),
        import_rules.Edge("webui.sessions", "bot.config", 8),
    ]
    assert len(import_rules.broken_rules(forbidden)) == len(forbidden)
    allowed = [
        import_rules.Edge("speech.errors", "bot.errors", 1),
        import_rules.Edge("admin.pages", "channels.base", 2),
        import_rules.Edge("bot.cli", "bot.app", 3),
        import_rules.Edge("webui.errors", "bot.errors", 4),
        import_rules.Edge("portal.access", "webui.sessions", 5),
    ]
    assert import_rules.broken_rules(allowed) == []
    loop = [import_rules.Edge("a", "b", 1), import_rules.Edge("b", "c", 1), import_rules.Edge("c", "a", 1)]
    assert import_rules.circles(loop) == [["a", "b", "c"]]


def test_every_package_module_is_read() -> None:
    found = import_rules.modules()
    assert {"bot.app", "channels.base", "skills.services", "preferences.model", "speech.pool"} <= set(found)
