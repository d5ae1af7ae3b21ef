"""Every word the portal's templates ask for exists in Chinese and English."""

from __future__ import annotations

import re
from pathlib import Path

from portal.i18n import TEXT
from portal.members import Module
from preferences.model import Detail, Frequency, Topic
from preferences.rules import CONDITIONS
from preferences.store import VIA
from skills.repair_dispatch.assign import STATUSES

TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
PORTAL = Path(__file__).resolve().parents[2] / "portal"
STATIC_KEY = re.compile(r"""\bt\('([a-z_.]+)'[,)]""")
AUDITED = re.compile(r"""audit\.record\(\s*\w+,\s*"([a-z_.]+)\"""")


def test_static_keys_exist_in_both_languages() -> None:
    used = {k for f in TEMPLATES.glob("*.html") for k in STATIC_KEY.findall(f.read_text())}
    assert used, "the pattern finds the template keys"
    missing = sorted(used - set(TEXT))
    assert not missing
    assert all(zh and en and zh != en for zh, en in TEXT.values() if zh not in ("JSON",))


def test_keys_built_from_values_exist() -> None:
    families = {
        "module_": [m.value for m in Module], "module_hint": [f"{m.value}_hint" for m in Module],
        "status_": list(STATUSES), "topic_": [t.value for t in Topic], "freq_": [f.value for f in Frequency],
        "detail_": [d.value for d in Detail], "cond_": list(CONDITIONS), "via_": list(VIA),
    }
    wanted = {("module_" if family == "module_hint" else family) + v for family, values in families.items() for v in values}
    actions = {a for f in PORTAL.glob("*.py") for a in AUDITED.findall(f.read_text())}
    assert "data.export" in actions
    wanted |= {f"act_{a}" for a in actions}
    assert not sorted(wanted - set(TEXT))
