"""A fake of WeCom KF's API: the WeCom fake plus message sync, sends and session state.

Tests and ``kefu simulate wecom_kf`` add customer messages to a KF account's log
(:meth:`FakeWeComKfAPI.add_customer_message`, or ``POST /_kf/messages`` over HTTP) and
get the callback token to announce them with; ``kf/sync_msg`` then serves that log by
cursor in pages of ``page_size`` with ``has_more``, as WeCom does. Sends, session-state
changes and every sync call (with the cursor and token it used) are recorded, and any
path can be failed on demand (``fail_next(path=..., after=...)``).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from channels.wecom.fake_api import FakeWeComAPI

SYNC_PATH = "/cgi-bin/kf/sync_msg"


@dataclass(frozen=True)
class SyncCall:
    open_kfid: str
    cursor: str
    token: str
    returned: int = 0
    voice_format: int = 0


@dataclass
class _Session:
    state: int = 0
    servicer_userid: str = ""
    history: list[int] = field(default_factory=list)


class FakeWeComKfAPI(FakeWeComAPI):
    SEND_PATH: ClassVar[str] = "/cgi-bin/kf/send_msg"

    def __init__(self, *, page_size: int = 1000, **kw: Any) -> None:
        super().__init__(**kw)
        self.page_size = page_size
        self.logs: dict[str, list[dict[str, Any]]] = {}
        self.sync_calls: list[SyncCall] = []
        self.sessions: dict[tuple[str, str], _Session] = {}
        self.event_sends: list[dict[str, Any]] = []
        self.msgids: set[str] = set()
        self._callback_tokens: set[str] = set()
        self._msg_seq = itertools.count(1)
        self._cb_seq = itertools.count(1)

    # -- control ----------------------------------------------------------------------
    def add_item(self, open_kfid: str, item: dict[str, Any]) -> str:
        """Append a raw msg_list item to a KF account's log; returns its msgid."""
        item = {"open_kfid": open_kfid, "send_time": int(time.time()), **item}
        item.setdefault("msgid", f"msg{next(self._msg_seq):08d}{open_kfid[-6:]}")
        self.logs.setdefault(open_kfid, []).append(item)
        return str(item["msgid"])

    def add_customer_message(
        self, open_kfid: str, external_userid: str, text: str = "", *, msgtype: str = "text", body: dict[str, Any] | None = None
    ) -> str:
        """A message a WeChat customer wrote (origin 3); returns its msgid."""
        content = body if body is not None else {"content": text}
        return self.add_item(
            open_kfid, {"external_userid": external_userid, "origin": 3, "msgtype": msgtype, msgtype: content}
        )

    def add_event(self, open_kfid: str, external_userid: str, event_type: str, **extra: Any) -> str:
        """A system event about a customer (origin 4), e.g. enter_session."""
        event = {"event_type": event_type, "open_kfid": open_kfid, "external_userid": external_userid, **extra}
        return self.add_item(open_kfid, {"origin": 4, "msgtype": "event", "event": event})

    def callback_token(self) -> str:
        """The one-time Token a kf_msg_or_event callback carries (valid for sync_msg)."""
        token = f"ENC{next(self._cb_seq):06d}{int(time.time())}"
        self._callback_tokens.add(token)
        return token

    def session(self, open_kfid: str, external_userid: str) -> _Session:
        return self.sessions.setdefault((open_kfid, external_userid), _Session())

    # -- HTTP ---------------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        return super().routes() + [
            web.post(SYNC_PATH, self._sync_msg),
            web.post("/cgi-bin/kf/send_msg", self._send_msg),
            web.post("/cgi-bin/kf/send_msg_on_event", self._send_msg_on_event),
            web.post("/cgi-bin/kf/service_state/get", self._state_get),
            web.post("/cgi-bin/kf/service_state/trans", self._state_trans),
            web.post("/_kf/messages", self._add_message),
        ]

    async def _sync_msg(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        body = await request.json()
        open_kfid = str(body.get("open_kfid", ""))
        cursor = str(body.get("cursor", ""))
        token = str(body.get("token", ""))
        if token and token not in self._callback_tokens:
            return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
        if cursor and not (cursor.startswith("CUR") and cursor[3:].isdigit()):
            return web.json_response({"errcode": 95012, "errmsg": "invalid cursor"})
        log = self.logs.get(open_kfid, [])
        start = int(cursor[3:]) if cursor else 0
        limit = min(int(body.get("limit") or 1000), self.page_size)
        page = log[start : start + limit]
        end = start + len(page)
        self.sync_calls.append(SyncCall(open_kfid, cursor, token, len(page), int(body.get("voice_format") or 0)))
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "next_cursor": f"CUR{end:08d}", "has_more": int(end < len(log)), "msg_list": page}
        )

    async def _send_msg(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        payload = await request.json()
        touser, open_kfid = str(payload.get("touser", "")), str(payload.get("open_kfid", ""))
        if not touser or not open_kfid or payload.get("msgtype") not in payload:
            return web.json_response({"errcode": 40008, "errmsg": "invalid message"})
        if self.session(open_kfid, touser).state in (2, 3):
            # A queued or human-held session does not take API messages.
            return web.json_response({"errcode": 95018, "errmsg": "send msg session status invalid"})
        msgid = str(payload.get("msgid") or f"sent{len(self.sent) + 1}")
        if msgid in self.msgids:
            # Whether WeCom refuses or collapses a repeated msgid is not documented; the
            # fake collapses it, so tests count what a customer would see either way.
            self.duplicates_dropped += 1
            return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})
        self.msgids.add(msgid)
        self.record_send(payload)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": msgid})

    async def _send_msg_on_event(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        self.event_sends.append(await request.json())
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"event{len(self.event_sends)}"})

    async def _state_get(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        body = await request.json()
        session = self.session(str(body.get("open_kfid", "")), str(body.get("external_userid", "")))
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "service_state": session.state, "servicer_userid": session.servicer_userid}
        )

    async def _state_trans(self, request: web.Request) -> web.Response:
        if (refused := await self.guard(request)) is not None:
            return refused
        body = await request.json()
        state = body.get("service_state")
        servicer = str(body.get("servicer_userid", "") or "")
        if state not in (0, 1, 2, 3, 4) or (state == 3 and not servicer):
            return web.json_response({"errcode": 95016, "errmsg": "invalid service state transition"})
        session = self.session(str(body.get("open_kfid", "")), str(body.get("external_userid", "")))
        session.state = int(state)
        session.servicer_userid = servicer if state == 3 else ""
        session.history.append(int(state))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": f"MSGCODE{len(session.history)}"})

    async def _add_message(self, request: web.Request) -> web.Response:
        # Test/simulator control, not a WeCom API: no token needed.
        body = await request.json()
        open_kfid, user = str(body["open_kfid"]), str(body["external_userid"])
        if body.get("event"):
            msgid = self.add_event(open_kfid, user, str(body["event"]))
        else:
            msgtype = str(body.get("msgtype", "text"))
            content = body.get(msgtype) if isinstance(body.get(msgtype), dict) else {"content": str(body.get("text", ""))}
            msgid = self.add_customer_message(open_kfid, user, msgtype=msgtype, body=content)
        return web.json_response({"msgid": msgid, "token": self.callback_token()})
