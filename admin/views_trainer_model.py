"""The trainer's model page (模型更新): the held-out gate's last figures, before and after
the new examples, and the switch to the model trained with them, which a trainer
confirms. A gate that dropped shows why and offers no switch; a forged switch is refused
by :class:`bot.nlu.switch.ModelSwitch` with the same reason. The switch is audited.
"""

from __future__ import annotations

from aiohttp import web

from admin.marketing import done, refusing
from admin.roles import TRAINING
from admin.state import ConsoleRoute, console, current_user
from bot.nlu.switch import ModelSwitch
from webui.errors import NotFound


def switcher(request: web.Request) -> ModelSwitch:
    found = console(request).deps.model_switch
    if found is None:
        raise NotFound(console(request).pages.text(request, "tr_no_nlu"))
    return found


async def model(request: web.Request) -> web.StreamResponse:
    switch = switcher(request)
    try:
        record = await switch.last()
        damaged = ""
    except ValueError as exc:
        record, damaged = None, str(exc)
    blocked = await switch.why_not(record) if record is not None else ""
    return await console(request).pages.render(
        request, "trainer_model.html", record=record, comparison=record.comparison if record is not None else None,
        blocked=blocked, damaged=damaged,
    )


@refusing
async def switch_in(request: web.Request) -> web.StreamResponse:
    c = console(request)
    before = await switcher(request).last()
    after = await switcher(request).switch(by=current_user(request).name)
    await c.audit.record(current_user(request).name, "nlu.switch", after.model,
                         before={"model": before.model if before else ""}, after={"model": after.model, "served": list(after.served)})
    return await done(request, "/admin/trainer/model", "tr_switched_done")


ROUTES = (
    ConsoleRoute("GET", "/trainer/model", model, TRAINING, "tr_model"),
    ConsoleRoute("POST", "/trainer/model/switch", switch_in, TRAINING, "tr_model_switch"),
)
