"""What the composition root hands the portal: its settings section and the parts it uses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from bot.errors import ConfigError
from portal.links import SignInLinks
from portal.signing import SummarySigner
from portal.summary_mail import MailSender
from portal.wechat_oauth import WeChatOAuth
from preferences.data_rights import DataRights
from preferences.engine import NotificationEngine
from preferences.rules import CustomerRules
from preferences.store import PreferenceStore
from skills.renewal.service import Renewals
from skills.repair_dispatch.assign import RepairDispatch
from skills.repair_dispatch.tickets import Tickets
from webui.settings import language_setting, secure_cookies_setting, time_zone_setting


@dataclass(frozen=True, slots=True)
class PortalSettings:
    """The ``portal`` section of kefu.yml."""

    session_ttl_s: int = 8 * 3600
    link_ttl_s: int = 15 * 60  # a sign-in link from chat
    invite_ttl_s: int = 7 * 86_400  # a colleague's first link
    export_ttl_s: int = 24 * 3600  # an encrypted export waits this long for its download
    secure_cookies: bool | None = None  # None: Secure whenever the request came over https
    language: str = "zh"
    time_zone: str = "Asia/Shanghai"
    link_secret: str = ""  # empty: a random key shared through Redis
    # WeChat service accounts whose in-app browser signs in by web authorisation (snsapi_base).
    wechat_web_auth: tuple[str, ...] = ()
    wechat_authorize_url: str = "https://open.weixin.qq.com"
    # The signed PDF summary: the email account whose SMTP server sends it (empty: the
    # first configured), the font to embed (empty: Debian's fonts-noto-cjk), the Ed25519
    # key (empty: one made once and shared through Redis) and how many a customer may
    # send in an hour.
    mail_account: str = ""
    summary_font: str = ""
    summary_key_file: str = ""
    summary_per_hour: int = 3

    @classmethod
    def from_section(cls, section: Mapping[str, Any]) -> PortalSettings:
        known = set(cls.__dataclass_fields__)
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"portal: unknown keys {sorted(unknown)} (known: {', '.join(sorted(known))})")
        try:
            d = cls()
            return cls(
                session_ttl_s=int(section.get("session_ttl_s", d.session_ttl_s)),
                link_ttl_s=int(section.get("link_ttl_s", d.link_ttl_s)),
                invite_ttl_s=int(section.get("invite_ttl_s", d.invite_ttl_s)),
                export_ttl_s=int(section.get("export_ttl_s", d.export_ttl_s)),
                secure_cookies=secure_cookies_setting(section),
                language=language_setting(section, d.language),
                time_zone=time_zone_setting(section, d.time_zone),
                link_secret=str(section.get("link_secret", "")),
                wechat_web_auth=tuple(str(a) for a in section.get("wechat_web_auth") or ()),
                wechat_authorize_url=str(section.get("wechat_authorize_url", d.wechat_authorize_url)),
                mail_account=str(section.get("mail_account", "")),
                summary_font=str(section.get("summary_font", "")),
                summary_key_file=str(section.get("summary_key_file", "")),
                summary_per_hour=int(section.get("summary_per_hour", d.summary_per_hour)),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"portal: {exc}") from exc


@dataclass(frozen=True, slots=True)
class PortalDeps:
    """The gateway's parts the portal reads and changes, each through its owner."""

    redis: Redis
    db: AsyncDatabase[dict[str, Any]]
    prefs: PreferenceStore
    engine: NotificationEngine
    rights: DataRights
    rules: CustomerRules
    tickets: Tickets
    renewals: Renewals
    repair: RepairDispatch
    links: SignInLinks
    # WeChat web authorisation per service account (account name -> client); empty: links only.
    wechat_oauth: Mapping[str, WeChatOAuth]
    signer: SummarySigner
    mailer: MailSender | None  # None: no email account configured, summaries cannot be sent
