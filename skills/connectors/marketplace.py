"""Marketplace review connectors (Amazon, Shopee, Temu): pull reviews, reply to one.

Each marketplace has its own answer shape; a connector turns it into :class:`Review`.
Pull: ``GET <reviews path>?cursor=<c>&limit=<n>`` returns reviews after the cursor and
the next cursor. Reply: ``POST <reply path>`` with the text. Webhook pushes arrive at
``POST /api/reviews/webhook/<marketplace>`` and go through the same :meth:`parse`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from skills.connectors.base import Connector, ConnectorRejected


@dataclass(frozen=True, slots=True)
class Review:
    """One review, the same shape for every marketplace."""

    marketplace: str
    review_id: str
    rating: int
    text: str
    order_id: str = ""
    buyer: str = ""
    region: str = ""
    language: str = ""
    created_at: float = 0.0
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.marketplace}:{self.review_id}"


class MarketplaceConnector(Connector):
    reviews_path: ClassVar[str]
    reply_path: ClassVar[str]  # with {review_id}

    def parse(self, item: Mapping[str, Any]) -> Review:
        """One marketplace item as a :class:`Review`; raises ValueError when it is not one."""
        raise NotImplementedError

    async def pull(self, cursor: str, limit: int = 100) -> tuple[list[Review], str]:
        data = await self.request("GET", self.reviews_path, params={"cursor": cursor, "limit": str(limit)})
        items = data.get("reviews", []) if isinstance(data, dict) else []
        return [self.parse(i) for i in items], str(data.get("next_cursor") or cursor)

    async def reply(self, review_id: str, text: str) -> None:
        await self.request("POST", self.reply_path.format(review_id=review_id), json={"text": text})


def _need(item: Mapping[str, Any], key: str) -> Any:
    if key not in item:
        raise ConnectorRejected("marketplace", "bad_review", f"missing {key}")
    return item[key]


class AmazonConnector(MarketplaceConnector):
    """Amazon-style reviews: ``{"reviewId", "starRating", "body", "orderId", "marketplaceId"}``."""

    name = "amazon"
    reviews_path = "/reviews"
    reply_path = "/reviews/{review_id}/comments"

    def parse(self, item: Mapping[str, Any]) -> Review:
        return Review(
            "amazon", str(_need(item, "reviewId")), int(item.get("starRating", 0)), str(item.get("body", "")),
            order_id=str(item.get("orderId", "")), buyer=str(item.get("buyerName", "")), region=str(item.get("marketplaceId", "")),
            created_at=float(item.get("createdAt", 0) or 0),
        )


class ShopeeConnector(MarketplaceConnector):
    """Shopee-style: ``{"comment_id", "rating_star", "comment", "order_sn", "region"}``."""

    name = "shopee"
    reviews_path = "/api/v2/product/get_comment"
    reply_path = "/api/v2/product/reply_comment/{review_id}"

    def parse(self, item: Mapping[str, Any]) -> Review:
        return Review(
            "shopee", str(_need(item, "comment_id")), int(item.get("rating_star", 0)), str(item.get("comment", "")),
            order_id=str(item.get("order_sn", "")), buyer=str(item.get("buyer_username", "")), region=str(item.get("region", "")),
            created_at=float(item.get("create_time", 0) or 0),
        )


class TemuConnector(MarketplaceConnector):
    """Temu-style: ``{"id", "score", "content", "parent_order_sn", "site"}``."""

    name = "temu"
    reviews_path = "/openapi/reviews"
    reply_path = "/openapi/reviews/{review_id}/reply"

    def parse(self, item: Mapping[str, Any]) -> Review:
        return Review(
            "temu", str(_need(item, "id")), int(item.get("score", 0)), str(item.get("content", "")),
            order_id=str(item.get("parent_order_sn", "")), buyer=str(item.get("buyer", "")), region=str(item.get("site", "")),
            created_at=float(item.get("created", 0) or 0),
        )
