"""Forms: a skill asks for what it still needs, and the next messages fill it in.

A form lists its slots, each filled from an NLU entity or, when the form just asked for
it, from the customer's whole answer (an address or a time is easier to take verbatim
than to extract). "cancel" / "算了" leaves the form. The slots live in the conversation
state, so a form survives worker restarts and continues on any worker.

An open form takes only what answers it. Each form says whether a text fits a slot
(:meth:`FormSkill.fits`): clearly, maybe, or not at all ("明天上午" is no address, a
question is no answer). A text that clearly fits a missing slot is taken (a time given
when the address was asked is kept as the time, and the address asked again); one that
fits the asked slot not at all goes to the other skills and the knowledge base; and a
confident intent of another skill ("我的快递三天了还没到" at 1.00) goes to that skill.
The form then stays open, set aside: the customer keeps what they told us, is reminded
once, and from then on it takes only answers that clearly fit (or its own intent), so
the next order number goes to the skill that asked for it.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.conversation.state import ConversationState, FormState
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates

_CANCEL = re.compile(r"^\s*(算了|取消|不用了|不要了|不弄了|退出|cancel|never ?mind|forget it|stop|quit)\W*\s*$", re.I)


ESCAPES = frozenset({"request_human", "complain_product", "my_account"})
#: Intents that say nothing about which skill should act: an answer to a form's
#: question is often classified as one of these, and never takes the turn away.
NEUTRAL = frozenset({"out_of_scope", "nlu_fallback", "affirm", "deny", ""})
#: From this NLU confidence on, another skill's intent outweighs an answer that only
#: maybe fits the form's question.
CONFIDENT = 0.8


class Fit(enum.Enum):
    """How well a text answers a slot."""

    YES = "yes"  # it clearly is one ("南京市中山路88号" for an address)
    MAYBE = "maybe"  # free text that could be one
    NO = "no"  # it is not one ("明天上午" or a question for an address)


def is_cancel(text: str) -> bool:
    return bool(_CANCEL.match(text))


@dataclass(frozen=True, slots=True)
class Slot:
    name: str
    prompt: str  # template asking for it
    entity: str = ""  # NLU entity that fills it
    free_text: bool = False  # when asked for, the whole answer fills it


class FormSkill(Skill):
    """Base of skills that collect slots before acting."""

    triggers: ClassVar[frozenset[str]]  # intents that open the form
    slots: ClassVar[tuple[Slot, ...]]

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        if turn.intent in ESCAPES:
            return False  # asking for a person always works, also in the middle of a form
        state = turn.state
        if state is not None and state.form is not None:
            return state.form.name == self.name and self._answers(turn, state.form)
        return turn.intent in self.triggers

    def _answers(self, turn: Turn, form: FormState) -> bool:
        """Whether the open ``form`` takes this turn (see the module's docstring)."""
        text = turn.text.strip()
        if is_cancel(text):
            return True
        asked = self._slot(form.asking)
        fit = self.fits(asked, text) if asked is not None else Fit.MAYBE
        if fit is Fit.YES or self._fills_another(form, asked, text):
            return True
        if fit is Fit.NO:
            return False
        if turn.intent in self.triggers:
            return True
        confident_other = turn.intent not in NEUTRAL and turn.nlu is not None and turn.nlu.confidence >= CONFIDENT
        return not confident_other and not form.paused

    def _slot(self, name: str) -> Slot | None:
        return next((s for s in self.slots if s.name == name), None)

    def _fills_another(self, form: FormState, asked: Slot | None, text: str) -> bool:
        return any(
            s is not asked and s.free_text and not form.slots.get(s.name) and self.fits(s, text) is Fit.YES
            for s in self.slots
        )

    def _is_answer(self, turn: Turn, asked: Slot, text: str) -> bool:
        fit = self.fits(asked, text)
        if fit is Fit.NO:
            return False
        # The form's own intent again, with entities for other slots ("XK-8800还是不制冷"
        # while the address is asked): a new report, not the answer to our question.
        restated = turn.intent in self.triggers and any(
            s is not asked and s.entity and turn.entity(s.entity) for s in self.slots
        )
        return fit is Fit.YES or not restated

    def fits(self, slot: Slot, text: str) -> Fit:
        """How well ``text`` answers ``slot``; cheap and without side effects (it runs
        in :meth:`accepts`). Forms override it for slots whose answers have a shape."""
        return Fit.MAYBE

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None, "forms need conversation state"
        if state.form is not None and is_cancel(turn.text):
            state.form = None
            state.active_skill = ""
            return (Reply(text=self.templates.render("form_cancelled", turn.language)),)
        form = state.form or FormState(name=self.name)
        form.paused, form.reminded, form.last_turn = False, False, turn.message.key
        before = dict(form.slots)
        await self.fill(turn, form)
        # What this answer gave besides the asked slot, so the question asked again can
        # say it was kept ("明天上午" when the address was asked: noted as the time).
        noted = [s.name for s in self.slots if form.slots.get(s.name) and s.name not in before and s.name != form.asking]
        await self.prefill(turn, form)
        missing = next((slot for slot in self.slots if not form.slots.get(slot.name)), None)
        if missing is not None:
            again = missing.name == form.asking
            form.asking, form.prompt = missing.name, missing.prompt
            state.form = form
            state.active_skill = self.name
            return (Reply(text=self.templates.render(
                missing.prompt, turn.language, slots=form.slots, noted=noted if again else [], again=again
            )),)
        state.form = None
        state.active_skill = ""
        return await self.submit(turn, state, dict(form.slots))

    async def fill(self, turn: Turn, form: FormState) -> None:
        text = turn.text.strip()
        asked = self._slot(form.asking)
        answered = asked is not None and bool(text) and self._is_answer(turn, asked, text)
        for slot in self.slots:
            value = turn.entity(slot.entity) if slot.entity else None
            if value and self.fits(slot, value) is Fit.NO:
                value = None  # NLU's guess of the wrong shape ("明天上午" tagged as an address)
            if slot is asked and slot.free_text and answered:
                # The answer to our own question: an entity that covers only a fragment
                # of it ("Road" of "88 Zhongshan Road, Nanjing") is worse than the
                # answer itself; one that covers most of it ("the XK-8800") is better.
                # Half is not most: "上午" of "明天上午" loses the day.
                value = value if value and len(value) * 2 > len(text) else text
            elif asked is not None and not answered and slot.free_text and not form.slots.get(slot.name) and self.fits(slot, text) is Fit.YES:
                # Not what we asked, but clearly this slot's answer ("明天上午" when the
                # address was asked; NLU's entity may hold only "上午"): taken whole.
                value = text
            if value:
                value = await self.check(turn, slot, value, asked=slot is asked)
            if value:
                form.slots[slot.name] = value

    async def check(self, turn: Turn, slot: Slot, value: str, *, asked: bool) -> str:
        """The value to keep for ``slot`` (normalised), or ``""`` when it is not one;
        ``asked``: it answers the form's own question."""
        return value

    async def prefill(self, turn: Turn, form: FormState) -> None:
        """Fill slots from what Kefu already knows (the customer's devices, address)."""

    @abc.abstractmethod
    async def submit(self, turn: Turn, state: ConversationState, slots: Mapping[str, str]) -> Sequence[Reply]:
        """Act on a complete form."""
