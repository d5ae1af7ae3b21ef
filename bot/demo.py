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


#: Where the demo's secrets are kept, under the data dir: the same ones after a restart.
API_KEY_FILE = "demo-api-key"
CONSOLE_PASSWORD_FILE = "demo-console-password"
#: The demo's console users, one per role, sharing one password.
DEMO_USERS = (("admin", "admin"), ("agent", "agent"), ("marketer", "marketer"))


def _kept_secret(path: Path, make: str) -> str:
    """A secret read from ``path``, or ``make`` written there (owner-only) the first time."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(make + "\n", encoding="utf-8")
    path.chmod(0o600)
    return make


def demo_api_key(data_dir: Path) -> str:
    """The demo's API key: read from the data dir, or made and kept there the first time."""
    return _kept_secret(data_dir / API_KEY_FILE, "demo-" + secrets.token_urlsafe(24))


def demo_console_password(data_dir: Path) -> str:
    """The demo console users' password, kept like the API key."""
    return _kept_secret(data_dir / CONSOLE_PASSWORD_FILE, secrets.token_urlsafe(12))


def demo_config(api_key: str, console_password: str) -> dict[str, Any]:
    from bot.apikeys import SCOPES

    return {
        "http": {"host": "127.0.0.1", "port": 8080},
        "simulator": True,
        "channels": {"wechat": [dict(DEMO_WECHAT)]},
        # Every scope, so that the hand-off API (and a CRM or console) can be tried at once.
        "api": {"keys": [{"key": api_key, "scopes": list(SCOPES)}]},
        # Created at start when missing, so that the console can be tried at once.
        "console": {"demo_users": [{"name": n, "role": r, "password": console_password} for n, r in DEMO_USERS]},
    }


def demo_banner(api_key: str, console_password: str, base_url: str, data_dir: Path) -> str:
    """What ``kefu run`` prints when it starts the demo: how to reach its API and console."""
    users = ", ".join(name for name, _ in DEMO_USERS)
    return (
        f"Kefu demo: API key (every scope, kept in {data_dir / API_KEY_FILE}): {api_key}\n"
        f'  try: curl -H "Authorization: Bearer {api_key}" {base_url}/api/conversations/waiting\n'
        f"  console: {base_url}/admin/  users {users}, password {console_password}"
        f" (kept in {data_dir / CONSOLE_PASSWORD_FILE})\n"
        f"  talk: kefu simulate wechat --account demo --text 你好"
    )
