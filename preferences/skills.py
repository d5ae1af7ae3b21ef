"""Chat skills: set and read back notification preferences, export or erase my data.

They act on NLU intents (``turn.nlu``): ``set_preference``, ``ask_preference``,
``export_my_data``, ``delete_my_data``, and ``affirm``/``deny`` for the confirmation
step. A change or an erasure is never applied on the first message: the skill keeps a
pending record in Redis (``kefu:prefs:pending:<customer>``, 10 minutes) and asks; the
customer's affirm applies it, deny drops it. The conversation core owns dialogue state
in general; this small record keeps these skills self-contained until it lands.

Entities read: ``channel`` (wechat, wecom, dingtalk, email), ``frequency`` (immediate,
daily, weekly, major_only), ``detail_level`` (brief, standard, full) and ``time``
(``HH:MM-HH:MM`` quiet hours). "晚上别发消息" / "not at night" without a time sets the
quiet hours to 22:00-08:00.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from typing import Any, ClassVar, Protocol

from redis.asyncio import Redis

from bot.routing import Reply, Skill, Turn
from bot.store import channel_identity
from preferences.data_rights import DataRights
from preferences.model import JsonDict, Topic
from preferences.render import Renderer
from preferences.store import PreferenceStore

PENDING_PREFIX = "kefu:prefs:pending:"
PENDING_TTL_S = 600

_ONLY = re.compile(r"只用|只要|仅用|只通过|\bonly\b", re.IGNORECASE)
_NIGHT = re.compile(r"晚上|夜里|夜间|半夜|睡觉|at night|in the evening|overnight", re.IGNORECASE)
_RANGE = re.compile(r"(\d{1,2})(?::|点|：)?(\d{2})?\s*(?:-|~|到|至|to)\s*(\d{1,2})(?::|点|：)?(\d{2})?")
_NIGHT_HOURS = {"start": "22:00", "end": "08:00"}


class NluLike(Protocol):
    """What the skills need of an NLU result (``bot.nlu.client.ParseResult`` fits)."""

    @property
    def intent(self) -> str: ...

    def entity(self, name: str) -> str | None: ...


# Our name in ConversationState.awaiting while a yes/no question of ours is open.
AWAITING = "preferences"


class PreferenceSkill(Skill):
    """Shared plumbing: who the customer is, the pending record, rendering."""

    intents: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, prefs: PreferenceStore, rights: DataRights, redis: Redis, renderer: Renderer) -> None:
        self.prefs = prefs
        self.rights = rights
        self.redis = redis
        self.renderer = renderer

    def accepts(self, turn: Turn) -> bool:
        return turn.nlu is not None and turn.nlu.intent in self.intents

    async def customer(self, turn: Turn) -> str:
        """The customer writing, created on first contact with this channel's address."""
        msg = turn.message
        return await self.prefs.customer_for(
            msg.channel, msg.account, msg.sender, conversation=msg.conversation, language=turn.language, actor=None, via="chat"
        )

    async def summary(self, customer_id: str, language: str) -> str:
        return self.renderer.render("chat_summary", language, s=summarise(await self.prefs.effective_layer(customer_id)))

    def say(self, name: str, language: str, **context: Any) -> tuple[Reply]:
        return (Reply(text=self.renderer.render(name, language, **context)),)

    async def set_pending(self, customer_id: str, record: JsonDict, turn: Turn | None = None) -> None:
        await self.redis.set(PENDING_PREFIX + customer_id, json.dumps(record, ensure_ascii=False), ex=PENDING_TTL_S)
        if turn is not None and turn.state is not None:
            # Tells the conversation that the next yes/no answers us, not someone else.
            turn.state.awaiting = AWAITING

    async def pop_pending(self, customer_id: str) -> JsonDict | None:
        raw = await self.redis.getdel(PENDING_PREFIX + customer_id)
        return None if raw is None else dict(json.loads(raw))


class SetPreferenceSkill(PreferenceSkill):
    """"以后只用邮件通知我", "only a weekly summary please", "晚上别发消息"."""

    name = "set_preference"
    intents = frozenset({"set_preference"})

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.nlu is not None
        cid = await self.customer(turn)
        current = await self.prefs.effective_layer(cid)
        patch = patch_from(turn.nlu, turn.text, current, self.prefs.book.classes)
        if not patch:
            return self.say("chat_unclear", turn.language)
        await self.set_pending(cid, {"kind": "set", "patch": patch}, turn)
        return self.say("chat_confirm_set", turn.language, summary=self.renderer.render("chat_summary", turn.language, s=summarise(patch)))


class AskPreferenceSkill(PreferenceSkill):
    """Reads back the current settings."""

    name = "ask_preference"
    intents = frozenset({"ask_preference"})

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        cid = await self.customer(turn)
        return self.say("chat_current", turn.language, summary=await self.summary(cid, turn.language))


