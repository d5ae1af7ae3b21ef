""""导出我的数据" through the signed WeChat webhook and real Rasa: the acknowledgement
comes before the link, and the ZIP holds everything held about the person (masked),
section for section what the data-usage notice lists."""

from __future__ import annotations

import io
import json
import zipfile

from preferences.data_rights import EXPORT_SECTIONS
from tests.harness import Harness
from tests.skills.conftest import Fakes, SkillChat, bind_identity, services


async def test_export_holds_everything_and_follows_its_acknowledgement(gateway: Harness, fakes: Fakes) -> None:
    svc = services(gateway)
    await svc.db["crm_customers"].update_one({"_id": "C-1001"}, bind_identity("wechat:demo:oExport"))
    chat = SkillChat(gateway, "oExport")
    await chat.say("我的XK-8800不制冷了", expect=2)
    await chat.say("我的快递10天了还没到，订单号DD2024031500123")
    sent = await chat.say("导出我的数据", expect=2, timeout_s=30)
    texts = [s["text"]["content"] for s in sent if s.get("msgtype") == "text"]
    assert len(texts) == 2, texts
    ack, link = texts
    assert "正在为您导出" in ack and "【数据导出】" in link, texts
    listed = ack.split("我们保存（导出文件逐项包含）：", 1)[1].split("\n", 1)[0].rstrip("。").split("、")
    assert len(listed) == len(EXPORT_SECTIONS)

    url = link.split("\n")[-1].strip()
    download = await gateway.client.get(url[url.index("/api/"):])
    assert download.status == 200
    zf = zipfile.ZipFile(io.BytesIO(await download.read()))
    data = json.loads(zf.read("data.json"))
    assert list(data) == list(EXPORT_SECTIONS)
    assert {f"csv/{s}.csv" for s in EXPORT_SECTIONS} <= set(zf.namelist())
    [crm] = data["crm_profile"]
    assert crm["name"] == "李雷" and crm["company"] == "南京鼓楼冷链有限公司" and crm["phone"] == "139****5678"
    assert {c["_id"] for c in data["contracts"]} == {"K-2025-001", "K-2025-003"}
    [ticket] = data["tickets"]
    assert [e["step"] for e in ticket["timeline"]][:2] == ["opened", "lookup"]
    assert [r["order_id"] for r in data["reviews"]] == ["DD2024031500123"]
    [coupon] = data["coupons"]
    assert coupon["code"] in json.dumps(data["reviews"], ensure_ascii=False)
    assert [d["model"] for d in data["devices"]] == ["XK-8800"]
    assert "13912345678" not in zf.read("data.json").decode()
