"""The preferences' part of an agent's customer card: how the customer wants to be reached."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from bot.customer_card import CardLine, CardSubject
from preferences.store import PreferenceStore


def preference_card(store: PreferenceStore) -> Callable[[CardSubject], Awaitable[Sequence[CardLine]]]:
    async def lines(subject: CardSubject) -> Sequence[CardLine]:
        customer = await store.find_by_address(subject.channel, subject.account, subject.sender)
        if customer is None:
            return []
        prefs = await store.effective(customer)
        out = [
            CardLine("preferences", "→ ".join(prefs.reachable()) or "-"),
            CardLine("preferences", f"{prefs.language} · {prefs.timezone}"),
        ]
        if prefs.quiet_hours is not None:
            out.append(CardLine("preferences", f"quiet {prefs.quiet_hours.start:%H:%M}-{prefs.quiet_hours.end:%H:%M}"))
        for topic, choice in sorted(prefs.topics.items(), key=lambda item: item[0].value):
            out.append(CardLine("preferences", f"{topic.value}: {'opted out' if choice.opted_out else choice.frequency.value}"))
        return out

    return lines
