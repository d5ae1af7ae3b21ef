"""To-do tasks for people (engineers, sales owners): our own small interface.

The skills depend only on :class:`TodoConnector`. :class:`DingTalkTodoConnector` calls a
:class:`TodoApi` the composition root builds from the connector's settings (the DingTalk
channel's to-do client), so skills never import a channel.

``connectors.dingtalk_todo``: ``base_url``, ``app_key``, ``app_secret``, ``union_id`` (the
service account that creates the tasks).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import aiohttp

from bot.errors import KefuError
from skills.connectors.base import Connector, ConnectorRejected, ConnectorSettings, ConnectorUnavailable


class TodoApi(Protocol):
    """A platform's to-do call, as the root hands it to the connector."""

    async def create_todo(
        self, creator: str, subject: str, *, description: str, executor_ids: Sequence[str], source_id: str,
        due: dt.datetime | None,
    ) -> str:
        """Create the task and return the platform's task id."""
        ...


TodoApiFactory = Callable[[ConnectorSettings], TodoApi]


class TodoConnector(Connector, abc.ABC):
    """Creates a to-do for some people; returns the task id."""

    @abc.abstractmethod
    async def create_task(self, *, executors: Sequence[str], subject: str, description: str, source_id: str, due_ts: float | None = None) -> str:
        """Create the task; ``source_id`` is our handle (ticket or contract id)."""


class DingTalkTodoConnector(TodoConnector):
    name = "dingtalk_todo"

    def __init__(self, http: aiohttp.ClientSession, settings: ConnectorSettings, *, api: TodoApi | None = None, **kw: Any) -> None:
        super().__init__(http, settings)
        self.api = api

    async def create_task(self, *, executors: Sequence[str], subject: str, description: str, source_id: str, due_ts: float | None = None) -> str:
        if self.api is None:
            raise ConnectorRejected(self.name, "config", "no DingTalk client was handed to this connector")
        due = dt.datetime.fromtimestamp(due_ts, dt.timezone.utc) if due_ts else None
        try:
            return await self.api.create_todo(
                self.settings.option("union_id", "kefu-service"), subject,
                description=description, executor_ids=list(executors), source_id=source_id, due=due,
            )
        except (KefuError, aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectorUnavailable(self.name, type(exc).__name__, str(exc)) from exc
