"""Fake outside systems on loopback, for the tests and the embedded demo.

Each fake records what it was asked and can be told to fail (``fail_next``) or go down
(``down = True``: every call answers 503), so tests exercise the skills' degraded paths
through real HTTP, the way ``aiohttp/examples/fake_server.py`` suggests.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any

from aiohttp import web


class FakeSystem:
    def __init__(self, *, latency_s: float = 0.0) -> None:
        self.latency_s = latency_s
        self.down = False
        self.calls: list[dict[str, Any]] = []
        self._failures: deque[int] = deque()
        self._seq = itertools.count(1)

    def fail_next(self, times: int = 1, *, status: int = 500) -> None:
        self._failures.extend([status] * times)

    async def _gate(self, request: web.Request) -> web.Response | None:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if self.down:
            return web.json_response({"error": "down"}, status=503)
        if self._failures:
            return web.json_response({"error": "injected"}, status=self._failures.popleft())
        return None

    def app(self) -> web.Application:
        raise NotImplementedError


class FakeErp(FakeSystem):
    """``GET /api/v1/stock``; stock defaults to 5 of everything unless set in ``stock``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.stock: dict[str, int] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v1/stock", self._stock)
        return app

    async def _stock(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        parts = [p for p in request.query.get("parts", "").split(",") if p]
        self.calls.append({"parts": parts, "region": request.query.get("region", "")})
        return web.json_response({"stock": {p: {"qty": self.stock.get(p, 5), "warehouse": "NJ-01"} for p in parts}})


class FakeServiceNow(FakeSystem):
    """``POST /api/now/table/incident``; checks basic auth or bearer when configured."""

    def __init__(self, *, user: str = "", password: str = "", token: str = "", **kw: Any) -> None:
        super().__init__(**kw)
        self.user, self.password, self.token = user, password, token
        self.incidents: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/now/table/incident", self._incident)
        return app

    def _authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        if self.token:
            return auth == f"Bearer {self.token}"
        if self.user:
            import base64

            return auth == "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return True

    async def _incident(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        if not self._authorized(request):
            return web.json_response({"error": {"message": "User Not Authenticated"}}, status=401)
        body = await request.json()
        n = next(self._seq)
        record = {"sys_id": f"{n:032x}", "number": f"INC{10000 + n:07d}", **body}
        self.incidents.append(record)
        return web.json_response({"result": record}, status=201)


class FakeCoupons(FakeSystem):
    """``POST /api/v1/coupons``, idempotent on ``idempotency_key``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.issued: dict[str, dict[str, Any]] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/v1/coupons", self._issue)
        return app

    async def _issue(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        body = await request.json()
        key = str(body.get("idempotency_key", ""))
        if key not in self.issued:
            self.issued[key] = {**body, "code": f"CP-{next(self._seq):06d}", "expires": "2099-12-31"}
        return web.json_response(self.issued[key])


class FakeMarketplace(FakeSystem):
    """Reviews after a cursor (the cursor is the index of the next review) and replies."""

    reviews_path = ""
    reply_path = ""  # aiohttp route with {review_id}

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reviews: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []

    def add(self, item: dict[str, Any]) -> None:
        self.reviews.append(item)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(self.reviews_path, self._pull)
        app.router.add_post(self.reply_path, self._reply)
        return app

    async def _pull(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        start = int(request.query.get("cursor") or 0)
        limit = int(request.query.get("limit") or 100)
        items = self.reviews[start : start + limit]
        return web.json_response({"reviews": items, "next_cursor": str(start + len(items))})

    async def _reply(self, request: web.Request) -> web.Response:
        if (failed := await self._gate(request)) is not None:
            return failed
        body = await request.json()
        self.replies.append({"review_id": request.match_info["review_id"], "text": body.get("text", ""), "at": time.time()})
        return web.json_response({"ok": True})


class FakeAmazon(FakeMarketplace):
    reviews_path = "/reviews"
    reply_path = "/reviews/{review_id}/comments"


class FakeShopee(FakeMarketplace):
    reviews_path = "/api/v2/product/get_comment"
    reply_path = "/api/v2/product/reply_comment/{review_id}"


class FakeTemu(FakeMarketplace):
    reviews_path = "/openapi/reviews"
    reply_path = "/openapi/reviews/{review_id}/reply"
