"""The embedded demo configuration used when no kefu.yml exists.

One WeChat service account ``demo`` in safe (AES) mode whose API base URL points at
the fake WeChat API this gateway mounts under ``/_sim/wechat``, so that
``kefu run`` + ``kefu simulate wechat --account demo --text 你好`` shows the whole loop
with no platform account. The keys below are public: never use them for a real account.
"""

from __future__ import annotations

from typing import Any

DEMO_WECHAT = {
    "account": "demo",
    "app_id": "wxd3m0000000000001",
    "app_secret": "demo-app-secret",
    "token": "kefudemotoken",
    "encoding_aes_key": "S2VmdURlbW9LZXlGb3JMb2NhbFRyaWFsc09ubHkxMjM",
    "api_base_url": "/_sim/wechat",
}


def demo_config() -> dict[str, Any]:
    return {
        "http": {"host": "127.0.0.1", "port": 8080},
        "simulator": True,
        "channels": {"wechat": [dict(DEMO_WECHAT)]},
    }
