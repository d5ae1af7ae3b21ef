""""我的账户" / "my account": a one-time sign-in link to the customer's own portal.

The link is issued for the preference customer behind the chat address (created on
first contact like every other customer), is short-lived and works once; the skill
gets the link maker from the composition root and knows nothing of the portal itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from preferences.store import PreferenceStore

LinkMaker = Callable[[str], Awaitable[str]]


class AccountLinkSkill(Skill):
    name = "my_account"

    def __init__(self, templates: Templates, prefs: PreferenceStore, make_link: LinkMaker, *, ttl_minutes: int) -> None:
        self.templates = templates
        self.prefs = prefs
        self.make_link = make_link
        self.ttl_minutes = ttl_minutes

    def accepts(self, turn: Turn) -> bool:
        return turn.intent == "my_account"

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        msg = turn.message
        customer = await self.prefs.customer_for(
            msg.channel, msg.account, msg.sender, conversation=msg.conversation, language=turn.language, actor=None, via="chat"
        )
        url = await self.make_link(customer)
        return (Reply(text=self.templates.render("account_link", turn.language, url=url, minutes=self.ttl_minutes)),)
