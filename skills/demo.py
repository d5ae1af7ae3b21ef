"""Demo data for the embedded demo (``simulator: true``), loaded idempotently at start.

The WeChat customer ``kefu simulate`` speaks as (``oSimulatedCustomer`` on account
``demo``) is a known customer with an XK-8800 under a maintenance contract, so
``kefu simulate wechat --text "我的XK-8800不制冷了"`` runs the whole repair loop at once.
Every document has a fixed ``_id`` and is upserted: restarting changes nothing.
"""

from __future__ import annotations

import time

from pymongo import UpdateOne
from pymongo.asynchronous.database import AsyncDatabase

from bot.mongo import Document

DAY = 86_400.0

DEMO_IDENTITY = "wechat:demo:oSimulatedCustomer"

CUSTOMERS: list[Document] = [
    {
        "_id": "C-1001", "name": "李雷", "company": "南京鼓楼冷链有限公司", "identities": [DEMO_IDENTITY],
        "address": "南京市鼓楼区中山路88号", "location": [32.0617, 118.7778], "region": "east",
        "registered_capital": 3_000_000, "language": "zh",
        "contacts": [{"role": "CTO", "name": "韩梅梅", "email": "cto@gulou-cold.example.cn"}],
    },
    {
        "_id": "C-1002", "name": "Wang Fang", "company": "Hangzhou Lake Foods", "identities": ["wechat:demo:oDemoEnglish"],
        "address": "12 Lake Street, Hangzhou", "location": [30.2741, 120.1551], "region": "east",
        "registered_capital": 20_000_000, "language": "en",
        "contacts": [{"role": "CTO", "name": "Zhou Min", "email": "cto@lakefoods.example.cn"}],
    },
]

DEVICES: list[Document] = [
    {"_id": "SN-XK8800-0001", "customer": "C-1001", "model": "XK-8800", "contract_id": "K-2025-001"},
    {"_id": "SN-XK9900-0002", "customer": "C-1002", "model": "XK-9900", "contract_id": "K-2025-002"},
]

ENGINEERS: list[Document] = [
    {"_id": "E-01", "name": "张伟", "union_id": "union-zhangwei", "qualification": "制冷设备高级维修工", "cert_no": "RZ-32-0451",
     "categories": ["cooling", "leak"], "completed": {"cooling": 148, "leak": 31}, "nps": 96, "rating": 4.9,
     "location": [32.0415, 118.7845], "load": 1, "region": "east"},
    {"_id": "E-02", "name": "王强", "union_id": "union-wangqiang", "qualification": "制冷设备中级维修工", "cert_no": "RZ-32-0788",
     "categories": ["cooling", "power"], "completed": {"cooling": 62, "power": 40}, "nps": 93, "rating": 4.7,
     "location": [32.0900, 118.8000], "load": 0, "region": "east"},
    {"_id": "E-03", "name": "刘洋", "union_id": "union-liuyang", "qualification": "制冷设备高级维修工", "cert_no": "RZ-32-0112",
     "categories": ["cooling", "noise"], "completed": {"cooling": 210, "noise": 55}, "nps": 98, "rating": 5.0,
     "location": [31.9500, 118.8500], "load": 3, "region": "east"},
    {"_id": "E-04", "name": "陈静", "union_id": "union-chenjing", "qualification": "电气维修技师", "cert_no": "DQ-32-0930",
     "categories": ["power", "display"], "completed": {"power": 88, "display": 47}, "nps": 95, "rating": 4.8,
     "location": [32.0700, 118.7600], "load": 1, "region": "east"},
    {"_id": "E-05", "name": "赵磊", "union_id": "union-zhaolei", "qualification": "制冷设备初级维修工", "cert_no": "RZ-32-1502",
     "categories": ["cooling"], "completed": {"cooling": 12}, "nps": 88, "rating": 4.3,
     "location": [32.0600, 118.7700], "load": 0, "region": "east"},
    {"_id": "E-06", "name": "Sun Hao", "union_id": "union-sunhao", "qualification": "Senior refrigeration technician", "cert_no": "RZ-33-0210",
     "categories": ["cooling", "leak", "general"], "completed": {"cooling": 95, "leak": 20, "general": 30}, "nps": 94, "rating": 4.8,
     "location": [30.2800, 120.1600], "load": 0, "region": "east"},
]

PARTS: list[Document] = [
    {"_id": "P-CMP-88", "name": "压缩机 CMP-88", "categories": ["cooling"], "models": ["XK-8800"]},
    {"_id": "P-FAN-20", "name": "冷凝风机 FAN-20", "categories": ["cooling", "noise"], "models": []},
    {"_id": "P-REF-R410", "name": "R410A 冷媒", "categories": ["cooling", "leak"], "models": []},
    {"_id": "P-PCB-99", "name": "主控板 PCB-99", "categories": ["power", "display"], "models": ["XK-9900"]},
    {"_id": "P-SEAL-01", "name": "密封圈套件", "categories": ["leak"], "models": []},
]

