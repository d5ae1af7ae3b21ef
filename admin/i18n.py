"""The console's words in Chinese and English, one table.

A template asks ``t("key")``; a key missing from the table shows as itself, and a test
checks every key the templates use is here in both languages.
"""

from __future__ import annotations

from typing import Any

from admin.i18n_marketing import MARKETING_TEXT
from webui.words import LANGUAGES, lookup

__all__ = ["LANGUAGES", "TEXT", "text"]


TEXT: dict[str, tuple[str, str]] = {
    **MARKETING_TEXT,
    # layout and navigation
    "console": ("客服控制台", "Kefu console"),
    "inbox": ("待接入", "Inbox"),
    "search": ("搜索", "Search"),
    "outbox": ("发送失败", "Dead letters"),
    "users": ("用户", "Users"),
    "canned": ("快捷回复", "Canned replies"),
    "apikeys": ("API 密钥", "API keys"),
    "channels": ("渠道", "Channels"),
    "audit": ("审计日志", "Audit log"),
    "account": ("我的账户", "My account"),
    "signout": ("退出", "Sign out"),
    "live_on": ("实时", "Live"),
    "live_off": ("连接中断，正在重连…", "Disconnected, reconnecting…"),
    # sign-in and account
    "signin": ("登录", "Sign in"),
    "name": ("用户名", "User name"),
    "password": ("密码", "Password"),
    "signin_failed": ("用户名或密码不正确。", "Wrong user name or password."),
    "signin_blocked_user": ("该账户登录失败次数过多，请 {minutes} 分钟后再试。", "Too many failed sign-ins for this account; try again in {minutes} minutes."),
    "signin_blocked_address": ("来自您网络地址的登录失败次数过多，请 {minutes} 分钟后再试。", "Too many failed sign-ins from your address; try again in {minutes} minutes."),
    "change_password": ("修改密码", "Change password"),
    "current_password": ("当前密码", "Current password"),
    "new_password": ("新密码（至少 10 个字符）", "New password (at least 10 characters)"),
    "repeat_password": ("再次输入新密码", "New password again"),
    "password_wrong": ("当前密码不正确。", "The current password is wrong."),
    "password_mismatch": ("两次输入的新密码不一致。", "The two new passwords differ."),
    "password_changed": ("密码已修改。", "Password changed."),
    "password_reset_done": ("已为 {name} 设置新密码。", "New password set for {name}."),
    "preferences": ("偏好", "Preferences"),
    "language": ("语言", "Language"),
    "time_zone": ("时区", "Time zone"),
    "save": ("保存", "Save"),
    "role": ("角色", "Role"),
    "role_admin": ("管理员", "Admin"),
    "role_agent": ("客服", "Agent"),
    "role_marketer": ("市场", "Marketer"),
    "marketer_home": ("市场工作台将在下一版本提供。", "The marketing workspace comes in the next release."),
    # inbox
    "waiting_queue": ("等待人工的会话", "Waiting for a person"),
    "my_conversations": ("我的会话", "My conversations"),
    "nothing_waiting": ("当前没有等待的会话。", "Nobody is waiting."),
    "none_mine": ("您目前没有会话。", "You have no conversations."),
    "reason": ("原因", "Reason"),
    "channel": ("渠道", "Channel"),
    "customer": ("客户", "Customer"),
    "waiting_for": ("等待时长", "Waiting"),
    "open": ("打开", "Open"),
    "claim": ("接入", "Claim"),
    "new_waiting": ("新的客户在等待人工", "A customer is waiting for a person"),
    "claimed_by": ("该会话已由 {agent} 接入。", "{agent} has this conversation already."),
    "enable_notifications": ("开启桌面通知", "Enable desktop notifications"),
    # conversation
    "conversation": ("会话", "Conversation"),
    "owner": ("处理人", "Handled by"),
    "owner_bot": ("机器人", "the bot"),
    "owner_queue": ("等待人工", "waiting for a person"),
    "history": ("消息记录", "Messages"),
    "voice_note": ("语音", "Voice note"),
    "image": ("图片", "Image"),
    "media_gone": ("平台已不再保存此文件，且本地没有留存。", "The platform no longer has this file, and no copy was kept here."),
    "transcript": ("转写", "Transcript"),
    "confidence": ("置信度", "Confidence"),
    "reply": ("回复", "Reply"),
    "send": ("发送", "Send"),
    "canned_pick": ("插入快捷回复…", "Insert a canned reply…"),
    "notes": ("内部备注（客户不可见）", "Internal notes (the customer never sees them)"),
    "add_note": ("添加备注", "Add note"),
    "transfer": ("转给", "Transfer to"),
    "handback": ("交还机器人", "Hand back to the bot"),
    "close": ("结束会话", "Close"),
    "customer_card": ("客户信息", "Customer"),
    "past_conversations": ("以往会话", "Past conversations"),
    "card_tickets": ("维修工单", "Repair tickets"),
    "card_contracts": ("有效合同", "Contracts"),
    "card_preferences": ("联系偏好", "Preferences"),
    "claim_first": ("接入此会话后才能回复。", "Claim this conversation to reply."),
    "window_closed_wechat": ("客户最后一条消息已超过 48 小时，微信不再接受客服消息。请等待客户再次发消息，或改用模板消息/其他渠道联系。", "The customer's last message is more than 48 hours old: WeChat refuses customer-service messages now. Wait for the customer to write again, or reach them by a template message or another channel."),
    "window_closed_wecom_kf": ("客户最后一条消息已超过 48 小时，微信客服不再接受消息。请等待客户再次发消息。", "The customer's last message is more than 48 hours old: WeCom customer service refuses messages now. Wait for the customer to write again."),
    "window_closed_dingtalk": ("钉钉会话链接已过期，且该用户不是企业成员，无法回复。请等待对方再次发消息。", "The DingTalk session webhook has expired and the sender is outside the organisation: no reply can reach them. Wait for them to write again."),
    "window_open_until": ("可回复至 {until}", "Replies accepted until {until}"),
    "no_channel": ("此会话的渠道未配置，无法回复。", "This conversation's channel is not configured; no reply can be sent."),
    "no_conversation": ("没有这个会话。", "No such conversation."),
    "transfer_needs_agent": ("只能转给在职的客服或管理员。", "Transfer only to an active agent or admin."),
    "bot": ("机器人", "Bot"),
    "agent_label": ("客服", "Agent"),
    # search
    "text": ("内容", "Text"),
    "since": ("起始日期", "From"),
    "until": ("结束日期", "To"),
    "results": ("结果", "Results"),
    "no_results": ("没有找到会话。", "No conversation found."),
    "matches": ("匹配", "Matches"),
    "last_message": ("最后消息", "Last message"),
    # dead letters
    "kind": ("类型", "Kind"),
    "attempts": ("尝试次数", "Attempts"),
    "when": ("时间", "When"),
    "retry": ("重试", "Retry"),
    "discard": ("丢弃", "Discard"),
    "no_dead_letters": ("没有发送失败的消息。", "No dead letters."),
    "retried": ("已重新加入发送队列。", "Queued again."),
    "dead_letter_gone": ("该记录已被处理。", "Someone dealt with this one already."),
    "retry_outbound_only": ("只能重试发出的消息；收到的消息请丢弃或查看日志。", "Only outgoing messages can be retried; discard inbound ones."),
    # admin
    "create_user": ("新建用户", "New user"),
    "disabled": ("停用", "Disabled"),
    "reset_password": ("重置密码", "Reset password"),
    "no_self_demotion": ("不能停用自己或取消自己的管理员角色。", "You cannot disable yourself or drop your own admin role."),
    "title": ("标题", "Title"),
    "add": ("添加", "Add"),
    "delete": ("删除", "Delete"),
    "label": ("名称", "Label"),
    "scopes": ("权限范围", "Scopes"),
    "create_key": ("创建密钥", "Create key"),
    "key_once": ("请立即复制此密钥，它不会再次显示：", "Copy this key now; it is never shown again:"),
    "revoke": ("吊销", "Revoke"),
    "created_by": ("创建人", "Created by"),
    "account_name": ("账号", "Account"),
    "webhook_urls": ("回调地址（填入平台后台）", "Webhook URLs (paste into the platform's admin page)"),
    "settings": ("配置（密钥已隐藏）", "Settings (secrets hidden)"),
    "actor": ("操作人", "Who"),
    "action": ("操作", "What"),
    "target": ("对象", "On"),
    "before": ("之前", "Before"),
    "after": ("之后", "After"),
    # errors
    "forbidden": ("您的角色无权访问此页面。", "Your role may not open this page."),
    "csrf_refused": ("请求已过期或来源不明，未做任何更改。请刷新页面后重试。", "The request was stale or came from elsewhere; nothing was changed. Reload the page and try again."),
    "error": ("出错了", "Something went wrong"),
    "back": ("返回", "Back"),
}


def text(key: str, language: str, **values: Any) -> str:
    return lookup(TEXT, key, language, **values)
