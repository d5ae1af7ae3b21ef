"""Configuration: one YAML file, a few environment overrides, read in one place.

The composition root (:mod:`bot.app`) reads :class:`Settings` once and hands each part
only its own section, the way Rasa's ``run.py`` hands channels their credentials.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("kefu.yml")

# Keys whose values never appear in logs or `kefu config show`.
SECRET_KEYS = frozenset(
    {"app_secret", "secret", "token", "encoding_aes_key", "password", "api_key", "app_key"}
)


@dataclass(frozen=True, slots=True)
class HttpSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    max_body_bytes: int = 256 * 1024  # WeChat messages are a few KB; anything bigger is hostile

    @property
    def public_url(self) -> str:
        """Where this gateway answers, as a local client reaches it."""
        host = self.host if self.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """Knobs of the inbound queue, the workers and the outbox."""

    dedup_ttl_s: int = 86_400  # far beyond WeChat's 3 tries in ~15 s
    inbound_stream: str = "kefu:inbound"
    outbox_stream: str = "kefu:outbox"
    workers: int = 1  # worker tasks per process
    batch: int = 32
    claim_idle_ms: int = 60_000  # a message pending this long belongs to a dead worker
    max_inbound_attempts: int = 5
    outbox_max_attempts: int = 6
    outbox_backoff_s: float = 1.0  # first retry delay; doubles each attempt
    outbox_backoff_max_s: float = 300.0
    send_timeout_s: float = 10.0

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PipelineSettings:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"pipeline: unknown keys {sorted(unknown)}")
        return cls(**dict(data))


@dataclass(frozen=True, slots=True)
class Settings:
    http: HttpSettings = field(default_factory=HttpSettings)
    mongo_url: str | None = None  # None -> embedded server under data_dir
    redis_url: str | None = None  # None -> embedded redis-server under data_dir
    data_dir: Path = Path("var")
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    channels: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    simulator: bool = False  # mount fake platform APIs under /_sim (demo and `kefu simulate`)
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # nlu, speech, ...
    source: str = "<defaults>"

    def section(self, name: str) -> Mapping[str, Any]:
        """The raw settings of one optional part (``nlu``, ``speech``, ...), or ``{}``."""
        return self.sections.get(name, {})

    def accounts(self, channel: str) -> tuple[Mapping[str, Any], ...]:
        return self.channels.get(channel, ())


def redact(value: Any) -> Any:
    """A copy of a settings tree with every secret replaced, for logs and display."""
    if isinstance(value, Mapping):
        return {
            k: ("***" if k in SECRET_KEYS and v else redact(v)) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    return value


def _channels(raw: Any) -> dict[str, tuple[Mapping[str, Any], ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("channels: expected a mapping of channel name -> list of accounts")
    out: dict[str, tuple[Mapping[str, Any], ...]] = {}
    for name, accounts in raw.items():
        if isinstance(accounts, Mapping):  # one account written without the list
            accounts = [accounts]
        if not isinstance(accounts, list) or not all(isinstance(a, Mapping) for a in accounts):
            raise ConfigError(f"channels.{name}: expected a list of accounts")
        seen: set[str] = set()
        for acc in accounts:
            account = acc.get("account")
            if not isinstance(account, str) or not account:
                raise ConfigError(f"channels.{name}: every account needs an 'account' name")
            if account in seen:
                raise ConfigError(f"channels.{name}: account {account!r} appears twice")
            seen.add(account)
        out[str(name)] = tuple(accounts)
    return out


def settings_from_mapping(
    raw: Mapping[str, Any], env: Mapping[str, str] | None = None, source: str = "<mapping>"
) -> Settings:
    env = os.environ if env is None else env
    data = dict(raw)
    http_raw = dict(data.pop("http", None) or {})
    if "KEFU_HTTP_PORT" in env:
        http_raw["port"] = env["KEFU_HTTP_PORT"]
    if "KEFU_HTTP_HOST" in env:
        http_raw["host"] = env["KEFU_HTTP_HOST"]
    try:
        d = HttpSettings()
        http = HttpSettings(
            host=str(http_raw.get("host", d.host)),
            port=int(http_raw.get("port", d.port)),
            max_body_bytes=int(http_raw.get("max_body_bytes", d.max_body_bytes)),
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"http: {exc}") from exc
    mongo_url = env.get("KEFU_MONGO_URL") or data.pop("mongo_url", None)
    redis_url = env.get("KEFU_REDIS_URL") or data.pop("redis_url", None)
    data.pop("mongo_url", None)
    data.pop("redis_url", None)
    data_dir = Path(env.get("KEFU_DATA_DIR") or data.pop("data_dir", None) or "var")
    data.pop("data_dir", None)
    pipeline = PipelineSettings.from_mapping(data.pop("pipeline", None) or {})
    channels = _channels(data.pop("channels", None))
    simulator = bool(data.pop("simulator", False))
    if env.get("KEFU_SKIP_NLU"):  # `KEFU_SKIP_NLU=1 bash scripts/run.sh`: no Rasa, no training
        data["nlu"] = {**dict(data.get("nlu") or {}), "enabled": False}
    sections: dict[str, Mapping[str, Any]] = {}
    for name, value in data.items():
        if value is None:
            value = {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{name}: expected a mapping")
        sections[str(name)] = value
    return Settings(
        http=http,
        mongo_url=str(mongo_url) if mongo_url else None,
        redis_url=str(redis_url) if redis_url else None,
        data_dir=data_dir,
        pipeline=pipeline,
        channels=channels,
        simulator=simulator,
        sections=sections,
        source=source,
    )


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path``, ``$KEFU_CONFIG`` or ``./kefu.yml``.

    Without any file the embedded demo configuration is used, so ``kefu run`` works on a
    fresh checkout.
    """
    env = os.environ if env is None else env
    chosen = Path(path) if path else Path(env["KEFU_CONFIG"]) if env.get("KEFU_CONFIG") else None
    if chosen is None and DEFAULT_CONFIG_PATH.exists():
        chosen = DEFAULT_CONFIG_PATH
    if chosen is None:
        from bot.demo import demo_api_key, demo_config, demo_console_password

        data_dir = Path(env.get("KEFU_DATA_DIR") or "var")
        config = demo_config(demo_api_key(data_dir), demo_console_password(data_dir))
        return settings_from_mapping(config, env, source="<embedded demo>")
    try:
        raw = yaml.safe_load(chosen.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {chosen}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{chosen}: not valid YAML: {exc}") from exc
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{chosen}: the top level must be a mapping")
    return settings_from_mapping(raw, env, source=str(chosen))
