"""Coupons: ``POST /api/v1/coupons`` ``{customer, amount, currency, reason, idempotency_key}``.

Answer: ``{"code": "CP-...", "amount": 20, "expires": "2026-12-31"}``. The idempotency key
makes a retried issue return the same coupon.
"""

from __future__ import annotations

from dataclasses import dataclass

from skills.connectors.base import Connector, ConnectorUnavailable


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    amount: float
    currency: str
    expires: str = ""


class CouponConnector(Connector):
    name = "coupons"

    async def issue(self, *, customer: str, amount: float, currency: str, reason: str, idempotency_key: str) -> Coupon:
        data = await self.request(
            "POST",
            "/api/v1/coupons",
            json={"customer": customer, "amount": amount, "currency": currency, "reason": reason, "idempotency_key": idempotency_key},
        )
        if not isinstance(data, dict) or not data.get("code"):
            raise ConnectorUnavailable(self.name, "bad_answer", f"no code in {data!r:.200}")
        return Coupon(str(data["code"]), float(data.get("amount", amount)), str(data.get("currency", currency)), str(data.get("expires", "")))
