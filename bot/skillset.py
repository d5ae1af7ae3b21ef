"""Which skills the bot runs, in which order: the one place to add a skill.

Groups are tried in order and the first skill that accepts a turn wins (see
:mod:`bot.dispatch`). A conversation waiting for a person meets the while-waiting skill
first, which lets only some intents through. An open form comes next so that "明天上午" answers the question
the form asked; then hand-off and complaints; then business skills; then small talk and
the fallback. Without NLU the bot still greets, acknowledges media and echoes text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pymongo.asynchronous.database import AsyncDatabase

from bot.conversation.handoff import Handoff
from bot.dispatch import Skill
from bot.templates import Templates

if TYPE_CHECKING:
    from skills.services import SkillServices


@dataclass(frozen=True, slots=True)
class SkillContext:
    """What skills may use, handed over by the composition root."""

    templates: Templates
    handoff: Handoff
    db: AsyncDatabase[dict[str, Any]]
    nlu_enabled: bool
    fallback_limit: int = 2
    # Connectors, notifier (bound to the notification engine once preferences built it)
    # and the stores the business skills share with their jobs; None: skills without them.
    services: SkillServices | None = None


def default_skills(ctx: SkillContext) -> list[list[Skill]]:
    from skills.greeting import EchoSkill, ReceivedMediaSkill, WelcomeSkill
    from skills.handoff import HumanRequestSkill, WhileWaitingSkill
    from skills.repair_dispatch.catalog import Catalog
    from skills.repair_dispatch.intake import RepairReportForm, RepairStatusSkill, Tickets
    from skills.review_remediation.chat import ComplaintCases, ProductComplaintSkill
    from skills.smalltalk import FallbackSkill, OutOfScopeSkill, SmallTalkSkill

    t = ctx.templates
    tickets = Tickets(ctx.db)
    svc = ctx.services
    dispatch = svc.repair if svc is not None and svc.repair_dispatch else None
    catalog = Catalog(ctx.db)
    repair_form = RepairReportForm(t, tickets, dispatch, svc.notifier if svc else None, catalog=catalog)
    waiting = WhileWaitingSkill(t, ctx.handoff)  # first: in the queue only some skills answer
    if not ctx.nlu_enabled:
        return [
            [waiting],
            [WelcomeSkill(t)],
            [HumanRequestSkill(t, ctx.handoff)],  # the keyword shortcut still works
            [ReceivedMediaSkill(t), EchoSkill(t)],
        ]
    return [
        [waiting],
        [repair_form],  # an open form takes the answer to its own question first
        [
            WelcomeSkill(t),
            HumanRequestSkill(t, ctx.handoff),
            ProductComplaintSkill(t, ComplaintCases(ctx.db), ctx.handoff, catalog),
        ],
        [*_business_skills(ctx), RepairStatusSkill(t, tickets)],  # an awaited order number first
        [SmallTalkSkill(t), OutOfScopeSkill(t)],
        [ReceivedMediaSkill(t), FallbackSkill(t, ctx.handoff, limit=ctx.fallback_limit)],
    ]


def _business_skills(ctx: SkillContext) -> list[Skill]:
    """Skills that need the business services (connectors, notifier); none without them."""
    if ctx.services is None:
        return []
    from skills.renewal.skill import RenewalSkill
    from skills.review_remediation.chat import LogisticsComplaintSkill

    svc = ctx.services
    return [
        RenewalSkill(ctx.templates, svc.renewals, ctx.handoff),
        LogisticsComplaintSkill(ctx.templates, svc.reviews, timezone=svc.renewals.settings.timezone),
    ]


async def ensure_skill_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    from skills.repair_dispatch.intake import Tickets
    from skills.review_remediation.chat import ComplaintCases

    await Tickets(db).ensure_indexes()
    await ComplaintCases(db).ensure_indexes()