CARRIERS: list[Document] = [
    {"_id": "SF:CN", "carrier": "SF", "names": ["顺丰", "sf express", "sf"], "region": "CN", "promised_days": 2, "compensation": {"per_day": 10, "max": 50, "currency": "CNY"}},
    {"_id": "JD:CN", "carrier": "JD", "names": ["京东", "jd logistics", "jd"], "region": "CN", "promised_days": 2, "compensation": {"per_day": 10, "max": 50, "currency": "CNY"}},
    {"_id": "ZTO:CN", "carrier": "ZTO", "names": ["中通", "zto"], "region": "CN", "promised_days": 4, "compensation": {"per_day": 5, "max": 30, "currency": "CNY"}},
    {"_id": "YTO:CN", "carrier": "YTO", "names": ["圆通", "yto"], "region": "CN", "promised_days": 4, "compensation": {"per_day": 5, "max": 30, "currency": "CNY"}},
    {"_id": "JT:SG", "carrier": "J&T", "names": ["j&t", "jnt", "极兔"], "region": "SG", "promised_days": 3, "compensation": {"per_day": 2, "max": 10, "currency": "SGD"}},
    {"_id": "SPX:SG", "carrier": "SPX", "names": ["spx", "shopee express"], "region": "SG", "promised_days": 3, "compensation": {"per_day": 2, "max": 10, "currency": "SGD"}},
    {"_id": "UPS:US", "carrier": "UPS", "names": ["ups"], "region": "US", "promised_days": 5, "compensation": {"per_day": 3, "max": 15, "currency": "USD"}},
    {"_id": "USPS:US", "carrier": "USPS", "names": ["usps"], "region": "US", "promised_days": 7, "compensation": {"per_day": 2, "max": 10, "currency": "USD"}},
]


def orders(now: float) -> list[Document]:
    """Marketplace orders the review demo can look up (carrier, region, dates)."""
    return [
        {"_id": "112-1234567-1234567", "marketplace": "amazon", "carrier": "UPS", "region": "US", "shipped_at": now - 9 * DAY, "delivered_at": now - 1 * DAY},
        {"_id": "DD2024031500123", "marketplace": "temu", "carrier": "SF", "region": "CN", "shipped_at": now - 6 * DAY, "delivered_at": None, "customer": "C-1001"},
        {"_id": "240301ABCD1234", "marketplace": "shopee", "carrier": "J&T", "region": "SG", "shipped_at": now - 5 * DAY, "delivered_at": now - 1 * DAY},
    ]


def contracts(now: float) -> list[Document]:
    """Contracts relative to the demo's first start: ends 7, 30 and 60 days out, and so on."""
    return [
        {"_id": "K-2025-001", "customer": "C-1001", "product": "XK-8800 全保维保", "kind": "maintenance", "start": now - 300 * DAY,
         "end": now + 30 * DAY, "amount": 186_000, "currency": "CNY", "sla_hours": 4,
         "sales_owner": {"name": "周杰", "union_id": "union-zhoujie"}, "past_contracts": 1},
        {"_id": "K-2025-002", "customer": "C-1002", "product": "XK-9900 maintenance", "kind": "maintenance", "start": now - 358 * DAY,
         "end": now + 7 * DAY, "amount": 1_250_000, "currency": "CNY", "sla_hours": 8,
         "sales_owner": {"name": "Lin Na", "union_id": "union-linna"}, "past_contracts": 5},
        {"_id": "K-2025-003", "customer": "C-1001", "product": "冷库监控 SaaS", "kind": "supply", "start": now - 305 * DAY,
         "end": now + 60 * DAY, "amount": 48_000, "currency": "CNY",
         "sales_owner": {"name": "周杰", "union_id": "union-zhoujie"}, "past_contracts": 1},
    ]


async def load_demo(db: AsyncDatabase[Document], now: float | None = None) -> None:
    """Upsert the demo documents; contracts keep the dates of their first load."""
    now = time.time() if now is None else now
    for name, docs in (("crm_customers", CUSTOMERS), ("devices", DEVICES), ("engineers", ENGINEERS), ("parts", PARTS), ("carrier_slas", CARRIERS)):
        await db[name].bulk_write([UpdateOne({"_id": d["_id"]}, {"$set": d}, upsert=True) for d in docs])
    await db["contracts"].bulk_write([UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in contracts(now)])
    await db["orders"].bulk_write([UpdateOne({"_id": d["_id"]}, {"$setOnInsert": d}, upsert=True) for d in orders(now)])
