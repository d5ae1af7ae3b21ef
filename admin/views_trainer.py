"""The trainer's pages (智能体训练师): the questions the bot missed, grouped, to label; the
labels with their review trail, for a second person to approve or revert; the voice
transcripts customers (or agents, on the conversation page) corrected.

The work itself is the knowledge package's (:class:`knowledge.review.LabelReview`, the
same the JSON API uses): a label made here is *proposed* and changes nothing the bot
does until another person approves it. A refusal (junk in the form, an unknown entry,
one's own label) comes back as the page's message and changes nothing.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from aiohttp import web

from admin.live import stream
from admin.live_trainer import trainer_watch
from admin.marketing import done, refusing
from admin.reasons import reason_in
from admin.roles import STAFF, TRAINING
from admin.state import ConsoleRoute, console, current_user
from admin.zones import zone
from bot.voice import CorrectedTranscript
from knowledge.labels import STATUSES
from knowledge.service import Knowledge
from knowledge.trainer import group_similar
from knowledge.transcripts import NEW, VERDICTS
from webui.errors import BadInput, NotFound
from webui.forms import fields, one

GROUPED_TURNS = 500  # the most recent unlabelled turns grouped on one page
REASONS = ("out_of_scope", "fallback", "low_confidence", "knowledge_rejected", "handoff")
FORM_KINDS = ("entry", "new_entry", "no_answer", "ignore", "intent")
LABEL_ID_MAX = 64


def knowledge(request: web.Request) -> Knowledge:
    found = console(request).deps.knowledge
    if found is None:
        raise NotFound(console(request).pages.text(request, "tr_not_enabled"))
    return found


def reason_text(request: web.Request, reason: str) -> str:
    pages = console(request).pages
    if reason.startswith("handoff:"):
        # Missed turns keep the hand-off's code (older ones its sentence); a code whose
        # words need parameters is shown as the code.
        why = reason.removeprefix("handoff:")
        why = reason_in(why, why, {}, pages.language(request))
        return f"{pages.text(request, 'tr_reason_handoff')}: {why}"
    return pages.text(request, f"tr_reason_{reason}") if reason in REASONS else reason


async def missed(request: web.Request) -> web.StreamResponse:
    kb = knowledge(request)
    reason = request.query.get("reason", "")
    if reason not in ("", *REASONS):
        raise BadInput(f"reason: one of {', '.join(REASONS)}")
    turns = await kb.missed.recent(limit=GROUPED_TURNS, unlabelled=True)
    if reason:
        turns = [t for t in turns if t.reason.split(":")[0] == reason]
    groups = []
    if turns:
        vectors = await kb.encoder.encode([t.text for t in turns])
        groups = await kb.encoder.run(lambda: group_similar(turns, vectors))
    entries, _ = await kb.store.page(limit=500)
    return await console(request).pages.render(
        request, "trainer_missed.html", groups=groups, reason=reason, reason_options=[(r, reason_text(request, r)) for r in REASONS],
        entries=entries, reason_text=lambda r: reason_text(request, r), kinds=FORM_KINDS, unlabelled=await kb.missed.unlabelled(),
    )


def label_body(data: dict[str, str]) -> dict[str, Any]:
    """The label form as the JSON API's body (checked by :func:`knowledge.labels.label_from_json`)."""
    kind = one(data, "kind", max_len=16)
    if kind not in FORM_KINDS:
        raise BadInput(f"kind: one of {', '.join(FORM_KINDS)}")
    texts = [t for t in one(data, "texts", max_len=200_000).split("\n") if t.strip()]
    body: dict[str, Any] = {"kind": "entry" if kind == "new_entry" else kind, "texts": texts}
    if kind == "entry":
        body["entry"] = one(data, "entry", max_len=200)
    elif kind == "new_entry":
        body["entry"] = one(data, "new_id", max_len=200)
        answers = {lang: one(data, f"answer_{lang}", required=False) for lang in ("zh", "en")}
        body["new_entry"] = {"title": one(data, "title", max_len=200), "questions": texts,
                             "answers": {lang: text for lang, text in answers.items() if text}}
    elif kind == "intent":
        body["intent"] = one(data, "intent", max_len=64)
        entities: dict[str, str] = {}
        for line in one(data, "entities", max_len=2000, required=False).splitlines():
            if not line.strip():
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise BadInput("entities: one a line, as name=value")
            entities[name.strip()] = value.strip()
        body["entities"] = entities
    return body


@refusing
async def add_label(request: web.Request) -> web.StreamResponse:
    kb = knowledge(request)
    body = label_body(await fields(request))
    await kb.review.label(body, by=current_user(request).name, proposed=True)
    return await done(request, "/admin/trainer", "tr_proposed")


def _status(request: web.Request) -> str:
    status = request.query.get("status", "")
    if status not in ("", *STATUSES):
        raise BadInput(f"status: one of {', '.join(STATUSES)}")
    return status


