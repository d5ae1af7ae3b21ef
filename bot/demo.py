"""The embedded demo configuration used when no kefu.yml exists.

One WeChat service account ``demo`` in safe (AES) mode whose API base URL points at
the fake WeChat API this gateway mounts under ``/_sim/wechat``, so that
``kefu run`` + ``kefu simulate wechat --account demo --text 你好`` shows the whole loop
with no platform account. The keys below are public: never use them for a real account.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

DEMO_WECHAT = {
    "account": "demo",
    "app_id": "wxd3m0000000000001",
    "app_secret": "demo-app-secret",
    "token": "kefudemotoken",
    "encoding_aes_key": "S2VmdURlbW9LZXlGb3JMb2NhbFRyaWFsc09ubHkxMjM",
    "api_base_url": "/_sim/wechat",
}


#: Where the demo's API key is kept, under the data dir: the same key after a restart.
API_KEY_FILE = "demo-api-key"


def demo_api_key(data_dir: Path) -> str:
    """The demo's API key: read from the data dir, or made and kept there the first time."""
    path = data_dir / API_KEY_FILE
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = "demo-" + secrets.token_urlsafe(24)
    path.write_text(key + "\n", encoding="utf-8")
    path.chmod(0o600)
    return key


def demo_config(api_key: str) -> dict[str, Any]:
    from bot.apikeys import SCOPES

    return {
        "http": {"host": "127.0.0.1", "port": 8080},
        "simulator": True,
        "channels": {"wechat": [dict(DEMO_WECHAT)]},
        # Every scope, so that the hand-off API (and a CRM or console) can be tried at once.
        "api": {"keys": [{"key": api_key, "scopes": list(SCOPES)}]},
    }


def demo_banner(api_key: str, base_url: str, data_dir: Path) -> str:
    """What ``kefu run`` prints when it starts the demo: how to reach its API.

    Agent logins for the console belong here too once the console has them.
    """
    return (
        f"Kefu demo: API key (every scope, kept in {data_dir / API_KEY_FILE}): {api_key}\n"
        f'  try: curl -H "Authorization: Bearer {api_key}" {base_url}/api/conversations/waiting\n'
        f"  talk: kefu simulate wechat --account demo --text 你好"
    )
