"""Forms: a skill asks for what it still needs, and the next messages fill it in.

A form lists its slots, each filled from an NLU entity or, when the form just asked for
it, from the customer's whole answer (an address or a time is easier to take verbatim
than to extract). "cancel" / "算了" leaves the form. The slots live in the conversation
state, so a form survives worker restarts and continues on any worker.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from bot.conversation.state import ConversationState, FormState
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates

_CANCEL = re.compile(r"^\s*(算了|取消|不用了|不要了|不弄了|退出|cancel|never ?mind|forget it|stop|quit)\W*\s*$", re.I)


ESCAPES = frozenset({"request_human", "complain_product", "my_account"})


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
            return state.form.name == self.name
        return turn.intent in self.triggers

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        state = turn.state
        assert state is not None, "forms need conversation state"
        if state.form is not None and is_cancel(turn.text):
            state.form = None
            state.active_skill = ""
            return (Reply(text=self.templates.render("form_cancelled", turn.language)),)
        form = state.form or FormState(name=self.name)
        await self.fill(turn, form)
        await self.prefill(turn, form)
        missing = next((slot for slot in self.slots if not form.slots.get(slot.name)), None)
        if missing is not None:
            form.asking = missing.name
            state.form = form
            state.active_skill = self.name
            return (Reply(text=self.templates.render(missing.prompt, turn.language, slots=form.slots)),)
        state.form = None
        state.active_skill = ""
        return await self.submit(turn, state, dict(form.slots))

    async def fill(self, turn: Turn, form: FormState) -> None:
        text = turn.text.strip()
        asked = next((s for s in self.slots if s.name == form.asking), None)
        for slot in self.slots:
            value = turn.entity(slot.entity) if slot.entity else None
            if slot is asked and slot.free_text and text:
                # The answer to our own question: an entity that covers only a fragment
                # of it ("Road" of "88 Zhongshan Road, Nanjing") is worse than the
                # answer itself; one that covers most of it ("the XK-8800") is better.
                value = value if value and len(value) * 2 >= len(text) else text
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
