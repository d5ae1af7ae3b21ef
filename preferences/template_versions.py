"""Notification templates edited in the console: checked, versioned, shared by every process.

:class:`TemplateVersions` owns ``pref_templates`` (the edited source of each template
name, e.g. ``zh/renewal.j2`` or ``en/renewal.wechat.j2``, with its version) and
``pref_template_history`` (every version: old and new source, who, when). Version 0 of
a name is the template as shipped. A save compiles the source and renders it with
sample data for every detail level first: a template that does not compile or render
is refused with the line and the message, and nothing is stored.

Processes learn of an edit through a Redis counter (``kefu:prefs:templates:rev``): the
``prefs-templates`` job of each process reloads the edited set when it moved.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError
from redis.asyncio import Redis

from preferences.errors import PreferenceError
from preferences.model import Detail, Topic
from preferences.render import Renderer

Document = dict[str, Any]
REV_KEY = "kefu:prefs:templates:rev"
MAX_SOURCE = 20_000

#: The messages the notification engine renders, in the order the console lists them.
NOTIFICATION_TEMPLATES = (*(t.value for t in Topic), "digest", "export_ready")

_SAMPLE_DATA: dict[str, Document] = {
    "repair": {"ticket_id": "R20261207-1A2B3C", "status": "工程师已出发", "device": "XK-8800", "engineer": "王师傅",
               "eta": "2026-12-08 15:00", "progress": 60,
               "timeline": [{"at": "12-07 09:10", "text": "已受理"}, {"at": "12-07 10:30", "text": "已派单"}]},
    "renewal": {"contract_id": "K-2026-001", "expires": "2027-01-31", "amount": "CNY 185,400", "product": "XK maintenance",
                "days_left": 30, "link": "https://kefu.example.cn/renew/K-2026-001", "services": ["上门维修", "年度保养"]},
    "review": {"title": "关于您的评价", "text": "很抱歉快递延误了。", "remedy": "20 元优惠券", "link": "https://kefu.example.cn/r/1"},
    "account": {"title": "您的账户有更新", "text": "您的联系电话已修改。"},
    "marketing": {"title": "冬季保养季", "text": "预约保养享九折。", "link": "https://kefu.example.cn/m/winter"},
    "export_ready": {"url": "https://kefu.example.cn/api/preferences/exports/t0", "expires_at": 1_797_000_000.0, "timezone": "Asia/Shanghai"},
}


class TemplateProblem(PreferenceError):
    """A template that does not compile or does not render with sample data."""

    code = "template_invalid"
    status = 400

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True, slots=True)
class TemplateName:
    """``<language>/<message>[.<channel>].j2``"""

    language: str
    message: str
    channel: str

    @property
    def key(self) -> str:
        return f"{self.language}/{self.message}{'.' + self.channel if self.channel else ''}.j2"

    @classmethod
    def parse(cls, key: str, channels: tuple[str, ...]) -> TemplateName:
        language, _, rest = key.partition("/")
        if language not in ("zh", "en") or not rest.endswith(".j2"):
            raise TemplateProblem(f"unknown template {key!r}")
        message, _, channel = rest[:-3].partition(".")
        if message not in NOTIFICATION_TEMPLATES or (channel and channel not in channels):
            raise TemplateProblem(f"unknown template {key!r}")
        return cls(language, message, channel)


def sample_context(message: str, detail: str, language: str, renderer: Renderer, data: Mapping[str, Any] | None = None) -> Document:
    """What the engine passes a template, with sample data (or a real notification's)."""
    if message == "digest":
        entries = [
            {"text": renderer.render(t, language, "", data=_SAMPLE_DATA[t], detail="brief"),
             "headline": renderer.render(t, language, "", data=_SAMPLE_DATA[t], detail="brief").splitlines()[0]}
            for t in ("repair", "renewal")
        ]
        return {"period": "weekly", "total": 2, "groups": [{"topic": t, "entries": [e]} for t, e in zip(("repair", "renewal"), entries)]}
    return {"data": dict(data if data is not None else _SAMPLE_DATA.get(message, {})), "detail": detail}


def check(renderer: Renderer, name: TemplateName, source: str, data: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Compile ``source`` as template ``name`` and render it for every detail level;
    returns the previews (detail -> text) or raises :class:`TemplateProblem`."""
    if len(source) > MAX_SOURCE:
        raise TemplateProblem(f"a template may have at most {MAX_SOURCE} characters")
    try:
        renderer.env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"line {exc.lineno}: {exc.message}", line=exc.lineno) from None
    preview = renderer.variant({name.key: source})
    out: dict[str, str] = {}
    for detail in Detail:
        try:
            out[detail.value] = preview.render(
                name.message, name.language, name.channel, **sample_context(name.message, detail.value, name.language, preview, data)
            )
        except jinja2.TemplateError as exc:
            line = _line_of(exc)
            where = f"line {line}: " if line else ""
            raise TemplateProblem(f"{where}{type(exc).__name__}: {exc}", line=line) from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
            raise TemplateProblem(f"{type(exc).__name__}: {exc}") from None
    return out


def _line_of(exc: BaseException) -> int | None:
    line = getattr(exc, "lineno", None)
    if isinstance(line, int):
        return line
    tb = exc.__traceback__
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


def unified_diff(old: str, new: str, old_label: str, new_label: str) -> list[str]:
    return list(difflib.unified_diff(old.splitlines(), new.splitlines(), old_label, new_label, lineterm=""))


class TemplateVersions:
    """The edited templates and their history; the single writer of both collections."""

    def __init__(self, db: AsyncDatabase[Document], redis: Redis, renderer: Renderer) -> None:
        self.current = db["pref_templates"]
        self.history = db["pref_template_history"]
        self.redis = redis
        self.renderer = renderer
        self._seen_rev: int | None = None

    async def ensure_indexes(self) -> None:
        await self.history.create_indexes([IndexModel([("key", ASCENDING), ("version", DESCENDING)])])

    async def edited(self) -> dict[str, Document]:
        return {str(d["_id"]): d async for d in self.current.find({})}

    def source(self, key: str) -> str:
        """The source in use for ``key`` (edited or shipped; empty when neither)."""
        return self.renderer.sources.get(key, "")

    async def save(self, name: TemplateName, source: str, *, actor: str, note: str = "") -> int:
        """Check and store a new version; the renderer of this process uses it at once."""
        check(self.renderer, name, source)
        return await self._store(name.key, source, actor, note)

    async def rollback(self, name: TemplateName, version: int, *, actor: str) -> int:
        """Restore ``version`` (0: as shipped) as a new version."""
        if version == 0:
            source = self.renderer.base.get(name.key)
        else:
            rec = await self.history.find_one({"key": name.key, "version": version})
            if rec is None:
                raise TemplateProblem(f"{name.key} has no version {version}")
            source = rec["new"]
        if source is None:
            raise TemplateProblem(f"{name.key} was not shipped; nothing to restore")
        check(self.renderer, name, source)
        return await self._store(name.key, source, actor, f"rollback to {version}")

    async def versions(self, key: str) -> list[Document]:
        return [d async for d in self.history.find({"key": key}, projection={"_id": 0}).sort("version", DESCENDING).limit(100)]

    async def version_source(self, key: str, version: int) -> str | None:
        if version == 0:
            return self.renderer.base.get(key)
        rec = await self.history.find_one({"key": key, "version": version})
        return None if rec is None else str(rec["new"])

    async def _store(self, key: str, source: str, actor: str, note: str) -> int:
        doc = await self.current.find_one({"_id": key})
        old = str(doc["source"]) if doc is not None else self.renderer.base.get(key, "")
        version = int(doc["version"]) + 1 if doc is not None else 1
        # Compare-and-set on the version: two editors cannot both write version n.
        if doc is None:
            try:
                await self.current.insert_one({"_id": key, "source": source, "version": version, "at": time.time(), "actor": actor})
            except DuplicateKeyError:
                raise TemplateProblem("someone saved this template at the same moment; reload and try again") from None
        else:
            res = await self.current.update_one(
                {"_id": key, "version": version - 1}, {"$set": {"source": source, "version": version, "at": time.time(), "actor": actor}}
            )
            if res.matched_count == 0:
                raise TemplateProblem("someone saved this template at the same moment; reload and try again")
        await self.history.insert_one(
            {"_id": f"{key}#{version}", "key": key, "version": version, "at": time.time(), "actor": actor, "old": old, "new": source, "note": note}
        )
        await self.redis.incr(REV_KEY)
        await self.sync(force=True)
        return version

    async def sync(self, *, force: bool = False) -> bool:
        """Reload the edited templates if another process (or this one) changed them."""
        raw = await self.redis.get(REV_KEY)
        rev = int(raw) if raw is not None else 0
        if not force and rev == self._seen_rev:
            return False
        self._seen_rev = rev
        self.renderer.edited({k: str(d["source"]) for k, d in (await self.edited()).items()})
        return True
