"""The form's rule for the answer to its own question, without a model: an entity that
covers most of the answer replaces it, one that covers half or less does not.

The NLU results are written out here, as Rasa would send them, so the rule is checked
whatever a retrained model happens to tag ("上午" of "明天上午" is what the model trained
on the CI machine tagged, which booked this morning for a customer asking for tomorrow).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

import pytest

from bot.conversation.forms import FormSkill, Slot
from bot.conversation.state import ConversationState, FormState
from bot.messages import InboundMessage, MessageKind
from bot.nlu.client import Entity, ParseResult
from bot.routing import Reply, Turn
from bot.templates import Templates


class VisitForm(FormSkill):
    """A form with two free-text slots, as the repair form asks for a model and a time."""

    name: ClassVar[str] = "visit_form"
    triggers: ClassVar[frozenset[str]] = frozenset({"report_repair"})
    slots: ClassVar[tuple[Slot, ...]] = (
        Slot("model", "repair_ask_model", entity="device_model", free_text=True),
        Slot("time", "repair_ask_time", entity="time", free_text=True),
    )

    async def submit(self, turn: Turn, state: ConversationState, slots: Mapping[str, str]) -> Sequence[Reply]:
        return (Reply(text="ok"),)


@pytest.fixture(scope="module")
def form() -> VisitForm:
    return VisitForm(Templates())  # reads the template files: off the event loop


def answer(text: str, asking: str, entities: Mapping[str, str], filled: Mapping[str, str]) -> Turn:
    """A turn that answers the question for ``asking``, NLU having tagged ``entities``."""
    state = ConversationState("wechat:demo:oFb", "wechat:demo:oFb", "wechat", "demo", "oFb")
    state.form = FormState(name=VisitForm.name, slots=dict(filled), asking=asking)
    tagged = tuple(
        Entity(name, value, text.index(value), text.index(value) + len(value), 0.9) for name, value in entities.items()
    )
    nlu = ParseResult(text, "inform", 0.6, tagged, (("inform", 0.6),))
    msg = InboundMessage("wechat", "demo", "oFb", state.conversation, MessageKind.TEXT, text, 0.0, text=text)
    return Turn(message=msg, language="zh", text=text, nlu=nlu, state=state)


@pytest.mark.parametrize(
    ("text", "entity", "kept"),
    [
        ("明天上午", "上午", "明天上午"),  # exactly half: the day would be lost
        ("下周三下午三点", "下午", "下周三下午三点"),  # a fragment
        ("明天上午吧", "明天上午", "明天上午"),  # most of it: the entity, without the filler
    ],
)
async def test_the_answer_to_the_asked_slot_keeps_the_day(form: VisitForm, text: str, entity: str, kept: str) -> None:
    turn = answer(text, "time", {"time": entity}, {"model": "XK-8800"})
    assert turn.state is not None and turn.state.form is not None
    await form.fill(turn, turn.state.form)
    assert turn.state.form.slots["time"] == kept


async def test_an_entity_covering_most_of_the_answer_replaces_it(form: VisitForm) -> None:
    turn = answer("the XK-8800", "model", {"device_model": "XK-8800"}, {})
    assert turn.state is not None and turn.state.form is not None
    await form.fill(turn, turn.state.form)
    assert turn.state.form.slots["model"] == "XK-8800"


async def test_without_an_entity_the_whole_answer_is_taken(form: VisitForm) -> None:
    turn = answer("后天下午", "time", {}, {"model": "XK-8800"})
    assert turn.state is not None and turn.state.form is not None
    await form.fill(turn, turn.state.form)
    assert turn.state.form.slots["time"] == "后天下午"
