"""To-do tasks for people (engineers, sales owners): our own small interface.

The DingTalk channel package is still being finished by its owner; the skills depend only
on :class:`TodoConnector`, and :class:`DingTalkTodoConnector` adapts the channel's
``channels.dingtalk.todo.create_todo`` to it (imported when first used, so the skills load
without the DingTalk package).

``connectors.dingtalk_todo``: ``base_url``, ``app_key``, ``app_secret``, ``union_id`` (the
service account that creates the tasks).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import aiohttp

from bot.tokens import TokenCache
from skills.connectors.base import Connector, ConnectorRejected, ConnectorSettings, ConnectorUnavailable


class TodoConnector(Connector, abc.ABC):
    """Creates a to-do for some people; returns the task id."""

    @abc.abstractmethod
    async def create_task(self, *, executors: Sequence[str], subject: str, description: str, source_id: str, due_ts: float | None = None) -> str:
        """Create the task; ``source_id`` is our handle (ticket or contract id)."""


class DingTalkTodoConnector(TodoConnector):
    name = "dingtalk_todo"

    def __init__(self, http: aiohttp.ClientSession, settings: ConnectorSettings, *, tokens: TokenCache | None = None, **kw: Any) -> None:
        super().__init__(http, settings)
        self.tokens = tokens
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from channels.dingtalk.client import DingTalkClient

            if self.tokens is None:
                raise ConnectorRejected(self.name, "config", "needs the gateway's token cache")
            self._client = DingTalkClient(
                self.http, self.tokens,
                app_key=self.settings.option("app_key", "kefu-todo"), app_secret=self.settings.option("app_secret", "demo"),
                robot_code=self.settings.option("robot_code", ""), base_url=self.settings.base_url, timeout_s=self.settings.timeout_s,
            )
        return self._client

    async def create_task(self, *, executors: Sequence[str], subject: str, description: str, source_id: str, due_ts: float | None = None) -> str:
        import datetime as dt

        from channels.dingtalk.todo import create_todo
        from bot.errors import KefuError

        due = dt.datetime.fromtimestamp(due_ts, dt.timezone.utc) if due_ts else None
        try:
            task = await create_todo(
                self.client(), self.settings.option("union_id", "kefu-service"), subject,
                description=description, executor_ids=list(executors), source_id=source_id, due=due,
            )
        except KefuError as exc:
            raise ConnectorUnavailable(self.name, type(exc).__name__, str(exc)) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectorUnavailable(self.name, type(exc).__name__, str(exc)) from exc
        return str(task.task_id)
