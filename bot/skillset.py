"""Which skills the bot runs, in which order: the one place to add a skill.

Groups are tried in order and the first skill that accepts a turn wins (see
:mod:`bot.routing`). A conversation waiting for a person meets the while-waiting skill
first, which lets only some intents through. An open form comes next so that "明天上午"
answers the question the form asked; then the customer's own settings and data; then hand-off and
complaints; then business skills; then small talk and the fallback. Without NLU the bot
still greets, acknowledges media and echoes text; while its first NLU model trains, it
answers the keyword layer's phrases and tells everyone else how far the training is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from bot.conversation.handoff import Handoff
from bot.nlu.readiness import TrainingProgress
from bot.conversation.questions import is_question
from bot.routing import Skill, Turn
from bot.templates import Templates
from preferences.services import PreferenceServices
from preferences.skills import build_skills as preference_skills
import knowledge
import skills
from knowledge.service import Knowledge
from knowledge.skill import unsure_question
from skills import renewal, repair_dispatch, review_remediation
from skills.account import AccountLinkSkill, LinkMaker
from skills.greeting import EchoSkill, ReceivedMediaSkill, StillLearningSkill, WelcomeSkill
from skills.handoff import HumanRequestSkill, WhileWaitingSkill
from skills.renewal.skill import RenewalSkill
from skills.repair_dispatch.catalog import fault_category
from skills.repair_dispatch.intake import RepairReportForm, RepairStatusSkill, SelfCheckAnswer
from skills.repair_dispatch.reschedule import VisitTimeAfterDispatch
from skills.review_remediation.chat import LogisticsComplaintSkill, ProductComplaintSkill
from skills.services import SkillServices
from skills.smalltalk import FallbackSkill, OutOfScopeSkill, SmallTalkSkill


#: The skills' reply templates, each package's beside its code.
TEMPLATE_DIRS: tuple[Path, ...] = (
    skills.TEMPLATES, repair_dispatch.TEMPLATES, renewal.TEMPLATES, review_remediation.TEMPLATES, knowledge.TEMPLATES,
)


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
    # The knowledge base, asked before the out-of-scope redirect and the fallback.
    knowledge: Knowledge | None = None
    # The customer portal's one-time sign-in links ("我的账户"); None: no portal mounted.
    account_link: LinkMaker | None = None
    account_link_minutes: int = 15
    # While the first NLU model trains in the background: what the training is doing
    # ("epoch 27/60, about 37 s left"), told to customers the keyword layer cannot answer.
    nlu_progress: Callable[[], TrainingProgress | None] | None = None


def default_skills(ctx: SkillContext) -> list[list[Skill]]:
    t = ctx.templates
    waiting = WhileWaitingSkill(t, ctx.handoff)  # first: in the queue only some skills answer
    # Keyword shortcuts work with NLU down: a person, and the account link.
    account: list[Skill] = []
    if ctx.account_link is not None:
        account.append(AccountLinkSkill(t, ctx.preferences.prefs, ctx.account_link, ttl_minutes=ctx.account_link_minutes))
    if not ctx.nlu_enabled and ctx.nlu_progress is not None:  # the first model is being trained
        return [
            [waiting],
            [WelcomeSkill(t)],
            [HumanRequestSkill(t, ctx.handoff), *account],
            [SmallTalkSkill(t)],  # the keyword layer's greetings, thanks and goodbyes
            [ReceivedMediaSkill(t), StillLearningSkill(t, ctx.nlu_progress)],
        ]
    if not ctx.nlu_enabled:
        return [
            [waiting],
            [WelcomeSkill(t)],
            [HumanRequestSkill(t, ctx.handoff), *account],
            [ReceivedMediaSkill(t), EchoSkill(t)],
        ]
    svc, prefs, kb = ctx.services, ctx.preferences, ctx.knowledge
    repair = svc.repair if svc.repair_dispatch else None
    out_of_scope: Skill = OutOfScopeSkill(t)
    fallback: Skill = FallbackSkill(t, ctx.handoff, limit=ctx.fallback_limit)
    business: list[Skill] = [
        RenewalSkill(t, svc.renewals, ctx.handoff),
        LogisticsComplaintSkill(t, svc.reviews, timezone=svc.renewals.settings.timezone),
        RepairStatusSkill(t, svc.tickets),
    ]
    repair_form: Skill = RepairReportForm(t, svc.tickets, repair, svc.notifier, catalog=svc.catalog)
    if kb is not None:  # the knowledge base answers first what these two would redirect
        out_of_scope = kb.answering_first(out_of_scope, t, reason="out_of_scope")
        # Whatever reaches the fallback was taken by no skill, whichever intent NLU saw
        # (a question an open form refused as the answer to its own).
        fallback = kb.answering_first(fallback, t, reason="fallback", when=lambda turn: True)
        # "XK-8800保修几年？" read as a repair report (at 0.55 by one model, 0.85 by
        # another trained on the same data) is looked up before a form opens; the base
        # answers only when sure, else the form opens as before.
        below = kb.low_confidence
        repair_form = kb.answering_first(
            repair_form, t, reason="", when=lambda turn: unsure_question(turn, below) or _question_without_fault(turn)
        )
        # A question the other skills' intents were given at low confidence ("How many
        # years of warranty…?" as a renewal at 0.56) is looked up first too.
        business = [kb.answering_unsure_questions(s, t) for s in business]
    groups: list[list[Skill]] = [
        [waiting],
        # A pick from the close entries the bot just offered ("2"): the bot's own last
        # question, so before an open form's (which would read "2" as its answer).
        *([[kb.choice(t)]] if kb else []),
        [  # an open form (or the self-check it offered) takes the answer to its own question first
            *([SelfCheckAnswer(t, svc.tickets, repair, svc.notifier)] if repair else []),
            repair_form,
            *([VisitTimeAfterDispatch(t, svc.tickets, timezone=repair.settings.timezone)] if repair else []),
        ],
        preference_skills(prefs.prefs, prefs.rights, ctx.redis, prefs.renderer),
        [
            *([kb.rejection(t)] if kb else []),
            WelcomeSkill(t),
            HumanRequestSkill(t, ctx.handoff),
            ProductComplaintSkill(t, svc.cases, ctx.handoff, svc.catalog),
            *account,
        ],
        business,  # an awaited order or contract number goes to the skill that asked for it
        [SmallTalkSkill(t), out_of_scope],
        [ReceivedMediaSkill(t), fallback],
    ]
    if kb is None:
        return groups
    return [[kb.watched(skill) for skill in group] for group in groups]


def _question_without_fault(turn: Turn) -> bool:
    """A question read as a repair report that names no fault, outside an open form:
    "XK-8800保修几年？" rather than "XK-8800不制冷了怎么办？"."""
    if turn.intent != "report_repair" or turn.entity("fault") or fault_category(turn.text) != "general":
        return False
    return (turn.state is None or turn.state.form is None) and is_question(turn.text)
