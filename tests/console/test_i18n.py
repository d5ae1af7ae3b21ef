"""Every word the console shows exists in Chinese and English."""

from __future__ import annotations

import re
from pathlib import Path

from admin.i18n import ACTION_WORDS, TEXT, text
from admin.roles import Role
from admin.views_trainer import FORM_KINDS, REASONS
from knowledge.label_trail import APPROVED, LABELLED, REVERTED
from knowledge.labels import STATUSES
from knowledge.transcripts import NEW, VERDICTS

ADMIN = Path(__file__).resolve().parents[2] / "admin"


def used_keys() -> set[str]:
    keys: set[str] = set()
    for path in (ADMIN / "templates").glob("*.html"):
        keys |= set(re.findall(r"""\bt\(['"]([a-z_]+)['"]\s*[,)]""", path.read_text(encoding="utf-8")))
    for path in ADMIN.glob("*.py"):
        keys |= set(re.findall(r"""pages\.text\(request, ['"]([a-z_]+)['"]\s*[,)]""", path.read_text(encoding="utf-8")))
    # Keys built from a value: every value they can take.
    keys |= {f"role_{r.value}" for r in Role}
    keys |= {f"signin_blocked_{by}" for by in ("user", "address")}
    keys |= {f"window_closed_{c}" for c in ("wechat", "wecom_kf", "dingtalk")}
    keys |= {f"card_{s}" for s in ("tickets", "contracts", "preferences")}
    keys |= {f"tr_kind_{k}" for k in FORM_KINDS} | {f"tr_reason_{r}" for r in REASONS}
    keys |= {f"tr_status_{s}" for s in STATUSES} | {f"tr_verdict_{v}" for v in (NEW, *VERDICTS)}
    keys |= {f"tr_action_{a}" for a in (LABELLED, APPROVED, REVERTED)} | {f"tr_how_{h}" for h in ("said_again", "restated", "agent")}
    return keys


def test_every_key_in_both_languages() -> None:
    keys = used_keys()
    assert len(keys) > 60
    assert not keys - set(TEXT), f"missing words: {sorted(keys - set(TEXT))}"
    for key in keys:
        zh, en = TEXT[key]
        assert zh and en and zh != en, key


def test_values_fill_in() -> None:
    assert text("claimed_by", "zh", agent="bob") == "该会话已由 bob 接入。"
    assert text("claimed_by", "en", agent="bob") == "bob has this conversation already."
    assert text("no_such_key", "zh") == "no_such_key"


def test_the_skills_actions_are_worded_in_both_languages() -> None:
    for key, (zh, en) in ACTION_WORDS.items():
        assert zh and en and (zh != en or key.startswith("value:")), key
    assert {f"action:{k}" for k in ("ticket", "renewal", "remedy", "case")} <= set(ACTION_WORDS)
