"""Real parses through NluClient against a real Rasa server (session fixture).

The sentences here are not in the training data: they check that the model
generalises to how customers write (zh, en, mixed, typos), that synonyms come back as
canonical values, and that chit-chat never lands in a business intent.
"""

from __future__ import annotations

import aiohttp
import pytest

from bot.nlu.client import FALLBACK_INTENT, NluClient
from bot.nlu.errors import NluUnavailable

pytestmark = pytest.mark.slow

BUSINESS_INTENTS = {
    "report_repair", "ask_repair_status", "ask_renewal", "renew_contract",
    "complain_logistics", "complain_product", "set_preference", "ask_preference",
    "request_human", "export_my_data", "delete_my_data",
}


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        # Chinese
        ("你好，请问有人在吗", "greet"),
        ("我家空调又不制冷了，帮我报个修", "report_repair"),
        ("师傅到底几点上门啊", "ask_repair_status"),
        ("我们的维保合同还有几个月到期", "ask_renewal"),
        ("那就续签吧，再签两年", "renew_contract"),
        ("快递送了十天还没到", "complain_logistics"),
        ("这机器做工太差了，外壳一碰就掉漆", "complain_product"),
        ("请把我的个人信息全部删除", "delete_my_data"),
        ("帮我导出一份我的个人资料", "export_my_data"),
        ("别跟机器人聊了，我要人工", "request_human"),
        ("好的，多谢", "thank"),
        # English
        ("my unit is leaking water all over the floor, send a technician", "report_repair"),
        ("any news on when the engineer will show up?", "ask_repair_status"),
        ("how much will it cost to renew next year", "ask_renewal"),
        ("please download a copy of all my data for me", "export_my_data"),
        ("erase everything you store about me", "delete_my_data"),
        ("can i speak to an actual person", "request_human"),
        ("what notification settings do i have right now", "ask_preference"),
        ("bye, have a good one", "goodbye"),
        # Mixed and typos
        ("帮我 renew 一下合同", "renew_contract"),
        ("thnks so much", "thank"),
        ("i wnat to tlak to a humn", "request_human"),
        ("my parcle still hasnt arived", "complain_logistics"),
        ("yes pls", "affirm"),
        ("nope, not that", "deny"),
        # A word no example uses, understood through its dictionary meaning (the gloss
        # featurizer): 千真万确, "absolutely true". Known regression: with the sentence
        # vector the idiom reads as chit-chat (out_of_scope 0.67, affirm 0.31).
        pytest.param(
            "千真万确", "affirm",
            marks=pytest.mark.xfail(strict=True, reason="sentence vector places the idiom with chit-chat"),
        ),
        # Phrasings no example uses, placed by the multilingual sentence vector: "if
        # you'll excuse me" (leaving), "it's a deal".
        ("失陪了", "goodbye"),
        ("一言为定", "affirm"),
    ],
)
async def test_intents(http: aiohttp.ClientSession, rasa_url: str, text: str, intent: str) -> None:
    result = await NluClient(http, [rasa_url], timeout_s=10).parse(text)
    assert result.intent == intent, result.ranking[:3]
    assert result.ranking[0][0] == intent


@pytest.mark.parametrize(
    ("text", "model"),
    [
        ("我的XK-8800不制冷了", "XK-8800"),
        ("ZR-200 makes a weird noise, please fix it", "ZR-200"),
        ("型号HL-1200，漏水严重，求上门", "HL-1200"),
        # A model number the training data never mentions: the shape carries it.
        ("我家的QX-4410开不了机", "QX-4410"),
        ("my BT-9050 won't start at all", "BT-9050"),
    ],
)
async def test_device_model_is_extracted(
    http: aiohttp.ClientSession, rasa_url: str, text: str, model: str
) -> None:
    result = await NluClient(http, [rasa_url], timeout_s=10).parse(text)
    assert result.intent == "report_repair", result.ranking[:3]
    assert result.entity("device_model") == model


async def test_fault_is_extracted(http: aiohttp.ClientSession, rasa_url: str) -> None:
    result = await NluClient(http, [rasa_url], timeout_s=10).parse("XK-6600漏水了，麻烦来修")
    assert result.entity("fault") == "漏水"


@pytest.mark.parametrize(
    ("text", "entity", "value"),
    [
        ("以后用钉钉通知我吧", "channel", "dingtalk"),
        ("通知发我企业微信", "channel", "wecom"),
        ("改用公众号推送", "channel", "wechat"),
        ("please send notifications to my mail", "channel", "email"),
        ("每周发一次就行", "frequency", "weekly"),
        ("just a weekly summary please", "frequency", "weekly"),
        ("内容简单点就好", "detail_level", "brief"),
        ("i want full details in every message", "detail_level", "full"),
    ],
)
async def test_synonyms_are_canonical(
    http: aiohttp.ClientSession, rasa_url: str, text: str, entity: str, value: str
) -> None:
    result = await NluClient(http, [rasa_url], timeout_s=10).parse(text)
    assert result.intent == "set_preference", result.ranking[:3]
    assert result.entity(entity) == value, result.entities


@pytest.mark.parametrize(
    "text",
    [
        "明天杭州会下雪吗",
        "what's the weather going to be like this weekend",
        "给我讲个冷笑话",
        "tell me something funny",
        "你最喜欢什么颜色",
        "who invented the telephone",
        "lkjhgfdsa",
        "dfgdfgdfgdfg",
        "啊啊啊啊啊啊啊啊",
    ],
)
async def test_chit_chat_is_out_of_scope(http: aiohttp.ClientSession, rasa_url: str, text: str) -> None:
    result = await NluClient(http, [rasa_url], timeout_s=10).parse(text)
    assert result.intent in {"out_of_scope", FALLBACK_INTENT}, result.ranking[:3]
    assert result.intent not in BUSINESS_INTENTS


async def test_real_server_behind_a_refused_url(
    http: aiohttp.ClientSession, rasa_url: str, refused_url: str
) -> None:
    client = NluClient(http, [refused_url, rasa_url], timeout_s=10, failure_threshold=1)
    for _ in range(3):
        assert (await client.parse("转人工")).intent == "request_human"


async def test_round_robin_over_the_real_server_twice(
    http: aiohttp.ClientSession, rasa_url: str
) -> None:
    # The same server under two spellings: both turns must give the same answer.
    client = NluClient(http, [rasa_url, rasa_url.replace("127.0.0.1", "localhost")], timeout_s=10)
    results = [await client.parse("my XK-3200 is not cooling") for _ in range(4)]
    assert {r.intent for r in results} == {"report_repair"}
    assert {r.entity("device_model") for r in results} == {"XK-3200"}


async def test_unavailable_when_the_only_url_is_down(http: aiohttp.ClientSession, refused_url: str) -> None:
    with pytest.raises(NluUnavailable):
        await NluClient(http, [refused_url]).parse("你好")
