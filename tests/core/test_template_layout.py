"""Every reply template keeps its line breaks, in Chinese and English, on every channel.

The template environments strip the newline after a block tag (``trim_blocks``), so a
line of text that ends in ``{% endif %}`` or ``{% endfor %}`` would run into the next
line ("…钉钉频率：每周汇总"). Such a tag must end in ``+%}``; the lint below finds every
template that forgets it, and the renders show the layout a customer reads.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.skillset import TEMPLATE_DIRS
from bot.templates import Templates
from preferences.render import Renderer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(p for p in ROOT.rglob("*.j2") if not {".venv", "var", "build"} & set(p.relative_to(ROOT).parts))
_TAG = re.compile(r"\{%.*?%\}")
_ENDS_IN_TAG = re.compile(r"\{%[^%]*?(?<![-+])%\}\s*$")
CHANNELS = ("wechat", "wecom", "wecom_kf", "dingtalk", "email")
SETTINGS = {
    "channels": ["email", "wechat", "wecom", "dingtalk"], "frequency": "weekly", "detail": "full",
    "quiet_hours": {"start": "22:00", "end": "08:00"}, "language": "zh",
}


def test_the_templates_are_found() -> None:
    assert len(TEMPLATES) > 100


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_line_of_text_loses_its_line_break(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    last = max(i for i, line in enumerate(lines) if line.strip())
    joined = [i + 1 for i, line in enumerate(lines[:last]) if _ENDS_IN_TAG.search(line) and _TAG.sub("", line).strip()]
    assert not joined, f"lines {joined} end in a block tag without +%}} and run into the next line"


@pytest.mark.parametrize("channel", CHANNELS)
def test_settings_replies_one_setting_a_line(channel: str) -> None:
    r = Renderer()
    zh = r.render("chat_current", "zh", channel, summary=r.render("chat_summary", "zh", channel, s=SETTINGS)).split("\n")
    assert zh[1:6] == ["通知渠道：邮件 → 微信 → 企业微信 → 钉钉", "频率：每周汇总", "详细程度：详细", "免打扰：22:00-08:00", "语言：中文"]
    en = r.render("chat_saved", "en", channel, summary=r.render("chat_summary", "en", channel, s=SETTINGS)).split("\n")
    assert en[1:] == ["Channels: email -> WeChat -> WeCom -> DingTalk", "Frequency: weekly", "Detail: full", "Quiet hours: 22:00-08:00", "Language: Chinese"]


def test_repair_reply_lists_each_part_on_its_own_line() -> None:
    t = Templates(TEMPLATE_DIRS)
    ticket = {"number": "R1", "device_model": "XK-8800", "fault": "不制冷", "eta": "12-07 15:39"}
    engineer = {"name": "王强", "eta_min": 30, "qualification": "q", "cert_no": "c", "rating": 4.7, "nps": 93, "completed": 62}
    parts = [{"name": "压缩机", "part_no": "P-1", "qty": 2}, {"name": "风机", "part_no": "P-2", "qty": 0}]
    for lang, first, second in (("zh", "备件 压缩机（P-1）：有货 2 件", "备件 风机（P-2）：缺货，已安排调拨"), ("en", "Part 压缩机 (P-1): 2 in stock", "Part 风机 (P-2): out of stock, a transfer is arranged")):
        text = t.render("repair_dispatched", lang, ticket=ticket, detail="full", pending=[], engineer=engineer, alternates=[], parts=parts, warranty={"covered": True, "contract_id": "K", "sla_hours": 4})
        lines = text.split("\n")
        assert first in lines and second in lines, text
