"""Switching in the model the held-out gate passed, when a trainer confirms it.

``kefu nlu gate --propose`` leaves its figures and the model trained on all data in the
gate record (:class:`bot.nlu.gate.GateRecord`); the trainer's console shows them with
:meth:`ModelSwitch.last` and, on a trainer's word, :meth:`ModelSwitch.switch` has every
configured Rasa server load the model in place (``PUT /model``: no restart). A record
whose gated figures dropped, whose model is gone, which is switched in already, or whose
data changed since (another export: the figures no longer describe the model) is
refused with the reason, and nothing changes. The record lives beside the models on the
host's disk, where Rasa loads them from: every web process on the host reads the same
file, and a lock beside it lets one switch run at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import time
from pathlib import Path

from bot.nlu.errors import NluError
from bot.nlu.gate import GateRecord, load_record, record_path, save_record, switch_model
from bot.nlu.settings import NluSettings
from bot.nlu.training import training_hash


class SwitchRefused(NluError):
    """The gate record does not allow a switch now; the message says why."""

    code = "switch_refused"
    status = 409


class SwitchFailed(NluError):
    """A Rasa server did not load the model (it keeps serving its old one)."""

    code = "switch_failed"
    status = 502


class ModelSwitch:
    def __init__(self, settings: NluSettings, *, timeout_s: float = 300.0) -> None:
        self.settings = settings
        self.path = record_path(settings.state_path)
        self.timeout_s = timeout_s

    async def last(self) -> GateRecord | None:
        """The last gate run; None when there was none (ValueError: a damaged record)."""
        return await asyncio.to_thread(load_record, self.path)

    async def why_not(self, record: GateRecord) -> str:
        """Why ``record``'s model cannot be switched in now; empty when it can."""
        return await asyncio.to_thread(self._why_not, record)

    def _why_not(self, record: GateRecord) -> str:
        comparison = record.comparison
        if not comparison.passed:
            return f"the gate failed: {', '.join(r.metric for r in comparison.dropped)} dropped on held-out sentences"
        if record.switched_at:
            return f"switched in already by {record.switched_by}"
        if not record.model:
            return "the gate ran without --propose: no model was trained on all data"
        if not Path(record.model).is_file():
            return f"the model {Path(record.model).name} is no longer on disk"
        if record.data_hash != training_hash(self.settings):
            return "the training data changed since the gate ran: run `kefu nlu gate --propose` again"
        return ""

    async def switch(self, *, by: str) -> GateRecord:
        """Have every server load the record's model; the record, marked switched.

        Raises:
            SwitchRefused: the record does not allow it (the reason is the message).
            SwitchFailed: a server refused or did not answer; the ones before it serve
                the new model, it and the ones after keep theirs, and the record stays
                unswitched so a second try goes through them all again.
        """
        return await asyncio.to_thread(self._switch, by)

    def _switch(self, by: str) -> GateRecord:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.parent / ".switch.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = load_record(self.path)
            if record is None:
                raise SwitchRefused("no gate has run: `kefu kb export-labels`, then `kefu nlu gate --propose`")
            why = self._why_not(record)
            if why:
                raise SwitchRefused(why)
            for url in self.settings.urls:
                try:
                    switch_model(url, Path(record.model), self.timeout_s)
                except OSError as exc:
                    # The record stays unswitched: a second try loads the model on every server again.
                    raise SwitchFailed(f"not switched: {exc}; it and the servers after it keep their model") from None
            switched = record.switched(by, time.time(), self.settings.urls)
            save_record(self.path, switched)
            return switched