class ExportDataSkill(PreferenceSkill):
    """Builds the export and sends the link through the preferred channel."""

    name = "export_my_data"
    intents = frozenset({"export_my_data"})

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        cid = await self.customer(turn)
        await self.rights.export_my_data(cid, via="chat")
        return self.say("chat_export_started", turn.language, notice=self.rights.notice(turn.language))


class DeleteDataSkill(PreferenceSkill):
    """Asks for confirmation; the erasure runs on affirm."""

    name = "delete_my_data"
    intents = frozenset({"delete_my_data"})

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        cid = await self.customer(turn)
        code = await self.rights.request_erasure(cid, ttl_s=PENDING_TTL_S)
        await self.set_pending(cid, {"kind": "erase", "code": code}, turn)
        return self.say("chat_erase_confirm", turn.language)


class ConfirmSkill(PreferenceSkill):
    """Affirm applies the pending change or erasure; deny drops it."""

    name = "preference_confirm"
    intents = frozenset({"affirm", "deny"})

    def accepts(self, turn: Turn) -> bool:
        # Only a yes/no that answers our own question; other skills own other yes/nos.
        return super().accepts(turn) and turn.state is not None and turn.state.awaiting == AWAITING

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.nlu is not None
        if turn.state is not None:
            turn.state.awaiting = ""
        cid = await self.customer(turn)
        pending = await self.pop_pending(cid)
        if pending is None:
            return self.say("chat_nothing_pending", turn.language)
        if turn.nlu.intent == "deny":
            return self.say("chat_cancelled", turn.language)
        if pending["kind"] == "erase":
            audit = await self.rights.confirm_erasure(cid, str(pending["code"]), actor=cid, via="chat")
            return self.say("chat_erased", turn.language, erasure_id=audit["_id"])
        await self.prefs.change(cid, pending["patch"], actor=cid, via="chat")
        return self.say("chat_saved", turn.language, summary=await self.summary(cid, turn.language))


def build_skills(prefs: PreferenceStore, rights: DataRights, redis: Redis, renderer: Renderer) -> list[Skill]:
    """The preference skills, in the order they should be tried (one dispatch group)."""
    classes: list[type[PreferenceSkill]] = [SetPreferenceSkill, AskPreferenceSkill, ExportDataSkill, DeleteDataSkill, ConfirmSkill]
    return [cls(prefs, rights, redis, renderer) for cls in classes]


def patch_from(nlu: NluLike, text: str, current: JsonDict, channels: Collection[str]) -> JsonDict:
    """The settings change a ``set_preference`` message asks for ({} if none);
    ``channels`` are the names a customer may choose."""
    patch: JsonDict = {}
    channel = nlu.entity("channel")
    if channel is not None and channel in channels:
        if _ONLY.search(text):
            patch["channels"] = [channel]
        else:  # first choice; the others stay as fallbacks
            patch["channels"] = [channel] + [c for c in current.get("channels", []) if c != channel]
    topics: JsonDict = {}
    frequency = nlu.entity("frequency")
    if frequency in ("immediate", "daily", "weekly", "major_only"):
        for t in Topic:
            topics.setdefault(t.value, {})["frequency"] = frequency
    detail = nlu.entity("detail_level")
    if detail in ("brief", "standard", "full"):
        for t in Topic:
            topics.setdefault(t.value, {})["detail"] = detail
    if topics:
        patch["topics"] = topics
    quiet = _quiet_hours(nlu.entity("time") or "", text)
    if quiet is not None:
        patch["quiet_hours"] = quiet
    return patch


def _quiet_hours(time_entity: str, text: str) -> dict[str, str] | None:
    for source in (time_entity, text):
        m = _RANGE.search(source)
        if m and (time_entity or _NIGHT.search(text) or "免打扰" in text or "quiet" in text.lower() or "别发" in text):
            h1, m1, h2, m2 = int(m.group(1)), int(m.group(2) or 0), int(m.group(3)), int(m.group(4) or 0)
            if h1 < 24 and h2 < 24 and m1 < 60 and m2 < 60:
                return {"start": f"{h1:02d}:{m1:02d}", "end": f"{h2:02d}:{m2:02d}"}
    if _NIGHT.search(text):
        return dict(_NIGHT_HOURS)
    return None


def summarise(settings: JsonDict) -> JsonDict:
    """The parts of a settings layer a customer cares about, for the chat templates."""
    out: JsonDict = {}
    if settings.get("channels"):
        out["channels"] = settings["channels"]
    topics = settings.get("topics") or {}
    freqs = {tp.get("frequency") for tp in topics.values() if tp.get("frequency")}
    details = {tp.get("detail") for tp in topics.values() if tp.get("detail")}
    main = topics.get("repair", {})
    if freqs:
        out["frequency"] = main.get("frequency") or sorted(freqs)[0]
    if details:
        out["detail"] = main.get("detail") or sorted(details)[0]
    if "quiet_hours" in settings:
        out["quiet_hours"] = settings["quiet_hours"]
    if settings.get("language"):
        out["language"] = settings["language"]
    return out
