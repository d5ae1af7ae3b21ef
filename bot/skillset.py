"""Which skills the bot runs, in which order: the one place to add a skill.

Groups are tried in order and the first skill that accepts a turn wins (see
:mod:`bot.dispatch`). An open form comes first so that "明天上午" answers the question
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
    from knowledge.service import Knowledge
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
    # The knowledge base, asked before the out-of-scope redirect and the fallback.
    knowledge: Knowledge | None = None


def default_skills(ctx: SkillContext) -> list[list[Skill]]:
    from skills.greeting import EchoSkill, ReceivedMediaSkill, WelcomeSkill
    from skills.handoff import ComplaintSkill, HumanRequestSkill
    from skills.repair_dispatch.intake import RepairReportForm, RepairStatusSkill, Tickets
    from skills.smalltalk import FallbackSkill, OutOfScopeSkill, SmallTalkSkill

    t = ctx.templates
    tickets = Tickets(ctx.db)
    svc = ctx.services
    dispatch = svc.repair if svc is not None and svc.repair_dispatch else None
    repair_form = RepairReportForm(t, tickets, dispatch, svc.notifier if svc else None)
    if not ctx.nlu_enabled:
        return [
            [WelcomeSkill(t)],
            [HumanRequestSkill(t, ctx.handoff)],  # the keyword shortcut still works
            [ReceivedMediaSkill(t), EchoSkill(t)],
        ]
    kb = ctx.knowledge
    out_of_scope: Skill = OutOfScopeSkill(t)
    fallback: Skill = FallbackSkill(t, ctx.handoff, limit=ctx.fallback_limit)
    if kb is not None:
        out_of_scope = kb.answering_first(out_of_scope, t, reason="out_of_scope")
        fallback = kb.answering_first(fallback, t, reason="fallback")
    return [
        [repair_form],  # an open form takes the answer to its own question first
        [*([kb.rejection(t)] if kb else []), WelcomeSkill(t), HumanRequestSkill(t, ctx.handoff), ComplaintSkill(t, ctx.handoff)],
        [RepairStatusSkill(t, tickets), *_business_skills(ctx)],
        [SmallTalkSkill(t), out_of_scope],
        [ReceivedMediaSkill(t), fallback],
    ]


def _business_skills(ctx: SkillContext) -> list[Skill]:
    """Skills that need the business services (connectors, notifier); none without them."""
    if ctx.services is None:
        return []
    from skills.renewal.skill import RenewalSkill

    return [RenewalSkill(ctx.templates, ctx.services.renewals, ctx.handoff)]


async def ensure_skill_indexes(db: AsyncDatabase[dict[str, Any]]) -> None:
    from skills.repair_dispatch.intake import Tickets

    await Tickets(db).ensure_indexes()
