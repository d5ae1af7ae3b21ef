"""Labelling missed turns, and the second look at a label: one place for the API and the console.

A label made in the console is *proposed*: the sentences leave the trainer's groups but
nothing the bot does changes until another person approves it. Approval makes it take
effect (an ``entry`` label adds its sentences to the entry's question forms, creating
the entry first when it is new; an ``intent`` label becomes exportable as NLU data).
A revert undoes that (the forms the approval added are taken off again, not those the
entry already had; an entry the label created is deleted, or, when someone edited it
since, keeps their work without the label's forms; its versions stay in ``kb_history``; an intent label's block is taken out of
the exported NLU data file, so the next training does not learn what was reverted) and
gives the sentences back to the groups. Labels from the JSON API are approved as they are made: a scoped key holder is
the reviewer there. Every step goes into the review trail with who, when, before and
after.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from knowledge.entry import MAX_QUESTIONS, Entry, entry_from_json
from knowledge.errors import InvalidEntry, ReviewRefused, UnknownEntry, UnknownLabel
from knowledge.exported import ExportedFile
from knowledge.label_trail import LABELLED, LabelTrail, TrailEvent
from knowledge.labels import APPROVED, PROPOSED, REVERTED, TrainerLabel, TrainerLabels, label_from_json
from knowledge.label_trail import APPROVED as APPROVED_EVENT
from knowledge.label_trail import REVERTED as REVERTED_EVENT
from knowledge.missed import MissedTurns
from knowledge.news import LABEL, TrainerNews
from knowledge.store import KnowledgeStore

UNLABELLED = "unlabelled"


@dataclass(frozen=True, slots=True)
class Labelled:
    label: TrainerLabel
    turns_marked: int
    entry_saved: Mapping[str, Any] | None  # id, version and question count of the entry it changed


class LabelReview:
    def __init__(
        self, store: KnowledgeStore, labels: TrainerLabels, missed: MissedTurns, trail: LabelTrail,
        exported: ExportedFile | None = None, news: TrainerNews | None = None,
    ) -> None:
        self.store = store
        self.labels = labels
        self.missed = missed
        self.trail = trail
        # The NLU data file intent labels are exported to (None: this process has no NLU data).
        self.exported = exported
        self.news = news  # open trainer pages hear of each change

    async def label(self, data: Mapping[str, Any], *, by: str, proposed: bool) -> Labelled:
        """Label a group's sentences; junk is refused (:class:`InvalidEntry`, :class:`UnknownEntry`)
        before anything is stored."""
        label = label_from_json(data, by=by, status=PROPOSED if proposed else APPROVED)
        if label.kind == "entry":
            await self._check_entry(label)
        entry_saved = None if proposed else await self._apply(label)
        if entry_saved is not None:
            label = replace(label, added=entry_saved["added"], applied_version=entry_saved["version"])
        stored = await self.labels.add(label)
        marked = await self.missed.mark_labelled(list(label.texts), stored.id)
        await self.trail.add(TrailEvent(stored.id, by, LABELLED, UNLABELLED, f"{stored.summary()} · {stored.status}"))
        await self._announce(stored.id)
        return Labelled(stored, marked, entry_saved)

    async def approve(self, label_id: str, *, by: str) -> TrainerLabel:
        label = await self._get(label_id)
        if label.by == by:
            raise ReviewRefused("a second person approves a label: this one is yours")
        if label.status != PROPOSED:
            raise ReviewRefused(f"the label is {label.status} already")
        approved = await self.labels.change_status(label_id, was=PROPOSED, now=APPROVED, by=by)
        if approved is None:
            raise ReviewRefused("someone reviewed the label meanwhile")
        try:
            applied = await self._apply(approved)
            if applied is not None:
                await self.labels.set_applied(label_id, added=applied["added"], version=applied["version"])
                approved = replace(approved, added=applied["added"], applied_version=applied["version"])
        except BaseException:
            # The entry could not take the forms (deleted, full, changed): the label stays proposed.
            await self.labels.change_status(label_id, was=APPROVED, now=PROPOSED, by=label.reviewed_by)
            raise
        await self.trail.add(TrailEvent(label_id, by, APPROVED_EVENT, PROPOSED, APPROVED))
        await self._announce(label_id)
        return approved

    async def revert(self, label_id: str, *, by: str) -> TrainerLabel:
        label = await self._get(label_id)
        if label.status == REVERTED:
            raise ReviewRefused("the label is reverted already")
        reverted = await self.labels.change_status(label_id, was=label.status, now=REVERTED, by=by)
        if reverted is None:
            raise ReviewRefused("someone reviewed the label meanwhile")
        after = REVERTED
        if label.status == APPROVED and label.kind == "entry":
            if kept := await self._take_back(label):
                after = f"{REVERTED} · {kept}"
        if label.kind == "intent" and label.exported_at and self.exported is not None:
            taken = await self.exported.take_out(label_id)
            if taken:
                after = f"{REVERTED} · {len(taken)} taken out of {self.exported.path.name}"
        await self.missed.unmark(label_id)
        await self.trail.add(TrailEvent(label_id, by, REVERTED_EVENT, label.status, after))
        await self._announce(label_id)
        return reverted

    async def _announce(self, label_id: str) -> None:
        if self.news is not None:
            await self.news.announce(LABEL, label_id)

    async def _get(self, label_id: str) -> TrainerLabel:
        label = await self.labels.get(label_id)
        if label is None:
            raise UnknownLabel(f"no trainer label {label_id!r}")
        return label

    async def _check_entry(self, label: TrainerLabel) -> None:
        if label.new_entry is not None:
            entry_from_json(label.new_entry, entry_id=label.entry)
            try:
                await self.store.get(label.entry)
            except UnknownEntry:
                return
            raise InvalidEntry(f"entry: {label.entry!r} exists already; label the sentences with it instead")
        current = await self.store.get(label.entry)
        if len(set(current.questions) | set(label.texts)) > MAX_QUESTIONS:
            raise InvalidEntry(f"texts: entry {label.entry!r} would have more than {MAX_QUESTIONS} question forms")

    async def _apply(self, label: TrainerLabel) -> Mapping[str, Any] | None:
        if label.kind != "entry":
            return None
        current: Entry
        if label.new_entry is not None:
            current, _ = await self.store.save(entry_from_json(label.new_entry, entry_id=label.entry), actor="trainer", expected_version=0)
            had: tuple[str, ...] = ()  # every form of an entry the label creates is the label's
        else:
            current = await self.store.get(label.entry)
            had = current.questions
        questions = tuple(dict.fromkeys((*current.questions, *label.texts)))
        if len(questions) > MAX_QUESTIONS:
            raise InvalidEntry(f"texts: entry {label.entry!r} would have more than {MAX_QUESTIONS} question forms")
        saved, _ = await self.store.save(replace(current, questions=questions), actor="trainer", expected_version=current.version)
        added = tuple(q for q in saved.questions if q not in had)
        return {"id": saved.id, "version": saved.version, "questions": len(saved.questions), "added": added}

    async def _take_back(self, label: TrainerLabel) -> str:
        """Undo what the label's approval did to its entry; returns what was kept, if
        anything, for the trail. Only the forms the approval added go: one the entry had
        before stays. An entry the label created is deleted, unless someone edited it
        since; then only the label's forms go and the rest of their work stays."""
        try:
            current = await self.store.get(label.entry)
        except UnknownEntry:
            return ""  # deleted since: nothing left to take back
        # Labels approved before `added` was recorded: all their sentences were added.
        added = set(label.added if label.applied_version else label.texts)
        if label.new_entry is not None and (current.version == label.applied_version or not label.applied_version):
            await self.store.delete(label.entry, actor="trainer", expected_version=current.version)
            return ""
        kept = tuple(q for q in current.questions if q not in added)
        if not kept:
            if label.new_entry is not None:  # edited, but none of its forms was anyone else's
                await self.store.delete(label.entry, actor="trainer", expected_version=current.version)
                return ""
            return f"entry {label.entry} left as it is: it would have no question forms"
        if kept != current.questions:
            await self.store.save(replace(current, questions=kept), actor="trainer", expected_version=current.version)
        if label.new_entry is not None:
            return f"entry {label.entry} kept (edited since the approval); its forms from this label taken off"
        before = len(label.texts) - len(added)
        return f"{before} form(s) the entry had before kept" if before else ""
