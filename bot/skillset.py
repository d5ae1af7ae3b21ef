"""Which skills the bot runs, in which order: the one place to add a skill.

Groups are tried in order and the first skill that accepts a turn wins (see
:mod:`bot.routing`). An open form comes first so that "明天上午" answers the question
the form asked; then the customer's own settings and data; then hand-off and
complaints; then business skills; then small talk and the fallback. Without NLU the bot
still greets, acknowledges media and echoes text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bot.conversation.handoff import Handoff
from bot.routing import Skill
from bot.templates import Templates
from preferences.services import PreferenceServices
from preferences.skills import build_skills as preference_skills
import skills
from skills import renewal, repair_dispatch, review_remediation
from skills.account import AccountLinkSkill, LinkMaker
from skills.greeting import EchoSkill, ReceivedMediaSkill, WelcomeSkill
from skills.handoff import ComplaintSkill, HumanRequestSkill
from skills.renewal.skill import RenewalSkill
from skills.repair_dispatch.intake import RepairReportForm, RepairStatusSkill
from skills.services import SkillServices
from skills.smalltalk import FallbackSkill, OutOfScopeSkill, SmallTalkSkill


#: The skills' reply templates, each package's beside its code.
TEMPLATE_DIRS: tuple[Path, ...] = (skills.TEMPLATES, repair_dispatch.TEMPLATES, renewal.TEMPLATES, review_remediation.TEMPLATES)


@dataclass(frozen=True, slots=True)
class SkillContext:
    """What chat skills may use, handed over by the composition root."""

    templates: Templates
    handoff: Handoff
    redis: Redis
    services: SkillServices
    preferences: PreferenceServices
    nlu_enabled: bool
    fallback_limit: int = 2
    # The customer portal's one-time sign-in links ("我的账户"); None: no portal mounted.
    account_link: LinkMaker | None = None
    account_link_minutes: int = 15


def default_skills(ctx: SkillContext) -> list[list[Skill]]:
    t = ctx.templates
    # Keyword shortcuts work with NLU down: a person, and the account link.
    account: list[Skill] = []
    if ctx.account_link is not None:
        account.append(AccountLinkSkill(t, ctx.preferences.prefs, ctx.account_link, ttl_minutes=ctx.account_link_minutes))
    if not ctx.nlu_enabled:
        return [
            [WelcomeSkill(t)],
            [HumanRequestSkill(t, ctx.handoff), *account],
            [ReceivedMediaSkill(t), EchoSkill(t)],
        ]
    svc, prefs = ctx.services, ctx.preferences
    repair = svc.repair if svc.repair_dispatch else None
    return [
        [RepairReportForm(t, svc.tickets, repair, svc.notifier)],  # an open form takes the answer to its own question first
        preference_skills(prefs.prefs, prefs.rights, ctx.redis, prefs.renderer),
        [WelcomeSkill(t), HumanRequestSkill(t, ctx.handoff), ComplaintSkill(t, ctx.handoff), *account],
        [RepairStatusSkill(t, svc.tickets), RenewalSkill(t, svc.renewals, ctx.handoff)],
        [SmallTalkSkill(t), OutOfScopeSkill(t)],
        [ReceivedMediaSkill(t), FallbackSkill(t, ctx.handoff, limit=ctx.fallback_limit)],
    ]
