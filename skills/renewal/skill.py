"""Renewals in chat: ``ask_renewal`` quotes the terms, ``renew_contract`` opens an
opportunity for the sales owner (with a DingTalk to-do); a rule that asks for legal
review or a person hands the conversation to an agent instead of quoting."""

from __future__ import annotations

from collections.abc import Sequence

from bot.conversation.handoff import Handoff
from bot.routing import Reply, Skill, Turn
from bot.templates import Templates
from skills.renewal.service import Renewals


class RenewalSkill(Skill):
    name = "renewal"
    intents = frozenset({"ask_renewal", "renew_contract"})

    def __init__(self, templates: Templates, renewals: Renewals, handoff: Handoff) -> None:
        self.templates = templates
        self.renewals = renewals
        self.handoff = handoff

    def accepts(self, turn: Turn) -> bool:
        return turn.intent in self.intents

    async def handle(self, turn: Turn) -> Sequence[Reply]:
        assert turn.state is not None
        lang = turn.language
        customer, contracts = await self.renewals.contracts_of(turn.state.customer)
        wanted = (turn.entity("contract_id") or "").upper()
        contract = next((c for c in contracts if str(c["_id"]).upper() == wanted), None) if wanted else None
        contract = contract or (contracts[0] if contracts else None)
        if contract is None:
            await self.handoff.to_queue(turn.state, "renewal: no contract on file")
            return (Reply(text=self.templates.render("renewal_no_contract", lang)),)
        blocking = await self.renewals.needs_review(contract, customer)
        if blocking:
            await self.handoff.to_queue(turn.state, f"renewal {contract['_id']}: {blocking[0]['action']} ({blocking[0].get('rule')})")
            return (Reply(text=self.templates.render("renewal_review", lang, contract=contract, reason=blocking[0]["action"])),)
        quote = self.renewals.quote(contract)
        if turn.intent == "renew_contract":
            opp, created = await self.renewals.open_opportunity(contract, via=turn.message.channel, conversation=turn.state.conversation)
            return (Reply(text=self.templates.render("renewal_opportunity", lang, contract=contract, quote=quote, opp=opp, created=created)),)
        from preferences.render import local_time

        return (
            Reply(
                text=self.templates.render(
                    "renewal_quote", lang, contract=contract, quote=quote,
                    expires=local_time(float(contract["end"]), self.renewals.settings.timezone, "%Y-%m-%d"),
                    others=len(contracts) - 1,
                )
            ),
        )
