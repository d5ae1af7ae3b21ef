"""The skills that keep the loop visible before understanding lands: welcome, echo, and
the word on a first training still running."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bot.nlu.readiness import TrainingProgress
from bot.routing import Reply, Skill, Turn
from bot.messages import MessageKind
from bot.templates import Templates


class WelcomeSkill(Skill):
    """A new follower (the ``subscribe`` event) gets the welcome message."""

    name = "welcome"

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        return turn.message.kind is MessageKind.EVENT and turn.message.event in ("subscribe", "enter_agent")

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        return (Reply(text=self.templates.render("welcome", turn.language)),)


class EchoSkill(Skill):
    """Acknowledges text by echoing it from a template."""

    name = "echo"

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        return bool(turn.text)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        return (Reply(text=self.templates.render("echo", turn.language, text=turn.text)),)


class StillLearningSkill(Skill):
    """Text the keyword layer cannot answer while the first NLU model trains: said so,
    with how far the training is, and the way to a person."""

    name = "still_learning"

    def __init__(self, templates: Templates, progress: Callable[[], TrainingProgress | None]) -> None:
        self.templates = templates
        self.progress = progress

    def accepts(self, turn: Turn) -> bool:
        return bool(turn.text)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        return (Reply(text=self.templates.render("still_learning", turn.language, progress=self.progress())),)


class ReceivedMediaSkill(Skill):
    """Voice, pictures and locations without text get a receipt, not silence."""

    name = "received_media"

    def __init__(self, templates: Templates) -> None:
        self.templates = templates

    def accepts(self, turn: Turn) -> bool:
        return turn.message.kind in (MessageKind.VOICE, MessageKind.IMAGE, MessageKind.LOCATION, MessageKind.FILE)

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        msg = turn.message
        text = self.templates.render("received_media", turn.language, kind=msg.kind.value, label=msg.text)
        return (Reply(text=text),)
