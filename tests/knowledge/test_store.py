"""The knowledge store: versions, history, conflicts, idempotent batched imports."""

from __future__ import annotations

from dataclasses import replace

import pytest

from knowledge.entry import Answer, Entry
from knowledge.errors import UnknownEntry, VersionConflict
from knowledge.importer import parse_file
from knowledge.service import load_demo
from knowledge.store import KnowledgeStore
from tests.knowledge.conftest import FIXTURES


@pytest.fixture
def entries() -> list[Entry]:
    return parse_file(FIXTURES / "warranty.md").entries


async def test_a_change_is_a_new_version_with_history_and_a_new_revision(kb_store: KnowledgeStore, entries: list[Entry]) -> None:
    first = entries[0]
    before = await kb_store.revision()
    saved, changed = await kb_store.save(first, actor="alice")
    assert changed and saved.version == 1 and saved.updated_by == "alice"
    assert await kb_store.revision() == before + 1
    # Saving the same content again writes nothing.
    same, changed = await kb_store.save(first, actor="bob")
    assert not changed and same.version == 1 and await kb_store.revision() == before + 1
    edited = replace(first, answers={**first.answers, "en": Answer("Three years.", "Three years, five on the compressor.")})
    saved, changed = await kb_store.save(edited, actor="bob", expected_version=1)
    assert changed and saved.version == 2
    assert (await kb_store.get(first.id)).answers["en"].short == "Three years."
    versions = await kb_store.versions(first.id)
    assert [(v["version"], v["by"]) for v in versions] == [(2, "bob"), (1, "alice")]
    assert versions[1]["content"]["answers"]["en"]["short"].startswith("The XK-8800 has a three-year warranty")


async def test_a_stale_version_is_refused_and_changes_nothing(kb_store: KnowledgeStore, entries: list[Entry]) -> None:
    entry = entries[1]
    await kb_store.save(entry, actor="a")
    with pytest.raises(VersionConflict):
        await kb_store.save(replace(entry, owner="someone else"), actor="b", expected_version=0)
    assert (await kb_store.get(entry.id)).owner == ""
    with pytest.raises(VersionConflict):
        await kb_store.delete(entry.id, actor="b", expected_version=7)
    await kb_store.delete(entry.id, actor="b", expected_version=1)
    with pytest.raises(UnknownEntry):
        await kb_store.get(entry.id)
    assert (await kb_store.versions(entry.id))[0]["deleted"] is True


async def test_importing_twice_changes_nothing_and_vectors_are_stored(kb_store: KnowledgeStore, entries: list[Entry]) -> None:
    seen: list[int] = []
    report = await kb_store.save_many(entries, actor="import", progress=seen.append)
    assert (report.created, report.changed, report.unchanged, report.failed) == (5, 0, 0, [])
    assert sum(seen) == 5
    revision = await kb_store.revision()
    again = await kb_store.save_many(entries, actor="import")
    assert (again.created, again.changed, again.unchanged) == (0, 0, 5)
    assert await kb_store.revision() == revision  # nothing changed: retrievers keep their index
    changed = [replace(entries[0], owner="新的部门"), *entries[1:]]
    third = await kb_store.save_many(changed, actor="import")
    assert (third.created, third.changed, third.unchanged) == (0, 1, 4)
    _, items = await kb_store.indexed(kb_store.encoder)
    assert {i.entry.id: i.vectors.shape for i in items}["warranty-xk8800"] == (len(entries[0].forms()), 512)


async def test_the_demo_base_loads_once(kb_store: KnowledgeStore) -> None:
    first = await load_demo(kb_store)
    assert (first.created, first.failed) == (70, [])
    again = await load_demo(kb_store)  # every simulator start: nothing rewritten
    assert (again.created, again.changed, again.unchanged) == (0, 0, 70)
