"""The PDF summary of what Kefu holds about a customer and who on their side sees what.

It states, in the customer's language: what we hold (each category with its count), how
each voice note was processed (model, where the audio is, how long the transcript is
kept), how the customer hears from us (channel order, quiet hours, and per topic the
frequency and detail), their own rules, who may see which modules (and when each last
looked) and the latest portal activity. :func:`render_pdf` draws it with fpdf2 and an
embedded CJK font, so Chinese renders in any reader; :mod:`portal.signing` signs the
bytes it returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from portal.errors import PortalError
from portal.i18n import text
from portal.members import Member
from preferences.model import Preferences
from preferences.rules import Rule

#: Debian's fonts-noto-cjk; index 2 of the collection is Simplified Chinese.
FONT_CANDIDATES = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),
)
AUDIT_LINES = 30
VOICE_LINES = 20


class FontMissing(PortalError):
    code = "font_missing"
    status = 503


@dataclass(frozen=True, slots=True)
class SummaryFacts:
    """Everything the summary states, read by the portal before drawing starts."""

    made_at: float
    prefs: Preferences
    counts: dict[str, int]
    retention_days: int
    voice: Sequence[dict[str, Any]]
    rules: Sequence[Rule]
    members: Sequence[Member]
    audit: Sequence[dict[str, Any]]
    key_fingerprint: str
    key_url: str


def find_font(configured: str = "") -> tuple[str, int]:
    """The font file (and collection index) to embed; FontMissing names the fix."""
    candidates = ((configured, 0 if not configured.endswith(".ttc") else 2),) if configured else FONT_CANDIDATES
    for path, index in candidates:
        if Path(path).is_file():
            return path, index
    raise FontMissing("no CJK font for the PDF summary (apt-get install fonts-noto-cjk, or set portal.summary_font)")


def render_pdf(facts: SummaryFacts, font: tuple[str, int]) -> bytes:
    """CPU work (the font alone takes about half a second to read): call it in a thread."""
    lang = facts.prefs.language if facts.prefs.language in ("zh", "en") else "zh"
    tz = facts.prefs.tz
    doc = _Doc(font, lang, tz)

    def t(key: str, **values: Any) -> str:
        return text(key, lang, **values)

    doc.set_title(t("summary_title"))
    doc.set_creator("Kefu")
    doc.set_creation_date(datetime.fromtimestamp(facts.made_at, tz))
    doc.add_page()
    doc.heading(t("summary_title"), size=16)
    doc.line_of(t("summary_made", when=doc.when(facts.made_at)))
    doc.line_of(t("summary_key", fingerprint=facts.key_fingerprint))
    doc.line_of(t("summary_key_url", url=facts.key_url), small=True)

    doc.heading(t("what_we_hold"))
    doc.rows([(t("cat_" + name), str(n)) for name, n in facts.counts.items()])

    doc.heading(t("voice_notes"))
    doc.line_of(t("transcript_where", days=facts.retention_days), small=True)
    if not facts.voice:
        doc.line_of(t("no_voice"))
    for v in facts.voice[:VOICE_LINES]:
        transcript = v.get("transcript") or {}
        media = v.get("media") or {}
        model = (
            f"Whisper · {transcript.get('model') or transcript.get('engine') or ''}"
            if transcript.get("source") == "whisper" else t("platform_recognition")
        )
        if media.get("audio_deleted_at"):
            audio = t("audio_deleted", when=doc.when(media["audio_deleted_at"]))
        else:
            audio = t("audio_kept") if v.get("audio_kept") else t("audio_platform", channel=v.get("channel", ""))
        doc.line_of(f"{doc.when(v.get('ts'))} · {v.get('channel', '')} · {t('transcribed_by')}: {model} · {t('audio_where')}: {audio}")

    doc.heading(t("module_notify"))
    p = facts.prefs
    doc.line_of(f"{t('channels')}: {' → '.join(p.channels)}")
    quiet = f"{p.quiet_hours.start:%H:%M}-{p.quiet_hours.end:%H:%M}" if p.quiet_hours else "-"
    doc.line_of(f"{t('quiet_hours')}: {quiet} · {t('language')}: {p.language} · {t('timezone')}: {p.timezone}")
    doc.rows([
        (t("topic_" + topic.value), t("opted_out") if tp.opted_out else f"{t('freq_' + tp.frequency.value)} · {t('detail_' + tp.detail.value)}")
        for topic, tp in p.topics.items()
    ])

    doc.heading(t("module_rules"))
    if not facts.rules:
        doc.line_of(t("summary_none"))
    for r in facts.rules:
        doc.line_of(f"{t('topic_' + r.topic.value)} · {t('cond_' + r.condition)} {r.value} → {r.email}")

    doc.heading(t("module_people"))
    doc.line_of(t("summary_owner_sees"))
    for m in facts.members:
        state = t("summary_revoked", when=doc.when(m.revoked_at)) if m.revoked_at else t("summary_last_seen", when=doc.when(m.last_seen) or "-")
        doc.line_of(f"{m.contact}: {', '.join(t('module_' + mod.value) for mod in m.modules)} · {state}")

    doc.heading(t("activity"))
    for a in facts.audit[:AUDIT_LINES]:
        who = f" ({t('actor_colleague', who=a['member'])})" if a.get("member") else ""
        doc.line_of(f"{doc.when(a.get('at'))} {t('act_' + str(a.get('action', '')))}{who}", small=True)
    return bytes(doc.output())


class _Doc(FPDF):
    """An A4 page flow of headings, lines and two-column rows in one embedded font."""

    def __init__(self, font: tuple[str, int], language: str, tz: ZoneInfo) -> None:
        super().__init__(format="A4")
        self.language = language
        self.tz = tz
        self.add_font("body", fname=font[0], collection_font_number=font[1])
        self.set_auto_page_break(True, margin=15)
        self.set_margins(15, 15, 15)

    def when(self, ts: float | None) -> str:
        return datetime.fromtimestamp(float(ts), self.tz).strftime("%Y-%m-%d %H:%M") if ts else ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("body", size=8)
        self.cell(0, 6, f"{self.page_no()}", align="C")

    def heading(self, words: str, size: int = 13) -> None:
        self.ln(3)
        self.set_font("body", size=size)
        self.multi_cell(0, size * 0.6, words, new_x="LMARGIN", new_y="NEXT")
        self.ln(1)

    def line_of(self, words: str, *, small: bool = False) -> None:
        self.set_font("body", size=8 if small else 10)
        self.multi_cell(0, 5 if small else 6, words, new_x="LMARGIN", new_y="NEXT")

    def rows(self, pairs: Sequence[tuple[str, str]]) -> None:
        self.set_font("body", size=10)
        with self.table(col_widths=(60, 120), text_align=("LEFT", "LEFT"), first_row_as_headings=False, line_height=6) as table:
            for label, value in pairs:
                row = table.row()
                row.cell(label)
                row.cell(value)


async def render_in_thread(facts: SummaryFacts, font: tuple[str, int]) -> bytes:
    return await asyncio.to_thread(render_pdf, facts, font)
