"""Not understood twice in a row -> the human queue (the fallback counter, without Rasa)."""

from __future__ import annotations

from bot.conversation.state import ConversationState
from bot.routing import Turn
from bot.messages import InboundMessage, MessageKind
from bot.nlu.client import ParseResult
from skills.smalltalk import FallbackSkill, SmallTalkSkill
from tests.harness import Harness


def turn(text: str, intent: str, state: ConversationState) -> Turn:
    msg = InboundMessage("wechat", "demo", "oFb", state.conversation, MessageKind.TEXT, text, 0.0, text=text)
    return Turn(message=msg, language="en", text=text, nlu=ParseResult(text, intent, 0.3, (), ((intent, 0.3),)), state=state)


async def test_second_misunderstanding_in_a_row_queues_for_a_human(gateway: Harness) -> None:
    rt = gateway.runtime
    state = ConversationState("wechat:demo:oFb", "wechat:demo:oFb", "wechat", "demo", "oFb")
    fallback = FallbackSkill(rt.templates, rt.handoff, limit=2)
    first = await fallback.handle(turn("blorp", "nlu_fallback", state))
    assert "put it another way" in first[0].text and state.owner == "bot"
    # Understanding something in between resets the count.
    await SmallTalkSkill(rt.templates).handle(turn("thanks", "thank", state))
    await fallback.handle(turn("blorp again", "nlu_fallback", state))
    assert state.owner == "bot"
    second = await fallback.handle(turn("zzz", "nlu_fallback", state))
    assert "colleague" in second[0].text and state.owner == "queue"
    assert [w["conversation"] for w in await rt.handoff.waiting()] == ["wechat:demo:oFb"]
