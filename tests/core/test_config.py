"""The kefu.yml contract and its environment overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings, redact, settings_from_mapping
from bot.errors import ConfigError

CONTRACT = """
http: {host: 127.0.0.1, port: 8080}
mongo_url: mongodb://127.0.0.1:27017/kefu
redis_url: redis://127.0.0.1:6379/0
channels:
  wechat:
    - account: demo
      app_id: wx0123456789abcdef
      app_secret: "topsecret"
      token: "tok"
      encoding_aes_key: "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
      api_base_url: https://api.weixin.qq.com
    - account: second
      app_id: wx2
      app_secret: "s2"
      token: "t2"
nlu: {urls: ["http://127.0.0.1:5005"]}
"""


def test_contract_shape_loads(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yml"
    path.write_text(CONTRACT)
    s = load_settings(path, env={})
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)
    assert s.mongo_url == "mongodb://127.0.0.1:27017/kefu"
    assert s.redis_url == "redis://127.0.0.1:6379/0"
    assert [a["account"] for a in s.accounts("wechat")] == ["demo", "second"]
    assert s.section("nlu")["urls"] == ["http://127.0.0.1:5005"]
    assert s.source == str(path)


def test_env_overrides(tmp_path: Path) -> None:
    path = tmp_path / "kefu.yml"
    path.write_text(CONTRACT)
    env = {"KEFU_MONGO_URL": "mongodb://db:27017/x", "KEFU_REDIS_URL": "redis://r:6379/1", "KEFU_HTTP_PORT": "9090"}
    s = load_settings(path, env=env)
    assert s.mongo_url == "mongodb://db:27017/x"
    assert s.redis_url == "redis://r:6379/1"
    assert s.http.port == 9090


def test_kefu_config_env_selects_file(tmp_path: Path) -> None:
    path = tmp_path / "other.yml"
    path.write_text("http: {port: 7000}\n")
    assert load_settings(None, env={"KEFU_CONFIG": str(path)}).http.port == 7000


def test_absent_urls_mean_embedded() -> None:
    s = settings_from_mapping({"channels": {}}, env={})
    assert s.mongo_url is None and s.redis_url is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"channels": {"wechat": [{"app_id": "x"}]}}, "needs an 'account'"),
        ({"channels": {"wechat": [{"account": "a"}, {"account": "a"}]}}, "appears twice"),
        ({"channels": ["wechat"]}, "mapping"),
        ({"http": {"port": "eighty"}}, "http"),
        ({"pipeline": {"nonsense": 1}}, "unknown keys"),
        ({"nlu": "yes"}, "expected a mapping"),
    ],
)
def test_invalid_config_is_a_clear_error(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_mapping(raw, env={})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yml", env={})
    bad = tmp_path / "bad.yml"
    bad.write_text("channels: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad, env={})


def test_redact_hides_secrets_everywhere() -> None:
    shown = redact({"channels": {"wechat": [{"account": "a", "app_secret": "S", "token": "T", "encoding_aes_key": "K"}]}})
    text = repr(shown)
    assert "S'" not in text and "'T'" not in text and "'K'" not in text
    assert shown["channels"]["wechat"][0]["account"] == "a"
