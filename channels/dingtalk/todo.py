"""DingTalk to-do (待办) tasks, created through an app's client.

Docs: https://open.dingtalk.com/document/orgapp/add-dingtalk-to-do-task
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from channels.dingtalk.client import DingTalkClient
from channels.errors import PlatformError

# DingTalk's priority scale: 10 low, 20 normal, 30 urgent, 40 very urgent.
PRIORITY_LOW, PRIORITY_NORMAL, PRIORITY_URGENT, PRIORITY_VERY_URGENT = 10, 20, 30, 40


@dataclass(frozen=True, slots=True)
class TodoTask:
    """A created to-do, as DingTalk answered."""

    task_id: str
    subject: str
    created_ms: int = 0


async def create_todo(
    client: DingTalkClient,
    union_id: str,
    subject: str,
    *,
    description: str = "",
    due: dt.datetime | None = None,
    executor_ids: Sequence[str] = (),
    participant_ids: Sequence[str] = (),
    source_id: str = "",
    detail_url: str = "",
    priority: int = PRIORITY_NORMAL,
    operator_id: str | None = None,
) -> TodoTask:
    """Create a to-do owned by ``union_id`` (``POST /v1.0/todo/users/{unionId}/tasks``).

    Args:
        client: the app's client (its token needs the Todo write permission).
        union_id: unionId of the creator (the service account or the dispatcher).
        subject: the to-do's title, as the engineer sees it in DingTalk.
        description: details (address, device, fault).
        due: deadline; naive datetimes are taken as UTC.
        executor_ids: unionIds of the people who must do it.
        participant_ids: unionIds of people who follow it.
        source_id: our idempotency handle (e.g. the repair ticket id); DingTalk keeps it
            with the task so a retried call can be recognised in its console.
        detail_url: a link back to the ticket in Kefu's console.
        priority: one of the ``PRIORITY_*`` values.
        operator_id: unionId acting; defaults to ``union_id``.
    """
    if not union_id or not subject:
        raise ValueError("union_id and subject are required")
    body: dict[str, Any] = {"subject": subject, "priority": priority}
    if description:
        body["description"] = description
    if due is not None:
        aware = due if due.tzinfo else due.replace(tzinfo=dt.timezone.utc)
        body["dueTime"] = int(aware.timestamp() * 1000)
    if executor_ids:
        body["executorIds"] = list(executor_ids)
    if participant_ids:
        body["participantIds"] = list(participant_ids)
    if source_id:
        body["sourceId"] = source_id
    if detail_url:
        body["detailUrl"] = {"appUrl": detail_url, "pcUrl": detail_url}
    path = f"/v1.0/todo/users/{quote(union_id, safe='')}/tasks?operatorId={quote(operator_id or union_id, safe='')}"
    data = await client.call("POST", path, json=body)
    task_id = data.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise PlatformError(f"todo creation answered without an id: {data!r}")
    created = data.get("createdTime")
    return TodoTask(task_id=task_id, subject=str(data.get("subject", subject)), created_ms=int(created) if isinstance(created, int) else 0)


class DingTalkTodos:
    """To-dos through one DingTalk app; what the composition root hands a to-do connector."""

    def __init__(self, client: DingTalkClient) -> None:
        self.client = client

    async def create_todo(
        self, creator: str, subject: str, *, description: str, executor_ids: Sequence[str], source_id: str,
        due: dt.datetime | None,
    ) -> str:
        task = await create_todo(
            self.client, creator, subject, description=description, executor_ids=executor_ids, source_id=source_id, due=due
        )
        return task.task_id
