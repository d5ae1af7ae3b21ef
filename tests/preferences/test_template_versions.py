"""Templates edited in the console: checked before storing, versioned, seen by every process;
and the provenance helpers the customer page is built on."""

from __future__ import annotations

from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from preferences.provenance import DEFAULT, OWN, diff, effective, own_setters, revert_patch
from preferences.render import Renderer
from preferences.template_versions import TemplateName, TemplateProblem, TemplateVersions

RENEWAL_ZH = TemplateName("zh", "renewal", "")
DATA = {"contract_id": "K-7", "expires": "2027-01-31"}


@pytest.fixture
def two_renderers() -> tuple[Renderer, Renderer]:
    return Renderer(), Renderer()  # two processes' renderers (read from disk: outside the loop)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("【续约】{{ data.contract_id ", 1),
        ("第一行\n{% if data.amount %}金额", 2),
        ("{{ data.get('x') | nosuchfilter }}", 1),
        ("{{ nosuchvariable }}", None),  # compiles, fails to render with the sample data
    ],
)
async def test_a_broken_template_is_refused_and_nothing_stored(
    source: str, line: int | None, two_renderers: tuple[Renderer, Renderer], redis: Redis, mongo: AsyncMongoClient[Any]
) -> None:
    renderer, _ = two_renderers
    versions = TemplateVersions(mongo.get_default_database(), redis, renderer)
    before = renderer.render("renewal", "zh", "wechat", data=DATA, detail="standard")
    with pytest.raises(TemplateProblem) as err:
        await versions.save(RENEWAL_ZH, source, actor="mia")
    if line is not None:
        assert err.value.line == line and f"line {line}" in err.value.message
    assert await versions.versions(RENEWAL_ZH.key) == [] and await versions.edited() == {}
    assert renderer.render("renewal", "zh", "wechat", data=DATA, detail="standard") == before


async def test_an_edit_reaches_the_other_process_and_rolls_back(
    two_renderers: tuple[Renderer, Renderer], redis: Redis, mongo: AsyncMongoClient[Any]
) -> None:
    web, worker = two_renderers
    db = mongo.get_default_database()
    mine, theirs = TemplateVersions(db, redis, web), TemplateVersions(db, redis, worker)
    await theirs.sync()
    shipped = worker.render("renewal", "zh", "wechat", data=DATA, detail="standard")
    old_fingerprint = worker.fingerprint
    assert await mine.save(RENEWAL_ZH, "新：{{ data.contract_id }}", actor="mia") == 1
    assert worker.render("renewal", "zh", "wechat", data=DATA, detail="standard") == shipped  # not yet synced
    assert await theirs.sync() is True
    assert worker.render("renewal", "zh", "wechat", data=DATA, detail="standard") == "新：K-7"
    assert worker.fingerprint != old_fingerprint  # digests rendered ahead with the old text are redone
    assert await theirs.sync() is False  # nothing new: no reload
    assert await mine.save(RENEWAL_ZH, "再改：{{ data.contract_id }}", actor="mia") == 2
    assert await mine.rollback(RENEWAL_ZH, 0, actor="mia") == 3
    await theirs.sync()
    assert worker.render("renewal", "zh", "wechat", data=DATA, detail="standard") == shipped
    history = await mine.versions(RENEWAL_ZH.key)
    assert [(h["version"], h["note"]) for h in history] == [(3, "rollback to 0"), (2, ""), (1, "")]
    assert history[1]["old"] == "新：{{ data.contract_id }}"


def test_template_names_are_known_messages_and_channels() -> None:
    assert TemplateName.parse("en/digest.email.j2", ("wechat", "email")) == TemplateName("en", "digest", "email")
    for bad in ("zh/../../etc/passwd.j2", "fr/renewal.j2", "zh/chat_summary.j2", "zh/renewal.fax.j2", "zh/renewal"):
        with pytest.raises(TemplateProblem):
            TemplateName.parse(bad, ("wechat", "email"))


def test_sources_and_setters() -> None:
    history = [
        {"version": 1, "actor": "import", "via": "api", "old": {}, "new": {"topics": {"repair": {"detail": "full"}}}},
        {"version": 2, "actor": "c1", "via": "chat", "old": {"topics": {"repair": {"detail": "full"}}},
         "new": {"topics": {"repair": {"detail": "full", "frequency": "daily"}}}},
    ]
    setters = own_setters(history)
    assert setters == {"topics.repair.detail": ("import", "api"), "topics.repair.frequency": ("c1", "chat")}
    values = effective([(DEFAULT, {"topics": {"repair": {"frequency": "weekly"}}, "language": "en"}), (OWN, history[-1]["new"])], setters)
    assert (values["language"].source, values["topics.repair.frequency"].source, values["topics.repair.frequency"].by) == (DEFAULT, OWN, "c1")
    assert [c.path for c in diff(history[0]["new"], history[1]["new"])] == ["topics.repair.frequency"]


def test_undoing_one_change_leaves_later_changes_alone() -> None:
    old, new = {"language": "zh"}, {"language": "en", "topics": {"repair": {"detail": "full"}}}
    # Since then the detail was changed again: only the language goes back, and the
    # detail is reported instead of overwritten.
    current = {"language": "en", "topics": {"repair": {"detail": "brief"}}}
    layer, conflicts = revert_patch(current, old, new)
    assert layer == {"language": "zh", "topics": {"repair": {"detail": "brief"}}} and conflicts == ["topics.repair.detail"]
    layer, conflicts = revert_patch(new, old, new)
    assert layer == {"language": "zh"} and conflicts == []