async def labels(request: web.Request) -> web.StreamResponse:
    kb = knowledge(request)
    status = _status(request)
    found = await kb.labels.listing(status=status, limit=200, newest_first=True)
    trail = await kb.trail.of([label.id for label in found])
    pages = console(request).pages
    # What the page's script writes when a label changes while it is open.
    live_words = {**{f"status_{s}": pages.text(request, f"tr_status_{s}") for s in STATUSES},
                  **{f"action_{a}": pages.text(request, f"tr_action_{a}") for a in ("labelled", "approved", "reverted")}}
    return await pages.render(
        request, "trainer_labels.html", labels=found, trail=trail, current=status,
        statuses=[(s, pages.text(request, f"tr_status_{s}")) for s in STATUSES], live_words=live_words,
    )


def _label_id(request: web.Request) -> str:
    label_id = request.match_info["lid"]
    if not label_id or len(label_id) > LABEL_ID_MAX or not label_id.isalnum():
        raise NotFound("no such label")
    return label_id


@refusing
async def approve(request: web.Request) -> web.StreamResponse:
    await knowledge(request).review.approve(_label_id(request), by=current_user(request).name)
    return await done(request, "/admin/trainer/labels", "tr_approved_done")


@refusing
async def revert(request: web.Request) -> web.StreamResponse:
    await knowledge(request).review.revert(_label_id(request), by=current_user(request).name)
    return await done(request, "/admin/trainer/labels", "tr_reverted_done")


async def events(request: web.Request) -> web.StreamResponse:
    """The trainer pages' live updates as server-sent events (:mod:`admin.live_trainer`)."""
    c = console(request)
    knowledge(request)  # not enabled: 404
    watch = trainer_watch(c.hub)
    if watch is None:
        raise NotFound(c.pages.text(request, "tr_not_enabled"))
    await c.hub.listening()  # the process may not be reading announcements while no page is open
    sub = watch.subscribe()
    return await stream(request, sub.queue, await zone(current_user(request).time_zone), done=lambda: watch.unsubscribe(sub))


async def transcripts(request: web.Request) -> web.StreamResponse:
    kb = knowledge(request)
    status = request.query.get("status", "")
    if status not in ("", NEW, *VERDICTS):
        raise BadInput(f"status: one of {', '.join((NEW, *VERDICTS))}")
    kept = await kb.transcripts.recent(status=status, limit=200)
    return await console(request).pages.render(
        request, "trainer_transcripts.html", kept=kept, current=status,
        statuses=[(s, console(request).pages.text(request, f"tr_verdict_{s}")) for s in (NEW, *VERDICTS)],
        can_play=current_user(request).role in STAFF, new_count=await kb.transcripts.count(NEW),
    )


@refusing
async def review_transcript(request: web.Request) -> web.StreamResponse:
    kb = knowledge(request)
    verdict = one(await fields(request), "verdict", max_len=16)
    message = request.match_info["mid"]
    if len(message) > 512 or await kb.transcripts.review(message, verdict, by=current_user(request).name) is None:
        raise NotFound("no corrected transcript for this message")
    return await done(request, "/admin/trainer/transcripts", "tr_reviewed_done")


async def fix_transcript(request: web.Request) -> web.StreamResponse:
    """An agent corrects a voice note's transcript on the conversation page: kept for the
    trainer (the message's own transcript stays as the engine heard it)."""
    c = console(request)
    doc = await c.deps.store.message(request.match_info["mid"][:512])
    transcript = (doc or {}).get("transcript") or {}
    if doc is None or doc.get("kind") != "voice" or not transcript.get("text"):
        raise NotFound("no voice note with a transcript here")
    meant = one(await fields(request), "meant", max_len=1000)
    if "\n" in meant or meant == str(transcript["text"]).strip():
        raise BadInput("meant: the corrected sentence, on one line and different from the transcript")
    user = current_user(request)
    await knowledge(request).transcripts.corrected_by_agent(CorrectedTranscript(
        message=str(doc["_id"]), conversation=str(doc["conversation"]), heard=str(transcript["text"]).strip(), meant=meant,
        correction=f"agent:{user.name}", language=str(transcript.get("language") or ""), how="agent",
    ))
    return await done(request, f"/admin/conversations/{quote(str(doc['conversation']), safe='')}", "tr_fix_done")


ROUTES = (
    ConsoleRoute("GET", "/trainer", missed, TRAINING, "tr_missed"),
    ConsoleRoute("POST", "/trainer/labels", add_label, TRAINING, "tr_label_add"),
    ConsoleRoute("GET", "/trainer/labels", labels, TRAINING, "tr_labels"),
    ConsoleRoute("GET", "/trainer/events", events, TRAINING, "tr_events"),
    ConsoleRoute("POST", "/trainer/labels/{lid}/approve", approve, TRAINING, "tr_label_approve"),
    ConsoleRoute("POST", "/trainer/labels/{lid}/revert", revert, TRAINING, "tr_label_revert"),
    ConsoleRoute("GET", "/trainer/transcripts", transcripts, TRAINING, "tr_transcripts"),
    ConsoleRoute("POST", "/trainer/transcripts/{mid}/review", review_transcript, TRAINING, "tr_transcript_review"),
    ConsoleRoute("POST", "/messages/{mid}/transcript", fix_transcript, STAFF, "tr_transcript_fix"),
)
